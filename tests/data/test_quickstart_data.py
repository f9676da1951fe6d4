"""The embedded dataset: CelebA-format synthetic faces and the prepare stage that reads them."""
import hashlib
import json

import numpy as np
import pytest
from PIL import Image

from diffops.data.celeba import ATTRIBUTE_NAMES, read_attributes, read_partitions
from diffops.data.prepare import PreparedDataset, crop_resize, load_split, prepare_celeba
from diffops.data.synthetic_celeba import DRAWN_ATTRIBUTES, generate_celeba_like


def tree_digest(root):
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(p.relative_to(root).as_posix().encode() + p.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    root = tmp_path_factory.mktemp("raw") / "celeba"
    generate_celeba_like(root, 300, seed=7, num_workers=1, progress=False)
    return root


def test_layout_matches_celeba(raw):
    files = sorted(p.name for p in (raw / "img_align_celeba").iterdir())
    assert files[:2] == ["000001.jpg", "000002.jpg"] and len(files) == 300
    with Image.open(raw / "img_align_celeba" / "000001.jpg") as img:
        assert img.format == "JPEG" and img.mode == "RGB" and img.size == (178, 218)
    lines = (raw / "list_attr_celeba.txt").read_text().splitlines()
    assert lines[0].strip() == "300" and lines[1].split() == list(ATTRIBUTE_NAMES)
    names, attrs = read_attributes(raw / "list_attr_celeba.txt")
    assert names == files and set(np.unique(attrs)) == {-1, 1}
    parts = read_partitions(raw / "list_eval_partition.txt")
    counts = np.bincount(list(parts.values()), minlength=3) / 300
    assert np.allclose(counts, [162770 / 202599, 19867 / 202599, 19962 / 202599], atol=0.02)


def test_attributes_are_celeba_like(raw):
    _, attrs = read_attributes(raw / "list_attr_celeba.txt")
    a = {name: attrs[:, i] > 0 for i, name in enumerate(ATTRIBUTE_NAMES)}
    assert 0.25 < a["Male"].mean() < 0.5
    assert a["Male"][a["Blond_Hair"]].mean() < 0.3                 # blond mostly not male
    assert not (a["Mustache"] & ~a["Male"]).any()
    for name in DRAWN_ATTRIBUTES:
        assert a[name].any() and not a[name].all(), name


def test_same_seed_same_bytes_for_any_worker_count(raw, tmp_path):
    generate_celeba_like(tmp_path / "again", 300, seed=7, num_workers=2, progress=False)
    assert tree_digest(tmp_path / "again") == tree_digest(raw)
    generate_celeba_like(tmp_path / "other", 20, seed=8, num_workers=1, progress=False)
    assert (tmp_path / "other" / "img_align_celeba" / "000001.jpg").read_bytes() != \
        (raw / "img_align_celeba" / "000001.jpg").read_bytes()


def test_prepare_crops_resizes_and_splits(raw, tmp_path):
    prepare_celeba(raw, tmp_path / "prep", crop=140, resolution=16, num_workers=2, progress=False)
    meta = json.loads((tmp_path / "prep" / "meta.json").read_text())
    images, attrs = load_split(tmp_path / "prep", "train")
    assert images.dtype == np.uint8 and images.shape[1:] == (3, 16, 16)
    assert sum(meta["counts"].values()) == 300 and meta["skipped"] == 0
    # Pixel identity with an independent reimplementation: rows 39..178, cols 19..158, PIL bicubic.
    first = (tmp_path / "prep" / "train_files.txt").read_text().split()[0]
    with Image.open(raw / "img_align_celeba" / first) as img:
        ref = np.asarray(img.convert("RGB").crop((19, 39, 159, 179)).resize((16, 16), Image.BICUBIC))
    assert np.array_equal(images[0], ref.transpose(2, 0, 1))
    names, attrs_pm1 = read_attributes(raw / "list_attr_celeba.txt")
    assert np.array_equal(attrs[0], (attrs_pm1[names.index(first)] > 0).astype(np.uint8))
    row = PreparedDataset(tmp_path / "prep", "train")[0]
    assert np.array_equal(row["image"].numpy(), images[0]) and row["attrs"].shape == (40,)


def test_bad_images_are_reported_by_name_or_fail(raw, tmp_path):
    bad = tmp_path / "bad"
    import shutil
    shutil.copytree(raw, bad)
    d = bad / "img_align_celeba"
    (d / "000003.jpg").write_bytes((d / "000003.jpg").read_bytes()[:300])       # truncated
    (d / "000005.jpg").write_text("not an image")                               # not an image
    Image.new("RGB", (100, 100)).save(d / "000007.jpg")                         # smaller than the crop
    prepare_celeba(bad, tmp_path / "prep", crop=140, resolution=16, num_workers=1, progress=False)
    report = (tmp_path / "prep" / "errors.txt").read_text()
    assert all(n in report for n in ("000003.jpg", "000005.jpg", "000007.jpg"))
    assert json.loads((tmp_path / "prep" / "meta.json").read_text())["skipped"] == 3
    with pytest.raises(ValueError, match="000003.jpg"):
        prepare_celeba(bad, tmp_path / "prep2", crop=140, resolution=16, on_error="fail", num_workers=1,
                       progress=False)
    assert not (tmp_path / "prep2").exists() and not (tmp_path / "prep2.tmp").exists()


def test_missing_celeba_files_say_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match="list_attr_celeba.txt"):
        prepare_celeba(tmp_path, tmp_path / "out", progress=False)


def test_crop_resize_rejects_small_images():
    with pytest.raises(ValueError, match="smaller than"):
        crop_resize(Image.new("RGB", (100, 120)), 140, 32)

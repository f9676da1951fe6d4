"""The prepare stage: container layout, pixel identity of crop+resize, bad files, atomic output, hashes."""
import json
import shutil

import numpy as np
import pytest
from PIL import Image

from diffops.data import prepare
from diffops.data.celeba import ATTRIBUTE_NAMES, read_attributes, read_partitions
from diffops.data.prepare import PreparedDataset, load_split, prepare_celeba
from diffops.data.synthetic_celeba import generate_celeba_like

from ..helpers.filesystems import small_filesystem

N, R = 30, 16


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    root = tmp_path_factory.mktemp("raw") / "celeba"
    generate_celeba_like(root, N, seed=11, num_workers=1, progress=False)
    return root


@pytest.fixture(scope="module")
def prepared(raw, tmp_path_factory):
    out = tmp_path_factory.mktemp("prep") / "prepared"
    summary = prepare_celeba(raw, out, crop=140, resolution=R, num_workers=2, progress=False)
    return out, summary


def reference_pixels(path, crop, resolution):
    """Independent re-implementation: numpy slicing for the crop, PIL bicubic for the resize."""
    with Image.open(path) as img:
        x = np.asarray(img.convert("RGB"))
    top, left = (x.shape[0] - crop) // 2, (x.shape[1] - crop) // 2
    assert (top, left) == (39, 19)                                   # ScoreSDE's CelebA crop offsets
    patch = Image.fromarray(np.ascontiguousarray(x[top:top + crop, left:left + crop]))
    return np.asarray(patch.resize((resolution, resolution), Image.BICUBIC)).transpose(2, 0, 1)


def copy_raw(raw, dest):
    shutil.copytree(raw, dest)
    return dest / "img_align_celeba"


def test_layout_shapes_dtypes_and_meta(raw, prepared):
    out, summary = prepared
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted([".diffops", "meta.json", "errors.txt"] + [f"{s}_{k}" for s in ("train", "val", "test")
                                                          for k in ("images.npy", "attrs.npy", "files.txt")])
    meta = json.loads((out / "meta.json").read_text())
    assert meta["format"] == "diffops-prepared-v1" and (meta["crop"], meta["resolution"]) == (140, R)
    assert meta["attribute_names"] == list(ATTRIBUTE_NAMES) and meta["skipped"] == 0
    parts = read_partitions(raw / "list_eval_partition.txt")
    names_pm1, attrs_pm1 = read_attributes(raw / "list_attr_celeba.txt")
    for split, code in (("train", 0), ("val", 1), ("test", 2)):
        images, attrs = load_split(out, split)
        files = (out / f"{split}_files.txt").read_text().split()
        assert files == sorted(n for n, p in parts.items() if p == code)
        assert images.dtype == np.uint8 and images.shape == (len(files), 3, R, R)
        assert attrs.dtype == np.uint8 and attrs.shape == (len(files), 40) and set(np.unique(attrs)) <= {0, 1}
        expected = (attrs_pm1[[names_pm1.index(f) for f in files]] > 0).astype(np.uint8)
        assert np.array_equal(attrs, expected)
        assert meta["counts"][split] == len(files)
        assert np.allclose(list(meta["attribute_rates"][split].values()), attrs.mean(0), atol=1e-4)
    assert summary["counts"] == meta["counts"] and summary["content_sha256"] == meta["content_sha256"]


def test_pixels_match_an_independent_crop_and_resize(raw, prepared):
    out, _ = prepared
    images, _ = load_split(out, "val")
    first = (out / "val_files.txt").read_text().split()[0]
    assert np.array_equal(images[0], reference_pixels(raw / "img_align_celeba" / first, 140, R))


def test_dataset_rows_are_uint8_tensors(prepared):
    out, _ = prepared
    images, attrs = load_split(out, "train")
    ds = PreparedDataset(out, "train")
    assert len(ds) == len(images)
    row = ds[len(ds) - 1]
    assert row["image"].dtype == row["attrs"].dtype and str(row["image"].dtype) == "torch.uint8"
    assert np.array_equal(row["image"].numpy(), images[-1]) and np.array_equal(row["attrs"].numpy(), attrs[-1])


def test_bad_files_are_skipped_by_name_or_fail(raw, tmp_path):
    d = copy_raw(raw, tmp_path / "bad")
    good = (d / "000002.jpg").read_bytes()
    (d / "000002.jpg").write_bytes(good[:2] + bytes(200) + good[202:])   # corrupt JPEG header
    (d / "000004.jpg").write_bytes((d / "000004.jpg").read_bytes()[:400])  # truncated
    (d / "000006.jpg").write_text("this is text, not a JPEG\n")          # not an image
    Image.new("RGB", (120, 218)).save(d / "000008.jpg")                   # narrower than the crop
    summary = prepare_celeba(tmp_path / "bad", tmp_path / "out", crop=140, resolution=R, num_workers=1,
                             progress=False)
    bad = ["000002.jpg", "000004.jpg", "000006.jpg", "000008.jpg"]
    report = (tmp_path / "out" / "errors.txt").read_text().splitlines()
    assert [line.split()[0] for line in report] == bad and all(len(line.split()) > 1 for line in report)
    assert [e.split()[0] for e in summary["skipped"]] == bad
    assert json.loads((tmp_path / "out" / "meta.json").read_text())["skipped"] == 4
    kept = sum(len((tmp_path / "out" / f"{s}_files.txt").read_text().split()) for s in ("train", "val", "test"))
    assert kept == N - 4
    assert not any(b in (tmp_path / "out" / "train_files.txt").read_text() for b in bad)

    with pytest.raises(ValueError, match="000002.jpg"):
        prepare_celeba(tmp_path / "bad", tmp_path / "out2", crop=140, resolution=R, on_error="fail",
                       num_workers=2, progress=False)
    assert not (tmp_path / "out2").exists() and not (tmp_path / "out2.tmp").exists()


def test_interrupted_run_leaves_no_output(raw, tmp_path, monkeypatch):
    real = prepare._load_one

    def interrupted(args):
        if args[0].name == "000010.jpg":
            raise KeyboardInterrupt
        return real(args)
    monkeypatch.setattr(prepare, "_load_one", interrupted)
    with pytest.raises(KeyboardInterrupt):
        prepare_celeba(raw, tmp_path / "out", crop=140, resolution=R, num_workers=1, progress=False)
    assert not (tmp_path / "out").exists()


def test_content_hash_follows_the_data(raw, prepared, tmp_path):
    _, summary = prepared
    d = copy_raw(raw, tmp_path / "changed")
    again = prepare_celeba(tmp_path / "changed", tmp_path / "same", crop=140, resolution=R, num_workers=1,
                           progress=False)
    assert again["content_sha256"] == summary["content_sha256"]        # deterministic, source path aside
    Image.new("RGB", (178, 218), (200, 30, 30)).save(d / "000001.jpg", quality=95)
    changed = prepare_celeba(tmp_path / "changed", tmp_path / "other", crop=140, resolution=R, num_workers=1,
                             progress=False)
    assert changed["content_sha256"] != summary["content_sha256"]


@pytest.mark.parametrize("kwargs, name", [
    ({"crop": 0}, "crop"), ({"resolution": 0}, "resolution"), ({"crop": 16, "resolution": 32}, "resolution"),
    ({"on_error": "ignore"}, "on_error"),
])
def test_bad_arguments_are_named_before_any_work(tmp_path, kwargs, name):
    with pytest.raises(ValueError, match=name):
        prepare_celeba(tmp_path / "missing", tmp_path / "out", progress=False, **kwargs)   # root never read


def test_an_unrelated_output_folder_is_never_replaced(raw, prepared, tmp_path):
    keep = tmp_path / "my-photos"
    keep.mkdir()
    (keep / "holiday.jpg").write_bytes(b"precious")
    with pytest.raises(FileExistsError, match="diffops did not write it"):
        prepare_celeba(raw, keep, crop=140, resolution=R, num_workers=1, progress=False)
    assert (keep / "holiday.jpg").read_bytes() == b"precious"
    out, _ = prepared                       # a prepared container is replaced by a rerun
    again = tmp_path / "again"
    shutil.copytree(out, again)
    prepare_celeba(raw, again, crop=140, resolution=R, num_workers=1, progress=False)
    assert (again / "meta.json").exists()


def test_no_readable_image_fails_and_keeps_the_previous_output(raw, prepared, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(raw, broken)
    for jpg in (broken / "img_align_celeba").glob("*.jpg"):
        jpg.write_bytes(b"not a jpeg")
    out = tmp_path / "prepared"
    shutil.copytree(prepared[0], out)
    before = (out / "meta.json").read_text()
    with pytest.raises(ValueError, match=r"no readable image in the train/val/test split \(30 of 30"):
        prepare_celeba(broken, out, crop=140, resolution=R, num_workers=1, progress=False)
    assert (out / "meta.json").read_text() == before and not (tmp_path / "prepared.tmp").exists()


def test_a_full_disk_is_one_error_and_keeps_the_previous_output(raw, prepared, tmp_path):
    mnt = small_filesystem(tmp_path / "small", "64k")
    out = mnt / "prepared"
    shutil.copytree(prepared[0], out, ignore=shutil.ignore_patterns("*_images.npy"))
    before = sorted(p.name for p in out.iterdir())
    with pytest.raises(OSError, match="No space left on device") as e:
        prepare_celeba(raw, out, crop=140, resolution=64, num_workers=1, progress=False)
    assert str(out.with_name("prepared.tmp")) in str(e.value) and "free" in str(e.value)
    assert sorted(p.name for p in out.iterdir()) == before and not out.with_name("prepared.tmp").exists()


def test_partition_entries_for_unlisted_images_are_reported(raw, tmp_path):
    extra = tmp_path / "celeba"
    shutil.copytree(raw, extra)
    with open(extra / "list_eval_partition.txt", "a") as f:
        f.write("999999.jpg 0\n")
    with pytest.raises(ValueError, match=r"list_eval_partition.txt: 1 entries name images .* e.g. 999999.jpg"):
        prepare_celeba(extra, tmp_path / "out", crop=140, resolution=R, num_workers=1, progress=False)


def test_an_empty_split_is_refused_by_name(tmp_path):
    root = tmp_path / "empty"
    root.mkdir()
    np.save(root / "train_attrs.npy", np.zeros((0, 40), np.uint8))
    np.save(root / "train_images.npy", np.zeros((0, 3, 8, 8), np.uint8))
    (root / "meta.json").write_text(json.dumps({"format": "diffops-prepared-v1"}))
    with pytest.raises(ValueError, match="empty: its train split holds no images"):
        PreparedDataset(root, "train")

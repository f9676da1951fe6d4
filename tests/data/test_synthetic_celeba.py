"""The synthetic CelebA stand-in: layout, determinism, atomic output, attribute statistics."""
import numpy as np
import pytest
from PIL import Image

from diffops.data import synthetic_celeba
from diffops.data.celeba import ATTRIBUTE_NAMES, read_attributes, read_partitions
from diffops.data.synthetic_celeba import DRAWN_ATTRIBUTES, generate_celeba_like, split_sizes

N = 400


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthetic") / "celeba"
    summary = generate_celeba_like(root, N, seed=3, num_workers=2, progress=False)
    return root, summary


def image_bytes(root, n):
    return [(root / "img_align_celeba" / f"{i:06d}.jpg").read_bytes() for i in range(1, n + 1)]


def test_layout_and_headers(raw):
    root, summary = raw
    assert sorted(p.name for p in root.iterdir()) == [".diffops", "img_align_celeba", "list_attr_celeba.txt",
                                                      "list_eval_partition.txt"]
    assert not root.with_name("celeba.tmp").exists()
    files = sorted(p.name for p in (root / "img_align_celeba").iterdir())
    assert files == [f"{i:06d}.jpg" for i in range(1, N + 1)]
    with Image.open(root / "img_align_celeba" / "000001.jpg") as img:
        assert (img.format, img.mode, img.size) == ("JPEG", "RGB", (178, 218))
    lines = (root / "list_attr_celeba.txt").read_text().splitlines()
    assert lines[0] == str(N) and lines[1].split() == list(ATTRIBUTE_NAMES)
    names, attrs = read_attributes(root / "list_attr_celeba.txt")
    assert names == files and attrs.shape == (N, 40) and set(np.unique(attrs)) == {-1, 1}
    assert summary["num_images"] == N and summary["images_per_s"] > 0


def test_partitions_are_celeba_proportioned_index_blocks(raw):
    root, summary = raw
    parts = read_partitions(root / "list_eval_partition.txt")
    codes = np.array([parts[f"{i:06d}.jpg"] for i in range(1, N + 1)])
    assert np.all(np.diff(codes) >= 0)                              # train block, then val, then test
    assert np.allclose(np.bincount(codes, minlength=3) / N, [0.8034, 0.0981, 0.0985], atol=0.01)
    assert tuple(summary["counts"].values()) == split_sizes(N)
    assert split_sizes(202599) == (162770, 19867, 19962)


def test_same_seed_same_bytes_for_any_worker_count(raw, tmp_path):
    root, _ = raw
    generate_celeba_like(tmp_path / "w1", 40, seed=3, num_workers=1, progress=False)
    generate_celeba_like(tmp_path / "w2", 40, seed=3, num_workers=2, progress=False)
    # Image i depends only on (seed, i): identical across worker counts and dataset sizes.
    assert image_bytes(tmp_path / "w1", 40) == image_bytes(tmp_path / "w2", 40) == image_bytes(root, 40)
    for name in ("list_attr_celeba.txt", "list_eval_partition.txt"):
        assert (tmp_path / "w1" / name).read_bytes() == (tmp_path / "w2" / name).read_bytes()
    generate_celeba_like(tmp_path / "s4", 5, seed=4, num_workers=1, progress=False)
    assert all(a != b for a, b in zip(image_bytes(tmp_path / "s4", 5), image_bytes(root, 5)))


def test_attributes_are_celeba_like(raw):
    root, _ = raw
    _, attrs = read_attributes(root / "list_attr_celeba.txt")
    a = {name: attrs[:, i] > 0 for i, name in enumerate(ATTRIBUTE_NAMES)}
    assert 0.3 < a["Male"].mean() < 0.55 and 0.65 < a["Young"].mean() < 0.88
    assert a["Male"][a["Blond_Hair"]].mean() < 0.3
    assert a["Gray_Hair"][a["Young"]].mean() < a["Gray_Hair"][~a["Young"]].mean()
    hair = np.stack([a[k] for k in ("Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair")])
    assert hair.sum(0).max() == 1 and (hair.sum(0) == 0).any()       # at most one colour; some "other"
    female = ~a["Male"]
    for name in ("Mustache", "Goatee", "Sideburns", "Bald"):
        assert not (a[name] & female).any(), name
    assert a["No_Beard"][female].all() and not (a["Wearing_Lipstick"] & a["Male"]).any()
    assert not (a["Goatee"] & a["No_Beard"]).any()
    for name in DRAWN_ATTRIBUTES:
        assert a[name].any() and not a[name].all(), name


def test_undrawn_attributes_do_not_change_the_picture():
    rng = np.random.default_rng([0, 1])
    a = synthetic_celeba.sample_attributes(rng)
    state = rng.bit_generator.state
    first = np.asarray(synthetic_celeba.draw_face(a, rng))
    flipped = {k: (not v if k not in DRAWN_ATTRIBUTES else v) for k, v in a.items()}
    rng.bit_generator.state = state
    assert np.array_equal(first, np.asarray(synthetic_celeba.draw_face(flipped, rng)))


def test_face_is_inside_the_prepare_crop():
    # The figure differs from the background mostly inside rows 39..178, columns 19..158.
    for i in range(8):
        rng = np.random.default_rng([0, i])
        a = synthetic_celeba.sample_attributes(rng)
        a["Male"], a["Wearing_Hat"] = True, False                   # short hair: the face's own extent
        img = np.asarray(synthetic_celeba.draw_face(a, rng)).astype(int)
        eye_row = img[100:125, 19:159]
        assert (np.abs(eye_row - img[100:125, 2:3]).sum(-1) > 30).mean() > 0.3  # a face at eye level
        assert np.abs(img[:30] - img[:30, :1]).max() < 10                     # nothing near the top


def test_interrupted_run_keeps_the_old_dataset(tmp_path, monkeypatch):
    root = tmp_path / "celeba"
    generate_celeba_like(root, 6, seed=0, num_workers=1, progress=False)
    before = image_bytes(root, 6)

    def boom(args):
        if args[1] == 3:
            raise KeyboardInterrupt
        return synthetic_celeba.render_sample(*args)
    monkeypatch.setattr(synthetic_celeba, "_render_star", boom)
    with pytest.raises(KeyboardInterrupt):
        generate_celeba_like(root, 6, seed=1, num_workers=1, progress=False)
    assert image_bytes(root, 6) == before                             # never half-replaced


def test_refuses_to_replace_a_foreign_directory(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("precious")
    with pytest.raises(FileExistsError, match="diffops did not write it"):
        generate_celeba_like(tmp_path / "mine", 2, seed=0, progress=False)
    assert (tmp_path / "mine" / "thesis.tex").exists()


def test_nuisance_narrows_background_and_clothes_but_keeps_the_face():
    """generate.nuisance: the same draws, the background / clothes colours pulled to grey; 1 = the default data."""
    def spread(nuisance):
        corners, faces = [], []
        for i in range(12):
            rng = np.random.default_rng([0, i])
            a = synthetic_celeba.sample_attributes(rng)
            img = np.asarray(synthetic_celeba.draw_face(a, rng, nuisance)).astype(float)
            corners.append(img[2:12, 2:12].mean((0, 1)))
            faces.append(img[110:115, 80:100].mean((0, 1)))                 # skin between the eyes
        return np.std(corners, 0).mean(), np.array(faces)
    full, faces_full = spread(1.0)
    narrowed, faces_narrowed = spread(0.25)
    assert narrowed < 0.35 * full
    assert np.abs(faces_full - faces_narrowed).max() < 1e-9
    assert synthetic_celeba.render_sample(3, 5)[1] == synthetic_celeba.render_sample(3, 5, 1.0)[1]
    with pytest.raises(ValueError, match="nuisance"):
        generate_celeba_like("unused", 10, seed=0, nuisance=1.5, progress=False)

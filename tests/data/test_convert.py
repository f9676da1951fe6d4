"""diffops convert: bad inputs listed by name, skip vs fail, atomic outputs, parallel == serial, CLI."""
import io
import json
import os
import signal
import subprocess
import sys
import time
import zipfile

import numpy as np
import PIL.Image
import pytest
from click.testing import CliRunner

from diffops.cli import main
from diffops.data.containers import Edm2Reader, LmdbReader
from diffops.data.convert import ConvertError, convert
from diffops.data.sources import check_raw

BAD = {"cls_a/corrupt.jpg": "random bytes", "cls_a/truncated.jpg": "half a JPEG",
       "cls_b/notimage.png": "text", "cls_b/tiny.jpg": "20x20, smaller than the crop"}


def jpeg(h, w, seed, quality=90):
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (h // 4 + 1, w // 4 + 1, 3), dtype=np.uint8)
    img = PIL.Image.fromarray(base).resize((w, h), PIL.Image.BILINEAR)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


@pytest.fixture
def source(tmp_path):
    """12 good 48x40 JPEGs in two class folders plus the four bad files of BAD."""
    root = tmp_path / "src"
    for i in range(12):
        p = root / ("cls_a" if i % 2 else "cls_b") / f"img{i:03d}.jpg"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(jpeg(48, 40, i))
    good = jpeg(48, 40, 99)
    (root / "cls_a" / "corrupt.jpg").write_bytes(np.random.default_rng(0).bytes(3000))
    (root / "cls_a" / "truncated.jpg").write_bytes(good[: len(good) // 2])
    (root / "cls_b" / "notimage.png").write_text("this is not a PNG\n")
    (root / "cls_b" / "tiny.jpg").write_bytes(jpeg(20, 20, 5))
    return root


ARGS = dict(transform="celeba-crop", crop=32, resolution=16, progress=False)


def sorted_names(root):
    return sorted(os.path.relpath(os.path.join(d, f), root).replace("\\", "/")
                  for d, _, fs in os.walk(root) for f in fs)


def test_skip_lists_bad_files_by_name_and_keeps_index_gaps(source, tmp_path, capsys):
    report = convert(source, tmp_path / "out", num_workers=2, batch_size=3, **ARGS)
    skipped = {s["file"]: s["error"] for s in report["skipped"]}
    assert set(skipped) == set(BAD)
    assert "UnidentifiedImageError" in skipped["cls_a/corrupt.jpg"] and "truncated" in skipped["cls_a/truncated.jpg"]
    assert "TooSmall" in skipped["cls_b/tiny.jpg"]
    assert report["status"] == "complete" and report["written"] == 12 and report["skipped_count"] == 4
    on_disk = json.loads((tmp_path / "out.report.json").read_text())
    assert on_disk["skipped"] == report["skipped"]
    out = capsys.readouterr().out
    assert all(name in out for name in BAD) and "skipped 4" in out and "images/s" in out

    # Index i is the i-th file of the sorted source; skipped files leave gaps, labels = class folders.
    names = [n for n in sorted_names(source)]
    r = Edm2Reader(tmp_path / "out")
    expected = [f"{i // 1000:05d}/img{i:08d}.png" for i, n in enumerate(names) if n not in BAD]
    assert r.names == expected
    assert r.labels == [0 if names[int(n[-12:-4])].startswith("cls_a") else 1 for n in r.names]
    assert all(r[i].shape == (16, 16, 3) for i in range(len(r)))


def test_fail_stops_at_the_first_bad_file_and_leaves_no_output(source, tmp_path):
    with pytest.raises(ConvertError, match="cls_a/corrupt.jpg"):
        convert(source, tmp_path / "out.zip", num_workers=2, batch_size=2, on_error="fail", **ARGS)
    assert not (tmp_path / "out.zip").exists() and not (tmp_path / "out.zip.tmp").exists()
    assert json.loads((tmp_path / "out.zip.report.json").read_text())["status"] == "failed"


@pytest.mark.parametrize("dest", ["out.zip", "out.lmdb", "out"])
def test_two_workers_write_exactly_what_one_process_writes(source, tmp_path, dest):
    a = convert(source, tmp_path / "a" / dest, num_workers=1, **ARGS)
    b = convert(source, tmp_path / "b" / dest, num_workers=2, batch_size=2, **ARGS)
    assert a["content_sha256"] == b["content_sha256"] and a["written"] == b["written"] == 12
    if dest.endswith(".zip"):
        with zipfile.ZipFile(tmp_path / "b" / dest) as z:
            assert z.testzip() is None and all(i.compress_type == zipfile.ZIP_STORED for i in z.infolist())
        assert (tmp_path / "a" / dest).read_bytes() == (tmp_path / "b" / dest).read_bytes()
    if dest != "out.lmdb":                   # a folder's members are written by the workers themselves
        assert sorted_names(tmp_path / "a" / dest) == sorted_names(tmp_path / "b" / dest)
        ra, rb = Edm2Reader(tmp_path / "a" / dest), Edm2Reader(tmp_path / "b" / dest)
    else:
        ra, rb = LmdbReader(tmp_path / "a" / dest), LmdbReader(tmp_path / "b" / dest)
        assert (rb.prefix, rb.zfill, len(rb)) == ("16", 7, 12)          # compact keys 0..11
    assert all(np.array_equal(ra[i], rb[i]) for i in range(12))


def test_non_square_or_mixed_outputs_are_rejected(source, tmp_path):
    with pytest.raises(ConvertError, match="square power-of-two"):
        convert(source, tmp_path / "o1", transform="none", resolution=0, progress=False)
    assert not (tmp_path / "o1").exists()


_INTERRUPTIBLE = """
import signal, sys, time
signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C as in a terminal (a background job inherits SIG_IGN)
import diffops.data.convert as c
orig, calls = c.convert_one, [0]
def slow(*a, **k):                  # 20 quick images per worker, then slow ones: the signal lands mid-run
    calls[0] += 1
    time.sleep(0.02 if calls[0] <= 20 else 0.5)
    return orig(*a, **k)
c.convert_one = slow
c.convert(sys.argv[1], sys.argv[2], transform="center-crop", resolution=16, num_workers=2, batch_size=2, progress=False)
"""


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL])
def test_interrupted_convert_leaves_nothing_that_looks_complete(tmp_path, sig):
    src = tmp_path / "src"
    src.mkdir()
    for i in range(200):
        (src / f"{i:04d}.jpg").write_bytes(jpeg(24, 24, i))
    dest = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-c", _INTERRUPTIBLE, str(src), str(dest)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.time() + 60
    while time.time() < deadline and len(list((tmp_path / "out.tmp").rglob("*.png"))) < 20:
        time.sleep(0.05)
    assert proc.poll() is None, proc.communicate()
    (os.killpg if sig == signal.SIGKILL else os.kill)(proc.pid, sig)
    proc.wait(timeout=60)
    assert proc.returncode != 0
    assert not dest.exists()                                  # never the final name
    if sig != signal.SIGKILL:                                 # cleaned up, and the report says so
        assert not (tmp_path / "out.tmp").exists()
        assert json.loads((tmp_path / "out.report.json").read_text())["status"] == "interrupted"
    # A rerun starts over and completes (a stale .tmp from a killed run is removed first).
    assert convert(src, dest, transform="center-crop", resolution=16, num_workers=2, progress=False)["written"] == 200
    assert len(Edm2Reader(dest)) == 200


def test_check_raw_says_what_to_download_and_where(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"download ImageNet-1k .* put it at .*/raw/imagenet"):
        check_raw(tmp_path / "raw" / "imagenet", "imagenet")
    (tmp_path / "raw" / "imagenet" / "n01").mkdir(parents=True)
    (tmp_path / "raw" / "imagenet" / "n01" / "a.JPEG").write_bytes(b"x")
    m = check_raw(tmp_path / "raw" / "imagenet", "imagenet", tmp_path / "manifest.json")
    assert m["files"] == 1 and json.loads((tmp_path / "manifest.json").read_text()) == m


def test_cli_options_override_params_and_are_validated(source, tmp_path):
    runner = CliRunner()
    missing = str(tmp_path / "no-params.yaml")                  # outside a project: the defaults
    res = runner.invoke(main, ["convert", "--params", missing, "--source", str(source), "--dest",
                               str(tmp_path / "o.zip"), "--transform", "squash", "--resolution", "8",
                               "--num-workers", "1", "--no-mlflow"])
    assert res.exit_code == 0, res.output
    assert "skipped 3" in res.output and Edm2Reader(tmp_path / "o.zip")[0].shape == (8, 8, 3)   # squash: tiny is fine
    res = runner.invoke(main, ["convert", "--params", missing, "--source", str(source), "--dest",
                               str(tmp_path / "o2"), "--resolution", "-3", "--no-mlflow"])
    assert res.exit_code != 0 and "convert.resolution: must be an integer >= 0" in res.output
    res = runner.invoke(main, ["convert", "--params", missing, "--source", str(source), "--dest",
                               str(tmp_path / "o3"), "--transform", "center-crop-dhariwal", "--filter", "bicubic",
                               "--no-mlflow"])
    assert res.exit_code != 0 and "convert.filter" in res.output
    assert not (tmp_path / "o2").exists() and not (tmp_path / "o3").exists()


@pytest.fixture
def celeba_root(tmp_path):
    from diffops.data.celeba import write_attributes, write_partitions
    root = tmp_path / "celeba"
    (root / "img_align_celeba").mkdir(parents=True)
    names = [f"{i:06d}.jpg" for i in range(1, 6)]
    for i, n in enumerate(names):
        (root / "img_align_celeba" / n).write_bytes(jpeg(218, 178, i))
    attrs = np.where(np.random.default_rng(0).random((5, 40)) < 0.5, -1, 1)
    write_attributes(root / "list_attr_celeba.txt", names, attrs)
    write_partitions(root / "list_eval_partition.txt", names, [0, 0, 0, 1, 2])
    return root


def test_celeba_root_to_diffae_lmdb_and_back_to_an_edm2_folder(celeba_root, tmp_path):
    # diffae's celeba.lmdb: original 178x218 images, keys "None-0000000", WebP; DiTi reads the attributes there.
    r = convert(celeba_root, tmp_path / "celeba.lmdb", transform="none", resolution=0, num_workers=2, progress=False)
    assert r["written"] == 5
    lm = LmdbReader(tmp_path / "celeba.lmdb")
    assert (lm.prefix, lm.zfill, len(lm)) == ("None", 7, 5) and lm[0].shape == (218, 178, 3)
    attr_text = (tmp_path / "celeba.lmdb" / "list_attr_celeba.txt").read_text()
    assert attr_text == (celeba_root / "list_attr_celeba.txt").read_text()
    # LMDB source -> d2c crop at 32 into an edm2 folder (the DiTi/diffae CelebA 64 pipeline, smaller).
    convert(tmp_path / "celeba.lmdb", tmp_path / "d2c", transform="d2c-crop", resolution=32, progress=False)
    out = Edm2Reader(tmp_path / "d2c")
    from diffops.data.transforms import make_transform
    assert np.array_equal(out[2], np.asarray(make_transform("d2c-crop", 32)(PIL.Image.fromarray(lm[2]))))
    # CelebA split + attribute labels into dataset.json.
    convert(celeba_root, tmp_path / "train.zip", transform="celeba-crop", resolution=32, progress=False,
            celeba_split="train")
    z = Edm2Reader(tmp_path / "train.zip")
    assert len(z) == 3 and len(z.labels[0]) == 40 and set(z.labels[0]) <= {0, 1}


def test_prepare_can_use_the_d2c_crop(celeba_root, tmp_path):
    from diffops.data.prepare import load_split, prepare_celeba
    from diffops.data.transforms import make_transform
    prepare_celeba(celeba_root, tmp_path / "prep", resolution=16, transform="d2c-crop", progress=False)
    images, _ = load_split(tmp_path / "prep", "train")
    src = PIL.Image.open(celeba_root / "img_align_celeba" / "000002.jpg").convert("RGB")
    assert np.array_equal(images[1].transpose(1, 2, 0), np.asarray(make_transform("d2c-crop", 16)(src)))

"""Containers read and written as their reference tools do: edm2 folder/zip, diffae LMDB, sources."""
import io
import json
import os
import shutil
import subprocess
import zipfile

import lmdb
import numpy as np
import PIL.Image
import pytest
import torch

from diffops.data.containers import (Edm2Reader, Edm2Writer, LmdbReader, LmdbWriter, StoredZipWriter, edm2_name,
                                     encode_png, lmdb_key)
from diffops.data.datasets import ContainerImageDataset
from diffops.data.sources import CelebASource, FolderSource, ZipSource, open_source


def png_bytes(arr):
    buf = io.BytesIO()
    PIL.Image.fromarray(arr).save(buf, format="png")
    return buf.getvalue()


def rand_img(h, w, seed):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_edm2_names_split_index_5_plus_8():
    assert edm2_name(0) == "00000/img00000000.png"
    assert edm2_name(12345) == "00012/img00012345.png"
    assert edm2_name(7, latent=True) == "00000/img-mean-std-00000007.npy"


@pytest.mark.parametrize("shape", [(1, 1), (8, 8), (218, 178), (300, 257)])
def test_level0_png_is_lossless_and_uncompressed(shape):
    arr = rand_img(*shape, 0)
    data = encode_png(PIL.Image.fromarray(arr))
    assert np.array_equal(np.asarray(PIL.Image.open(io.BytesIO(data))), arr)
    assert len(data) >= arr.size + shape[0]          # stored, not deflated


@pytest.mark.parametrize("suffix", ["", ".zip"])
def test_edm2_writer_layout_labels_and_reader(tmp_path, suffix):
    dest = tmp_path / f"ds{suffix}"
    w = Edm2Writer(dest)
    imgs = [rand_img(8, 8, i) for i in range(3)]
    for i, img in zip([0, 2, 3], imgs):                   # index 1 skipped: a gap, as edm2
        w.add(edm2_name(i), encode_png(PIL.Image.fromarray(img)), label=i % 2)
    assert not dest.exists() and (tmp_path / f"ds{suffix}.tmp").exists()      # nothing final before commit
    w.commit()
    assert dest.exists() and not (tmp_path / f"ds{suffix}.tmp").exists()
    if suffix:
        with zipfile.ZipFile(dest) as z:
            assert all(i.compress_type == zipfile.ZIP_STORED for i in z.infolist())
            meta = json.loads(z.read("dataset.json"))
    else:
        meta = json.loads((dest / "dataset.json").read_text())
    assert meta == {"labels": [["00000/img00000000.png", 0], ["00000/img00000002.png", 0],
                               ["00000/img00000003.png", 1]]}
    r = Edm2Reader(dest)
    assert r.names == ["00000/img00000000.png", "00000/img00000002.png", "00000/img00000003.png"]
    assert r.labels == [0, 0, 1]
    assert all(np.array_equal(r[i], imgs[i]) for i in range(3))


@pytest.mark.parametrize("members, limit", [(5, None), (5, 100), (70_000, None)],
                         ids=["plain", "zip64-offsets", "zip64-count"])
def test_stored_zip_is_read_by_zipfile_and_unzip(tmp_path, members, limit):
    """zip64 records where Python's zipfile writes them: offsets past 2 GiB (the limit lowered here to
    reach that code) and 65,535 or more members."""
    data = {f"{i // 1000:05d}/img{i:08d}.png": bytes([i % 251]) * (i % 7) for i in range(members)}

    def write(path):
        w = StoredZipWriter(path)
        if limit:
            w.LIMIT = limit
        for name, d in data.items():
            w.add(name, d)
        w.close()
    write(tmp_path / "a.zip")
    with zipfile.ZipFile(tmp_path / "a.zip") as z:
        assert z.testzip() is None and z.namelist() == list(data)
        assert all(z.read(n) == d for n, d in list(data.items())[:: max(1, members // 50)])
        assert all(i.compress_type == zipfile.ZIP_STORED for i in z.infolist())
    if shutil.which("unzip"):
        assert subprocess.run(["unzip", "-tq", str(tmp_path / "a.zip")], capture_output=True).returncode == 0
    write(tmp_path / "b.zip")                                   # fixed dates: the same members, the same bytes
    assert (tmp_path / "a.zip").read_bytes() == (tmp_path / "b.zip").read_bytes()


def test_dataset_json_is_null_when_any_label_is_missing(tmp_path):
    w = Edm2Writer(tmp_path / "ds")
    w.add(edm2_name(0), b"x", label=3)
    w.add(edm2_name(1), b"y", label=None)
    w.commit()
    assert json.loads((tmp_path / "ds" / "dataset.json").read_text()) == {"labels": None}


def test_folder_destination_must_be_empty(tmp_path):
    (tmp_path / "ds").mkdir()
    Edm2Writer(tmp_path / "ds").abort()                       # empty: fine
    (tmp_path / "ds" / "f").write_text("x")
    with pytest.raises(FileExistsError):
        Edm2Writer(tmp_path / "ds")


def write_diffae_lmdb(path, images, size, zfill, fmt="webp", quality=100):
    """diffae data_resize_*.py's writer, re-typed: keys f'{size}-{str(i).zfill(Z)}', then 'length'."""
    with lmdb.open(str(path), map_size=1024 ** 3, readahead=False) as env:
        with env.begin(write=True) as txn:
            for i, img in enumerate(images):
                buf = io.BytesIO()
                PIL.Image.fromarray(img).save(buf, format=fmt, quality=quality)
                txn.put(f"{size}-{str(i).zfill(zfill)}".encode("utf-8"), buf.getvalue())
            txn.put("length".encode("utf-8"), str(len(images)).encode("utf-8"))


@pytest.mark.parametrize("prefix,zfill", [("None", 7), ("256", 5), ("256", 7)])
def test_lmdb_writer_keys_match_diffae(tmp_path, prefix, zfill):
    w = LmdbWriter(tmp_path / "x.lmdb", prefix, zfill, map_size=1 << 26, batch=2)
    for i in range(5):
        w.add(i, png_bytes(rand_img(4, 4, i)))
    w.commit()
    with lmdb.open(str(tmp_path / "x.lmdb"), readonly=True, lock=False) as env, env.begin() as txn:
        keys = [k for k, _ in txn.cursor()]
        assert txn.get(b"length") == b"5"
    assert sorted(keys) == sorted([f"{prefix}-{str(i).zfill(zfill)}".encode() for i in range(5)] + [b"length"])
    assert lmdb_key("None", 3, 7) == b"None-0000003" and lmdb_key("256", 3, 5) == b"256-00003"


def test_lmdb_reader_reads_a_diffae_lmdb_and_detects_its_layout(tmp_path):
    images = [rand_img(16, 12, i) for i in range(4)]
    write_diffae_lmdb(tmp_path / "ffhq", images, 256, 5, fmt="png")
    r = LmdbReader(tmp_path / "ffhq")
    assert (r.prefix, r.zfill, len(r)) == ("256", 5, 4)
    assert all(np.array_equal(r[i], images[i]) for i in range(4))
    src = open_source(tmp_path / "ffhq")
    assert src.kind == "lmdb" and src.names[1] == "256-00001"


class _LmdbRows(torch.utils.data.Dataset):
    def __init__(self, reader):
        self.reader = reader

    def __len__(self):
        return len(self.reader)

    def __getitem__(self, i):
        return torch.from_numpy(self.reader[i].copy()), os.getpid()


def test_lmdb_reader_opens_one_environment_per_worker(tmp_path):
    images = [rand_img(6, 6, i) for i in range(8)]
    write_diffae_lmdb(tmp_path / "c", images, "None", 7, fmt="png")
    reader = LmdbReader(tmp_path / "c")
    reader[0]                                                    # opened in this process ...
    loader = torch.utils.data.DataLoader(_LmdbRows(reader), batch_size=2, num_workers=2)
    got, pids = [], set()
    for x, pid in loader:                                        # ... and again, read-only, in each worker
        got.extend(x)
        pids.update(pid.tolist())
    assert len(pids) == 2 and os.getpid() not in pids
    assert all(np.array_equal(g.numpy(), im) for g, im in zip(got, images))


def test_folder_source_sorts_full_paths_and_labels_from_top_level_folders(tmp_path):
    # edm2 sorts full-path strings: "a.b/x" < "a/x" because '.' < '/'; a per-part sort would disagree.
    for rel in ["a/x.png", "a.b/x.png", "b/y.JPG", "b/notes.txt", "b/sub/z.png"]:
        p = tmp_path / "root" / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"data")
    src = FolderSource(tmp_path / "root")
    assert src.names == ["a.b/x.png", "a/x.png", "b/sub/z.png", "b/y.JPG"]
    assert src.labels == [1, 0, 2, 2]                             # classes: sorted top-level names a, a.b, b
    (tmp_path / "root" / "dataset.json").write_text(json.dumps({"labels": [["a/x.png", 7]]}))
    assert FolderSource(tmp_path / "root").labels == [None, 7, None, None]
    single = tmp_path / "one" / "only"
    single.mkdir(parents=True)
    (single / "i.png").write_bytes(b"x")
    assert FolderSource(tmp_path / "one").labels == [None]       # one folder: no labels


def test_zip_source_sorted_namelist_and_labels(tmp_path):
    with zipfile.ZipFile(tmp_path / "d.zip", "w") as z:
        z.writestr("b.png", b"2")
        z.writestr("a.png", b"1")
        z.writestr("dataset.json", json.dumps({"labels": [["a.png", 4], ["b.png", 5]]}))
    src = ZipSource(tmp_path / "d.zip")
    assert src.names == ["a.png", "b.png"] and src.labels == [4, 5] and src.read(1) == b"2"


def test_celeba_source_splits_and_binary_attributes(tmp_path):
    from diffops.data.celeba import ATTRIBUTE_NAMES, write_attributes, write_partitions
    root = tmp_path / "celeba"
    (root / "img_align_celeba").mkdir(parents=True)
    names = [f"{i:06d}.jpg" for i in (3, 1, 2)]
    attrs = np.ones((3, 40), int)
    attrs[1, 0] = -1
    write_attributes(root / "list_attr_celeba.txt", names, attrs)
    write_partitions(root / "list_eval_partition.txt", names, [2, 0, 0])
    assert CelebASource(root).names == ["000001.jpg", "000002.jpg", "000003.jpg"]
    train = CelebASource(root, "train")
    assert train.names == ["000001.jpg", "000002.jpg"] and train.labels[0][0] == 0 and train.labels[1][0] == 1
    assert len(train.labels[0]) == len(ATTRIBUTE_NAMES)
    assert CelebASource(root, "test").names == ["000003.jpg"]


def test_container_image_dataset_resizes_lmdb_like_diffae(tmp_path):
    images = [rand_img(40, 30, i) for i in range(3)]
    write_diffae_lmdb(tmp_path / "l", images, 256, 5, fmt="png")
    ds = ContainerImageDataset(tmp_path / "l", 16)
    ref = PIL.Image.fromarray(images[1]).resize((16, 21), PIL.Image.BILINEAR).crop((0, 2, 16, 18))
    assert np.array_equal(ds[1]["image"].numpy().transpose(1, 2, 0), np.asarray(ref))

"""Image sources for convert/encode: an ordered list of names and labels, and the raw bytes of each.

    CelebA root     img_align_celeba/ + list_attr_celeba.txt + list_eval_partition.txt; file names in
                    sorted order; label = the 40 attributes in {0, 1}; a split (train/val/test = 0/1/2)
    image folder    e.g. an ImageNet `class/xxx.JPEG` tree or an edm2 folder: files whose extension PIL
                    knows, sorted by full path string (edm2 dataset_tool); labels from the root's
                    dataset.json, else sorted top-level folder names as class indices (only if >= 2)
    zip             edm2 zip: sorted namelist(), labels from dataset.json inside
    LMDB            diffae: keys "{prefix}-{index zero-padded}" + "length"; prefix and zfill detected

Sources hold no open handles when pickled: a zip file or LMDB environment is opened lazily in
each process that reads (DataLoader / pool workers), read-only and, for LMDB, lock-free.
"""
from __future__ import annotations

import hashlib
import json
import os
import zipfile
from pathlib import Path

from PIL import Image

from ..utils.io import write_json_atomic
from .celeba import ATTR_FILE, IMAGE_DIR, PARTITION_FILE, SPLITS, read_attributes, read_partitions

DOWNLOAD_HINTS = {
    "celeba": "the official CelebA \"Align&Cropped Images\" (img_align_celeba/) and the annotation files "
              "list_attr_celeba.txt, list_eval_partition.txt (https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html)",
    "imagenet": "ImageNet-1k (ILSVRC2012) training images from https://image-net.org: extract "
                "ILSVRC2012_img_train.tar and its per-class tars so that the folder holds n01440764/*.JPEG ...",
    "ffhq": "FFHQ images1024x1024 (https://github.com/NVlabs/ffhq-dataset), the 70,000 PNGs 00000.png ... "
            "69999.png in their 1,000-image subfolders",
    "sd-vae-ft-mse": "the diffusers VAE stabilityai/sd-vae-ft-mse (config.json + diffusion_pytorch_model.safetensors), "
                     "e.g. `huggingface-cli download stabilityai/sd-vae-ft-mse --local-dir <this folder>` on a "
                     "machine with internet access",
}


def image_extensions() -> set[str]:
    Image.init()
    return set(Image.EXTENSION)


def is_image_name(name: str, exts: set[str]) -> bool:
    return f".{name.split('.')[-1].lower()}" in exts          # edm2 is_image_ext


def toplevel_labels(names: list[str]) -> dict[str, int]:
    """edm2: class index = position of the top-level folder in sorted order, if there are >= 2 folders."""
    top = {n: n.split("/")[0] if "/" in n else "" for n in names}
    index = {t: i for i, t in enumerate(sorted(set(top.values())))}
    return {n: index[t] for n, t in top.items()} if len(index) > 1 else {}


class Source:
    """names[i] identifies item i in reports; labels[i] is its label or None; read(i) its bytes."""
    kind = "source"
    names: list[str]
    labels: list

    def __len__(self):
        return len(self.names)

    def read(self, i: int) -> bytes:
        raise NotImplementedError

    def __getstate__(self):                  # never pickle open handles; each process opens its own
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_h")}

    def digest(self) -> str:
        """Cheap identity of the source listing (names, labels, sizes where known)."""
        h = hashlib.sha256()
        for name, label in zip(self.names, self.labels):
            h.update(f"{name}\t{json.dumps(label)}\n".encode())
        return h.hexdigest()


class FolderSource(Source):
    kind = "folder"

    def __init__(self, root, labels_from_folders: bool = True):
        self.root = Path(root)
        exts, files = image_extensions(), []

        def walk(d: str):                    # os.scandir recursion, as edm2 (rglob is slow)
            with os.scandir(d) as it:
                for e in it:
                    if e.is_file():
                        files.append(os.path.join(d, e.name))
                    elif e.is_dir():
                        walk(os.path.join(d, e.name))
        walk(str(self.root))
        files = sorted(f for f in files if is_image_name(f, exts))  # full-path string sort (edm2)
        self.paths = files
        skip = len(str(self.root).rstrip(os.sep)) + 1            # walk() joined every path onto str(root)
        self.names = [f[skip:].replace("\\", "/") for f in files]
        labels = {}
        meta = self.root / "dataset.json"
        if meta.is_file():
            data = json.loads(meta.read_text())["labels"]
            labels = {x[0]: x[1] for x in data} if data is not None else {}
        if not labels and labels_from_folders:
            labels = toplevel_labels(self.names)
        self.labels = [labels.get(n) for n in self.names]

    def read(self, i):
        with open(self.paths[i], "rb") as f:
            return f.read()


class ZipSource(Source):
    kind = "zip"

    def __init__(self, path):
        self.path = Path(path)
        exts = image_extensions()
        with zipfile.ZipFile(self.path) as z:
            namelist = z.namelist()
            self.names = [n for n in sorted(namelist) if is_image_name(n, exts)]
            labels = {}
            if "dataset.json" in namelist:
                data = json.loads(z.read("dataset.json"))["labels"]
                labels = {x[0]: x[1] for x in data} if data is not None else {}
        self.labels = [labels.get(n) for n in self.names]

    def read(self, i):
        if getattr(self, "_h_pid", None) != os.getpid():        # one handle per process
            self._h_zip, self._h_pid = zipfile.ZipFile(self.path), os.getpid()
        return self._h_zip.read(self.names[i])


class CelebASource(Source):
    """The official CelebA layout; split 'all' or train/val/test (list_eval_partition codes 0/1/2)."""
    kind = "celeba"

    def __init__(self, root, split: str = "all"):
        from .celeba import check_celeba_root
        self.root = Path(root)
        check_celeba_root(self.root)
        if split != "all" and split not in SPLITS:
            raise ValueError(f"split: {split!r} is not one of all, {', '.join(SPLITS)}")
        names, attrs = read_attributes(self.root / ATTR_FILE)
        parts = read_partitions(self.root / PARTITION_FILE)
        order = sorted(range(len(names)), key=lambda i: names[i])
        keep = [i for i in order if split == "all" or parts.get(names[i]) == SPLITS[split]]
        self.names = [names[i] for i in keep]
        self.labels = [[int(v > 0) for v in attrs[i]] for i in keep]   # {-1, 1} -> {0, 1}

    def read(self, i):
        with open(self.root / IMAGE_DIR / self.names[i], "rb") as f:
            return f.read()


class LmdbSource(Source):
    kind = "lmdb"

    def __init__(self, path, prefix: str | None = None, zfill: int | None = None):
        from .containers import LmdbReader
        self.reader = LmdbReader(path, prefix=prefix, zfill=zfill)
        self.names = [self.reader.key(i) for i in range(len(self.reader))]
        self.labels = [None] * len(self.names)

    def read(self, i):
        return self.reader.read_bytes(i)


def open_source(path, celeba_split: str = "all") -> Source:
    """Pick the source kind from what is at `path`."""
    path = Path(path)
    if path.is_dir():
        if (path / "data.mdb").is_file():
            return LmdbSource(path)
        if (path / IMAGE_DIR).is_dir() and (path / ATTR_FILE).is_file():
            return CelebASource(path, celeba_split)
        return FolderSource(path)
    if path.is_file():
        if path.suffix.lower() == ".zip":
            return ZipSource(path)
        raise ValueError(f"{path}: only folders, .zip archives and LMDB folders are sources")
    raise FileNotFoundError(f"{path}: missing input file or directory")


def check_raw(path, dataset: str, out=None) -> dict:
    """Stop with what to download and where if `path` is missing or empty; else write a listing manifest.

    The manifest (relative names, sizes, mtimes) is what pipeline stages depend on instead of the raw
    folder itself, so that DVC need not hash hundreds of GB of raw images on every `dvc repro`.
    """
    path = Path(path)
    if not path.exists() or (path.is_dir() and not any(path.iterdir())):
        hint = DOWNLOAD_HINTS.get(dataset, dataset)
        raise FileNotFoundError(f"{path} is missing or empty: download {hint}, and put it at "
                                f"{path.resolve()}")
    h, count = hashlib.sha256(), 0
    for root, dirs, files in os.walk(path):
        dirs.sort()
        for f in sorted(files):
            st = os.stat(os.path.join(root, f))
            h.update(f"{os.path.relpath(os.path.join(root, f), path)}\t{st.st_size}\t{st.st_mtime_ns}\n".encode())
            count += 1
    manifest = {"path": str(path), "dataset": dataset, "files": count, "listing_sha256": h.hexdigest()}
    if out is not None:
        write_json_atomic(out, manifest)
    return manifest

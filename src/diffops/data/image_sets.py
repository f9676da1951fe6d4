"""Any set of images as uint8 (N, 3, H, W), for scoring: a prepared container (one split), an ADM/EDM
reference batch (.npz with arr_0, NHWC uint8), or a folder, zip or LMDB of image files (a sample set's
images/ included). Files are decoded to RGB; an unreadable file is an error that names it."""
from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
from PIL import Image

from .prepare import FORMAT as PREPARED_FORMAT
from .sources import open_source


def is_prepared(path: Path) -> bool:
    meta = path / "meta.json"
    return meta.is_file() and json.loads(meta.read_text()).get("format") == PREPARED_FORMAT


def load_images(path, split: str = "test") -> np.ndarray:
    """The whole set in memory (small sets: references of the attribute net, tests)."""
    return np.concatenate(list(image_batches(path, split)))


def image_batches(path, split: str = "test", batch: int = 1024):
    """The set as uint8 (n, 3, H, W) chunks of at most `batch` images, decoded as they are read, so that
    50,000 samples at 256 px are scored without holding them all."""
    path = Path(path)
    if path.is_dir() and is_prepared(path):
        images = np.load(path / f"{split}_images.npy", mmap_mode="r")
        for i in range(0, len(images), batch):
            yield np.ascontiguousarray(images[i:i + batch])
        return
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as data:
            if "arr_0" not in data:
                raise ValueError(f"{path}: no arr_0 images (a statistics file? it holds {', '.join(data.files)})")
            images = data["arr_0"]
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
            raise ValueError(f"{path}: arr_0 must be uint8 (N, H, W, 3) as ADM's reference batches, "
                             f"got {images.dtype} {images.shape}")
        for i in range(0, len(images), batch):
            yield np.ascontiguousarray(images[i:i + batch].transpose(0, 3, 1, 2))
        return
    if path.is_dir() and (path / "images").is_dir() and (path / "grid.png").is_file():
        path = path / "images"                      # a sample set: its images, not its grid
    source = open_source(path)
    if len(source) == 0:
        raise ValueError(f"{path}: no image files")
    shape, chunk = None, []
    for i, name in enumerate(source.names):
        try:
            with Image.open(io.BytesIO(source.read(i))) as img:
                array = np.asarray(img.convert("RGB"))
        except Exception as e:                      # PIL raises many types for broken files
            raise ValueError(f"{path}: cannot read image {name}: {e}") from None
        shape = shape or array.shape
        if array.shape != shape:
            raise ValueError(f"{path}: image {name} is {array.shape[1]}x{array.shape[0]}, the first one "
                             f"{shape[1]}x{shape[0]}; score images of one size")
        chunk.append(array)
        if len(chunk) == batch or i == len(source) - 1:
            yield np.stack(chunk).transpose(0, 3, 1, 2).copy()
            chunk = []

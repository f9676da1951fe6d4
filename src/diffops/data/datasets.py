"""Training-time datasets over the containers (rows are dicts of tensors, like PreparedDataset's).

Readers are opened lazily in each DataLoader worker (zip handles, LMDB environments read-only and
lock-free), so any number of workers can read one container at once.
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .containers import Edm2Reader, LmdbReader


def _label_columns(labels) -> tuple[str | None, list | None]:
    """dataset.json labels -> ("attrs", 40-bit lists) | ("label", class ints) | (None, None)."""
    if labels is None or any(x is None for x in labels):
        return None, None
    if all(isinstance(x, int) for x in labels):
        return "label", labels
    if all(isinstance(x, list) and len(x) == 40 for x in labels):
        return "attrs", labels
    return None, None


class LatentDataset(torch.utils.data.Dataset):
    """Rows {"moments": float32 (2C, h, w), "moments_xflip" (if given), "attrs"/"label" (if labelled)}."""

    def __init__(self, path, xflip_path=None):
        self.reader = Edm2Reader(path)
        self.names = [n for n in self.reader.names if n.endswith(".npy")]
        if len(self.names) != len(self.reader.names) or not self.names:
            raise ValueError(f"{path}: expected only .npy latents (an encode output)")
        self.flip = Edm2Reader(xflip_path) if xflip_path is not None else None
        if self.flip is not None and self.flip.names != self.names:
            raise ValueError(f"{xflip_path}: its latents do not pair one to one with {path}'s (names differ)")
        self.label_key, self.label_values = _label_columns(self.reader.labels)

    def __len__(self):
        return len(self.names)

    def __getitem__(self, i):
        row = {"moments": torch.from_numpy(self.reader[i])}
        if self.flip is not None:
            row["moments_xflip"] = torch.from_numpy(self.flip[i])
        if self.label_key == "attrs":
            row["attrs"] = torch.tensor(self.label_values[i], dtype=torch.uint8)
        elif self.label_key == "label":
            row["label"] = torch.tensor(self.label_values[i], dtype=torch.int64)
        return row


class ContainerImageDataset(torch.utils.data.Dataset):
    """Rows {"image": uint8 (3, R, R), "attrs"/"label"} of an edm2 folder/zip or a diffae LMDB.

    edm2 images must already be R x R. LMDB images (diffae stores larger originals) are resized as
    diffae's readers do: torchvision Resize(R) on the short side (PIL BILINEAR), then a centre crop.
    """

    def __init__(self, path, resolution: int):
        self.path, self.R = Path(path), resolution
        if (self.path / "data.mdb").is_file():
            self.reader, self.label_key = LmdbReader(self.path), None
        else:
            self.reader = Edm2Reader(self.path)
            self.label_key, self.label_values = _label_columns(self.reader.labels)
            first = self.reader[0]
            if first.shape[:2] != (resolution, resolution):
                raise ValueError(f"data.resolution: {resolution}, but {path} holds {first.shape[1]}x{first.shape[0]} "
                                 f"images; set data.resolution to {first.shape[0]} or convert again")

    def __len__(self):
        return len(self.reader)

    def __getitem__(self, i):
        if isinstance(self.reader, LmdbReader):
            img = Image.open(io.BytesIO(self.reader.read_bytes(i))).convert("RGB")
            if img.size != (self.R, self.R):
                W, H = img.size                     # torchvision Resize(R) + CenterCrop(R)
                w, h = (self.R, int(self.R * H / W)) if W <= H else (int(self.R * W / H), self.R)
                img = img.resize((w, h), Image.Resampling.BILINEAR)
                top, left = int(round((h - self.R) / 2)), int(round((w - self.R) / 2))
                img = img.crop((left, top, left + self.R, top + self.R))
            arr = np.asarray(img)
        else:
            arr = self.reader[i]
        row = {"image": torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))}
        if self.label_key == "attrs":
            row["attrs"] = torch.tensor(self.label_values[i], dtype=torch.uint8)
        elif self.label_key == "label":
            row["label"] = torch.tensor(self.label_values[i], dtype=torch.int64)
        return row

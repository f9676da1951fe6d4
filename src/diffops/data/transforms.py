"""Crop/resize transforms of the seed codebases, pixel for pixel (PIL in, PIL out).

    none                  edm2 `scale`: LANCZOS resize to R x R if the size differs (no crop)
    center-crop           edm2: square of side min(H, W) at ((H-s)//2, (W-s)//2), LANCZOS to R x R
    center-crop-wide      edm2: band of ch = numpy-round(R*H/W) rows, LANCZOS to R x Hout, pasted into a
                          black R x R canvas at row (R-Hout)//2; too small if W < R or ch < Hout
    center-crop-dhariwal  guided-diffusion center_crop_arr (= edm2): BOX to floor(side/2) while the short
                          side >= 2R, BICUBIC to Python-round(side*R/short), crop R x R at floor offsets
    squash                Chrabaszcz et al. 2017: whole image to R x R, no crop (BOX by default)
    celeba-crop           ScoreSDE/FairGen CelebA: central `crop` x `crop` square, then resize (BICUBIC by
                          default, what diffops prepare has always done)
    d2c-crop              diffae/DiTi CelebA: rows 57..184, columns 25..152 (128 x 128), then resize
                          (BILINEAR by default: torchvision Resize on a PIL image)

`filter` overrides the resampling filter of every transform but center-crop-dhariwal (whose BOX/BICUBIC
pair is the algorithm). Resolution 0 keeps the size (none, celeba-crop, d2c-crop only). Pillow's
`reducing_gap`, `Image.reduce()` and JPEG `draft()` are never used: each gives different pixels.

Training-time augmentation only (never in convert): guided-diffusion's random_crop_arr and a flip.
"""
from __future__ import annotations

import math
import random

import numpy as np
from PIL import Image

FILTERS = {"lanczos": Image.Resampling.LANCZOS, "bicubic": Image.Resampling.BICUBIC,
           "bilinear": Image.Resampling.BILINEAR, "box": Image.Resampling.BOX,
           "hamming": Image.Resampling.HAMMING, "nearest": Image.Resampling.NEAREST}
DEFAULT_FILTER = {"none": "lanczos", "center-crop": "lanczos", "center-crop-wide": "lanczos",
                  "center-crop-dhariwal": None, "squash": "box", "celeba-crop": "bicubic",
                  "d2c-crop": "bilinear"}
TRANSFORMS = tuple(DEFAULT_FILTER)
KEEPS_SIZE_AT_0 = ("none", "celeba-crop", "d2c-crop")      # resolution 0 = no resize
D2C_BOX = (25, 57, 25 + 128, 57 + 128)                      # PIL (left, top, right, bottom)


class TooSmall(ValueError):
    """The image cannot give the requested output without breaking the transform's contract."""


def check_transform(name: str, resolution: int, height: int = 0, filter: str = "default", crop: int = 140) -> None:
    """Raise ValueError naming the argument if this combination cannot work."""
    if name not in DEFAULT_FILTER:
        raise ValueError(f"transform: unknown {name!r} (one of {', '.join(TRANSFORMS)})")
    if filter != "default" and filter not in FILTERS:
        raise ValueError(f"filter: unknown {filter!r} (default or one of {', '.join(FILTERS)})")
    if filter != "default" and name == "center-crop-dhariwal":
        raise ValueError("filter: center-crop-dhariwal's BOX/BICUBIC pair is fixed; use filter: default")
    if resolution < 0 or height < 0:
        raise ValueError("resolution: must be >= 0")
    if resolution == 0 and name not in KEEPS_SIZE_AT_0:
        raise ValueError(f"resolution: transform {name} needs an output resolution > 0")
    if height and name != "center-crop-wide":
        raise ValueError(f"height: only center-crop-wide makes non-square outputs, not {name}")
    if height > resolution:
        raise ValueError(f"height: {height} exceeds the width {resolution}")


def make_transform(name: str, resolution: int, height: int = 0, filter: str = "default", crop: int = 140):
    """A function PIL RGB image -> PIL RGB image; raises TooSmall where the reference skips an image."""
    check_transform(name, resolution, height, filter, crop)
    resample = FILTERS[filter if filter != "default" else DEFAULT_FILTER[name] or "bicubic"]
    R = resolution

    def resize(img, w, h):
        return img if img.size == (w, h) else img.resize((w, h), resample)

    if name == "none":
        return lambda img: img if R == 0 else resize(img, R, R)
    if name == "center-crop":
        def center_crop(img):
            W, H = img.size
            s = min(W, H)
            return resize(img.crop(((W - s) // 2, (H - s) // 2, (W - s) // 2 + s, (H - s) // 2 + s)), R, R)
        return center_crop
    if name == "center-crop-wide":
        Hout = height or R
        def center_crop_wide(img):
            W, H = img.size
            ch = int(np.round(R * H / W))                    # numpy round: half to even
            if W < R or ch < Hout:
                raise TooSmall(f"{W}x{H} is too small for center-crop-wide {R}x{Hout}")
            band = resize(img.crop((0, (H - ch) // 2, W, (H - ch) // 2 + ch)), R, Hout)
            canvas = Image.new("RGB", (R, R))
            canvas.paste(band, (0, (R - Hout) // 2))
            return canvas
        return center_crop_wide
    if name == "center-crop-dhariwal":
        return lambda img: dhariwal_crop(img, R)
    if name == "squash":
        return lambda img: resize(img, R, R)
    if name in ("celeba-crop", "d2c-crop"):
        def box_crop(img):
            W, H = img.size
            if name == "celeba-crop":
                if min(W, H) < crop:
                    raise TooSmall(f"{W}x{H} is smaller than the {crop}x{crop} crop")
                box = ((W - crop) // 2, (H - crop) // 2, (W - crop) // 2 + crop, (H - crop) // 2 + crop)
            else:
                if W < D2C_BOX[2] or H < D2C_BOX[3]:
                    raise TooSmall(f"{W}x{H} does not contain the D2C box (rows 57-184, columns 25-152)")
                box = D2C_BOX
            img = img.crop(box)
            return img if R == 0 else resize(img, R, R)
        return box_crop
    raise AssertionError(name)


def dhariwal_crop(img: Image.Image, S: int) -> Image.Image:
    """guided-diffusion center_crop_arr: BOX halvings, BICUBIC to round(side*S/short), centre crop."""
    while min(*img.size) >= 2 * S:
        img = img.resize(tuple(x // 2 for x in img.size), resample=Image.Resampling.BOX)
    scale = S / min(*img.size)
    img = img.resize(tuple(round(x * scale) for x in img.size), resample=Image.Resampling.BICUBIC)
    W, H = img.size
    top, left = (H - S) // 2, (W - S) // 2
    return img.crop((left, top, left + S, top + S))


# ----------------------------------------------------------------------------
# Training-time augmentation (guided-diffusion image_datasets.py): never used to build datasets.

def random_crop_arr(img: Image.Image, S: int, rng: random.Random, min_crop_frac: float = 0.8,
                    max_crop_frac: float = 1.0) -> np.ndarray:
    """Short side drawn from [ceil(S/max), ceil(S/min)], BOX halvings, BICUBIC, uniform S x S crop."""
    smaller = rng.randrange(math.ceil(S / max_crop_frac), math.ceil(S / min_crop_frac) + 1)
    while min(*img.size) >= 2 * smaller:
        img = img.resize(tuple(x // 2 for x in img.size), resample=Image.Resampling.BOX)
    scale = smaller / min(*img.size)
    img = img.resize(tuple(round(x * scale) for x in img.size), resample=Image.Resampling.BICUBIC)
    arr = np.asarray(img)
    top, left = rng.randrange(arr.shape[0] - S + 1), rng.randrange(arr.shape[1] - S + 1)
    return arr[top:top + S, left:left + S]


def random_flip(arr: np.ndarray, rng: random.Random, p: float = 0.5) -> np.ndarray:
    """Horizontal flip with probability p (HWC array)."""
    return arr[:, ::-1] if rng.random() < p else arr

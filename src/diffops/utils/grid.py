"""Image grids as PNG, for eyeballing samples and datasets."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import PIL.Image
import torch

# ----------------------------------------------------------------------------

def save_image_grid(
    images: torch.Tensor | np.ndarray,  # (N, C, H, W) uint8, C in {1, 3}
    path: str | os.PathLike,
    ncols: int | None = None,           # default: ceil(sqrt(N))
    pad: int = 2,                       # black border between and around tiles, in output pixels
    scale: int | None = None,           # nearest-neighbour upscaling; default 4 if H <= 32 else 1
) -> Path:
    """Write images as one PNG grid, row-major, atomically (temporary file + os.replace)."""
    if isinstance(images, torch.Tensor):
        images = images.detach().cpu().numpy()
    images = np.asarray(images)
    if images.dtype != np.uint8:
        raise TypeError(f'expected uint8 images, got {images.dtype}')
    if images.ndim != 4 or images.shape[1] not in (1, 3) or images.shape[0] == 0:
        raise ValueError(f'expected images of shape (N, C, H, W) with N >= 1 and C in {{1, 3}}, got {images.shape}')
    num, channels, height, width = images.shape
    if scale is None:
        scale = 4 if height <= 32 else 1
    if ncols is None:
        ncols = math.ceil(math.sqrt(num))
    if scale < 1 or ncols < 1 or pad < 0:
        raise ValueError(f'need scale >= 1, ncols >= 1, pad >= 0; got scale={scale}, ncols={ncols}, pad={pad}')
    nrows = math.ceil(num / ncols)

    # Tile: NCHW -> NHWC, upscale by pixel repetition, paste into a padded canvas.
    tiles = images.transpose(0, 2, 3, 1).repeat(scale, axis=1).repeat(scale, axis=2)
    th, tw = height * scale, width * scale
    canvas = np.zeros([nrows * (th + pad) + pad, ncols * (tw + pad) + pad, channels], dtype=np.uint8)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, ncols)
        y, x = pad + r * (th + pad), pad + c * (tw + pad)
        canvas[y : y + th, x : x + tw] = tile
    image = PIL.Image.fromarray(canvas[:, :, 0] if channels == 1 else canvas, 'L' if channels == 1 else 'RGB')

    # Write atomically.
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f'{path.name}.{os.getpid()}.tmp')
    try:
        image.save(tmp, format='PNG')
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path

# ----------------------------------------------------------------------------

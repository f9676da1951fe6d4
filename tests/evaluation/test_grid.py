"""save_image_grid: layout, upscaling, padding, atomic write."""

import numpy as np
import PIL.Image
import pytest
import torch

from diffops.utils.grid import save_image_grid

def read(path) -> np.ndarray:
    with PIL.Image.open(path) as image:
        return np.asarray(image)

def test_layout_and_pixels(tmp_path):
    images = torch.randint(0, 256, (5, 3, 8, 6), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    path = save_image_grid(images, tmp_path / 'sub' / 'grid.png', ncols=3, pad=2, scale=2)
    assert path == tmp_path / 'sub' / 'grid.png'
    assert [p.name for p in path.parent.iterdir()] == ['grid.png']  # no temporary left behind
    grid = read(path)
    # 2 rows x 3 cols of 16x12 tiles with 2-px borders.
    assert grid.shape == (2 * (16 + 2) + 2, 3 * (12 + 2) + 2, 3)
    # Image 4 sits at row 1, col 1; nearest upscaling repeats each pixel 2x2.
    y, x = 2 + 1 * 18, 2 + 1 * 14
    tile = grid[y : y + 16, x : x + 12]
    expected = images[4].permute(1, 2, 0).numpy().repeat(2, axis=0).repeat(2, axis=1)
    np.testing.assert_array_equal(tile, expected)
    assert (grid[:2] == 0).all() and (grid[:, :2] == 0).all()
    assert (grid[y : y + 16, 2 + 2 * 14 :] == 0).all()       # empty sixth cell

def test_default_scale_and_columns(tmp_path):
    images = np.full((4, 3, 32, 32), 200, dtype=np.uint8)
    grid = read(save_image_grid(images, tmp_path / 'a.png', pad=0))
    assert grid.shape == (2 * 128, 2 * 128, 3)                   # scale 4 for 32 px, 2 columns for 4 images
    big = np.zeros((1, 3, 64, 64), dtype=np.uint8)
    assert read(save_image_grid(big, tmp_path / 'b.png', pad=0)).shape == (64, 64, 3)

def test_grayscale_and_overwrite(tmp_path):
    path = tmp_path / 'g.png'
    save_image_grid(np.zeros((2, 1, 4, 4), dtype=np.uint8), path, scale=1, pad=0)
    save_image_grid(np.full((2, 1, 4, 4), 7, dtype=np.uint8), path, scale=1, pad=0)
    grid = read(path)
    assert grid.shape == (4, 8) and (grid == 7).all()

def test_rejects_bad_input(tmp_path):
    with pytest.raises(TypeError):
        save_image_grid(np.zeros((1, 3, 4, 4), dtype=np.float32), tmp_path / 'x.png')
    with pytest.raises(ValueError):
        save_image_grid(np.zeros((3, 4, 4), dtype=np.uint8), tmp_path / 'x.png')
    assert not any(tmp_path.iterdir())

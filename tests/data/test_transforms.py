"""Each transform equals, pixel for pixel, an independent re-typing of its reference algorithm.

The references below follow the published code line by line (numpy slicing and PIL calls as there):
edm2 dataset_tool.py (scale, center_crop, center_crop_wide, center_crop_imagenet = guided-diffusion
center_crop_arr), Chrabaszcz Imagenet32_Scripts image_resizer (whole-image resize), FairGen/ScoreSDE's
central crop, diffae's d2c_crop + torchvision Resize (PIL bilinear), guided-diffusion random_crop_arr.
"""
import io
import math
import random

import numpy as np
import PIL.Image
import pytest

from diffops.data.convert import convert_one
from diffops.data.transforms import TooSmall, make_transform, random_crop_arr, random_flip

SIZES = [(218, 178), (375, 500), (500, 375), (333, 517), (129, 257), (64, 64), (200, 131)]   # (H, W)


def image(h, w, seed=0):
    rng = np.random.default_rng(seed + 7 * h + w)
    smooth = rng.integers(0, 256, (h // 8 + 2, w // 8 + 2, 3), dtype=np.uint8)
    base = np.asarray(PIL.Image.fromarray(smooth).resize((w, h), PIL.Image.Resampling.BILINEAR)).astype(int)
    return np.clip(base + rng.integers(-40, 41, (h, w, 3)), 0, 255).astype(np.uint8)   # structure + noise


# ----------------------------------------------------------------------------
# References, re-typed from the published code.

def ref_scale(width, height, img):
    if width == img.shape[1] and height == img.shape[0]:
        return img
    return np.array(PIL.Image.fromarray(img, "RGB").resize((width, height), PIL.Image.Resampling.LANCZOS))


def ref_center_crop(width, height, img):
    crop = np.min(img.shape[:2])
    img = img[(img.shape[0] - crop) // 2: (img.shape[0] + crop) // 2,
              (img.shape[1] - crop) // 2: (img.shape[1] + crop) // 2]
    img = PIL.Image.fromarray(img, "RGB")
    img = img.resize((width, height), PIL.Image.Resampling.LANCZOS)
    return np.array(img)


def ref_center_crop_wide(width, height, img):
    ch = int(np.round(width * img.shape[0] / img.shape[1]))
    if img.shape[1] < width or ch < height:
        return None
    img = img[(img.shape[0] - ch) // 2: (img.shape[0] + ch) // 2]
    img = PIL.Image.fromarray(img, "RGB")
    img = img.resize((width, height), PIL.Image.Resampling.LANCZOS)
    img = np.array(img)
    canvas = np.zeros([width, width, 3], dtype=np.uint8)
    canvas[(width - height) // 2: (width + height) // 2, :] = img
    return canvas


def ref_center_crop_arr(pil_image, image_size):
    while min(*pil_image.size) >= 2 * image_size:
        pil_image = pil_image.resize(tuple(x // 2 for x in pil_image.size), resample=PIL.Image.BOX)
    scale = image_size / min(*pil_image.size)
    pil_image = pil_image.resize(tuple(round(x * scale) for x in pil_image.size), resample=PIL.Image.BICUBIC)
    arr = np.array(pil_image)
    crop_y = (arr.shape[0] - image_size) // 2
    crop_x = (arr.shape[1] - image_size) // 2
    return arr[crop_y: crop_y + image_size, crop_x: crop_x + image_size]


def ref_chrabaszcz(img, size, alg):
    return np.array(PIL.Image.fromarray(img).resize((size, size), alg))


def ref_central_crop(img, crop, size, alg):
    h, w = img.shape[:2]
    top, left = (h - crop) // 2, (w - crop) // 2
    return np.array(PIL.Image.fromarray(np.ascontiguousarray(img[top:top + crop, left:left + crop])).resize((size, size), alg))


def ref_d2c(img, size):
    cx, cy = 89, 121                                  # diffae d2c_crop: x1 = cy - 64 is the top row
    x1, x2, y1, y2 = cy - 64, cy + 64, cx - 64, cx + 64
    crop = PIL.Image.fromarray(img).crop((y1, x1, y2, x2))      # torchvision F.crop(img, x1, y1, 128, 128)
    return np.array(crop.resize((size, size), PIL.Image.BILINEAR))   # torchvision Resize on PIL


def ref_random_crop_arr(pil_image, image_size, min_crop_frac=0.8, max_crop_frac=1.0):
    min_smaller_dim_size = math.ceil(image_size / max_crop_frac)
    max_smaller_dim_size = math.ceil(image_size / min_crop_frac)
    smaller_dim_size = random.randrange(min_smaller_dim_size, max_smaller_dim_size + 1)
    while min(*pil_image.size) >= 2 * smaller_dim_size:
        pil_image = pil_image.resize(tuple(x // 2 for x in pil_image.size), resample=PIL.Image.BOX)
    scale = smaller_dim_size / min(*pil_image.size)
    pil_image = pil_image.resize(tuple(round(x * scale) for x in pil_image.size), resample=PIL.Image.BICUBIC)
    arr = np.array(pil_image)
    crop_y = random.randrange(arr.shape[0] - image_size + 1)
    crop_x = random.randrange(arr.shape[1] - image_size + 1)
    return arr[crop_y: crop_y + image_size, crop_x: crop_x + image_size]


def ours(name, img, resolution, **kw):
    return np.asarray(make_transform(name, resolution, **kw)(PIL.Image.fromarray(img)))


# ----------------------------------------------------------------------------

@pytest.mark.parametrize("hw", SIZES)
@pytest.mark.parametrize("R", [32, 64])
def test_center_crop_and_scale_match_edm2(hw, R):
    img = image(*hw)
    assert np.array_equal(ours("center-crop", img, R), ref_center_crop(R, R, img))
    assert np.array_equal(ours("none", img, R), ref_scale(R, R, img))
    assert np.array_equal(ours("none", img, 0), img)


@pytest.mark.parametrize("hw", SIZES)
@pytest.mark.parametrize("W,H", [(64, 48), (64, 64), (32, 24)])
def test_center_crop_wide_matches_edm2(hw, W, H):
    img = image(*hw)
    ref = ref_center_crop_wide(W, H, img)
    if ref is None:
        with pytest.raises(TooSmall):
            ours("center-crop-wide", img, W, height=H)
    else:
        assert np.array_equal(ours("center-crop-wide", img, W, height=H), ref)


@pytest.mark.parametrize("hw", SIZES + [(1000, 760), (760, 1000)])
@pytest.mark.parametrize("S", [32, 64])
def test_center_crop_dhariwal_matches_guided_diffusion(hw, S):
    img = image(*hw)
    assert np.array_equal(ours("center-crop-dhariwal", img, S), ref_center_crop_arr(PIL.Image.fromarray(img), S))


@pytest.mark.parametrize("hw", SIZES)
def test_squash_matches_chrabaszcz(hw):
    img = image(*hw)
    assert np.array_equal(ours("squash", img, 32), ref_chrabaszcz(img, 32, PIL.Image.BOX))
    assert np.array_equal(ours("squash", img, 64, filter="bicubic"), ref_chrabaszcz(img, 64, PIL.Image.BICUBIC))
    assert np.array_equal(ours("squash", img, 64, filter="lanczos"), ref_chrabaszcz(img, 64, PIL.Image.LANCZOS))


def test_celeba_crops_match_references():
    img = image(218, 178)
    for R in (32, 64):
        assert np.array_equal(ours("celeba-crop", img, R), ref_central_crop(img, 140, R, PIL.Image.BICUBIC))
        assert np.array_equal(ours("celeba-crop", img, R, filter="bilinear"),
                              ref_central_crop(img, 140, R, PIL.Image.BILINEAR))
        assert np.array_equal(ours("d2c-crop", img, R), ref_d2c(img, R))
    assert np.array_equal(ours("d2c-crop", img, 0), img[57:185, 25:153])
    # The quickstart prepare stage's crop is the celeba-crop transform.
    from diffops.data.prepare import crop_resize
    assert np.array_equal(crop_resize(PIL.Image.fromarray(img), 140, 32).transpose(1, 2, 0), ours("celeba-crop", img, 32))


def test_too_small_inputs_raise():
    with pytest.raises(TooSmall):
        ours("celeba-crop", image(120, 178), 32)
    with pytest.raises(TooSmall):
        ours("d2c-crop", image(150, 178), 32)
    with pytest.raises(ValueError, match="needs an output resolution"):
        make_transform("center-crop", 0)
    with pytest.raises(ValueError, match="filter"):
        make_transform("center-crop-dhariwal", 64, filter="bicubic")


@pytest.mark.parametrize("seed", range(6))
def test_random_crop_and_flip_match_guided_diffusion(seed):
    img = image(*SIZES[seed % len(SIZES)])
    random.seed(seed)
    ref = ref_random_crop_arr(PIL.Image.fromarray(img), 32)
    ref = ref[:, ::-1] if random.random() < 0.5 else ref
    rng = random.Random(seed)
    got = random_flip(random_crop_arr(PIL.Image.fromarray(img), 32, rng), rng)
    assert np.array_equal(got, ref)


@pytest.mark.parametrize("name,R", [("center-crop", 64), ("center-crop-dhariwal", 32), ("squash", 32)])
def test_convert_one_from_jpeg_bytes_matches_reference(name, R):
    # Through the encoders: JPEG bytes in (decoded once by PIL), level-0 PNG out, pixels as the reference.
    buf = io.BytesIO()
    PIL.Image.fromarray(image(218, 178)).save(buf, format="JPEG", quality=90)
    decoded = np.array(PIL.Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
    ref = {"center-crop": lambda: ref_center_crop(R, R, decoded),
           "center-crop-dhariwal": lambda: ref_center_crop_arr(PIL.Image.fromarray(decoded), R),
           "squash": lambda: ref_chrabaszcz(decoded, R, PIL.Image.BOX)}[name]()
    png, size = convert_one(buf.getvalue(), make_transform(name, R))
    assert size == (R, R)
    assert np.array_equal(np.asarray(PIL.Image.open(io.BytesIO(png))), ref)

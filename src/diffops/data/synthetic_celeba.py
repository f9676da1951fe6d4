"""A deterministic synthetic stand-in for CelebA, written in CelebA's exact on-disk layout.

`generate_celeba_like(root, num_images, seed)` writes

    root/img_align_celeba/000001.jpg ...   178 wide x 218 high RGB JPEG, quality 95
    root/list_attr_celeba.txt              the 40 official attributes, +1 / -1
    root/list_eval_partition.txt           train / val / test in CelebA's proportions, by index blocks

so that everything downstream (prepare, feature net, bias metrics) runs unchanged on the real data.

Each image is a simple cartoon face drawn with PIL.ImageDraw at native size (jagged edges do not
survive prepare's antialiased downsampling; `SUPERSAMPLE = 2` smooths them at ~40% of the speed). Its
visible features follow the attributes in `DRAWN_ATTRIBUTES`:

    Male                short hair, squarer jaw, thicker brows, never lipstick or makeup;
                        female faces have long hair down to the shoulders
    Smiling             upturned mouth vs a flat one
    Mouth_Slightly_Open dark gap between the lips (teeth when smiling)
    Eyeglasses          two rings, a bridge and temple arms
    Black_Hair, Blond_Hair, Brown_Hair, Gray_Hair
                        hair colour; at most one is +1, when none is the hair is red / auburn
    Young               older faces (-1) get forehead, eye and nasolabial wrinkle lines
    No_Beard            -1 draws a beard along the jaw (males only)
    Goatee              the beard is a chin patch only (implies No_Beard = -1)
    Mustache, Sideburns strips above the mouth / in front of the ears (males only)
    Pale_Skin           a pale skin tone vs a range of light to dark tones
    Bald                no hair on top of the head, a fringe at the sides (males only)
    Wearing_Hat         a hat with a brim over the top of the head
    Bangs               a fringe over the forehead
    Wearing_Lipstick    red / pink lips (females only)
    Heavy_Makeup        eye shadow and blush (females only, mostly with lipstick)

Their rates and correlations imitate CelebA's (Male 42%, Blond 15% with P(Male | Blond) ~ 0.06,
Young 77%, Gray_Hair ~ 4% and mostly not Young, ...); a few rare attributes are made more frequent
(Eyeglasses ~ 9%, Pale_Skin 8%, Mustache 10% of males) so that small sets still have positives.
Every other attribute (Attractive, Big_Nose, Wearing_Necklace, ...) is sampled independently from
a fixed marginal rate close to CelebA's and does NOT affect the picture: a model can only learn it
as noise, which is a useful negative control.

Nuisance variation, independent of the attributes: head position, scale, in-plane tilt, yaw (the
eyes, nose and mouth slide sideways), face width, skin, eye, clothing and background colours, a
background gradient, a lighting gradient over the whole picture, Gaussian pixel noise and JPEG.
`nuisance` (generate.nuisance, default 1) scales the spread of the background and clothes colours
around mid-grey and the lighting gradient's strength, from the same random draws: 0.25 keeps a quarter
of that variation, so that an encoder with a small code spends less of it on the background.
The face sits where aligned CelebA faces sit (eyes near row 112, columns 70 and 108), inside the
central 140x140 crop (rows 39-179, columns 19-159) that `prepare` takes.

Image i (0-based) is drawn from its own `np.random.default_rng([seed, i])`, so the bytes do not
depend on `num_workers`; the same seed gives byte-identical files (for a fixed Pillow / libjpeg).
"""

from __future__ import annotations

import functools
import io
import shutil
import time
from multiprocessing import Pool
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from tqdm import tqdm

from ..utils.io import check_replaceable, replace_dir, tmp_path
from .celeba import ATTR_FILE, ATTRIBUTE_NAMES, IMAGE_DIR, PARTITION_FILE, write_attributes, write_partitions

WIDTH, HEIGHT = 178, 218
JPEG_QUALITY = 95
SUPERSAMPLE = 1                      # draw at this multiple, then box-downsample
CELEBA_SPLIT_SIZES = (162770, 19867, 19962)   # official train / val / test counts (sum 202599)
FACE_CENTER = (89.0, 124.0)          # centre of the face ellipse; puts the eyes at row ~112
NEUTRAL = 128                        # the grey that nuisance colours narrow towards

DRAWN_ATTRIBUTES = (
    "Bald", "Bangs", "Black_Hair", "Blond_Hair", "Brown_Hair", "Eyeglasses", "Goatee", "Gray_Hair",
    "Heavy_Makeup", "Male", "Mouth_Slightly_Open", "Mustache", "No_Beard", "Pale_Skin", "Sideburns",
    "Smiling", "Wearing_Hat", "Wearing_Lipstick", "Young",
)
# Drawn attributes by the size of what they change (DiTi's chunk-wise probe: coarse ones should live in the
# late-t chunks, fine ones in the early-t chunks). Bangs and No_Beard (mid-sized areas) are in neither.
COARSE_ATTRIBUTES = ("Male", "Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair", "Bald", "Wearing_Hat",
                     "Pale_Skin")                      # hair length and colour, the top of the head, all skin
FINE_ATTRIBUTES = ("Smiling", "Mouth_Slightly_Open", "Eyeglasses", "Young", "Mustache", "Goatee", "Sideburns",
                   "Wearing_Lipstick", "Heavy_Makeup")  # mouth, thin lines and small patches

# Marginal rates of the attributes that are not drawn (approximately CelebA's).
UNDRAWN_RATES = {
    "5_o_Clock_Shadow": 0.11, "Arched_Eyebrows": 0.27, "Attractive": 0.51, "Bags_Under_Eyes": 0.20,
    "Big_Lips": 0.24, "Big_Nose": 0.23, "Blurry": 0.05, "Bushy_Eyebrows": 0.14, "Chubby": 0.06,
    "Double_Chin": 0.05, "High_Cheekbones": 0.45, "Narrow_Eyes": 0.12, "Oval_Face": 0.28,
    "Pointy_Nose": 0.28, "Receding_Hairline": 0.08, "Rosy_Cheeks": 0.07, "Straight_Hair": 0.21,
    "Wavy_Hair": 0.32, "Wearing_Earrings": 0.19, "Wearing_Necklace": 0.12, "Wearing_Necktie": 0.07,
}
assert set(DRAWN_ATTRIBUTES) | set(UNDRAWN_RATES) == set(ATTRIBUTE_NAMES)
assert not set(DRAWN_ATTRIBUTES) & set(UNDRAWN_RATES)
assert set(COARSE_ATTRIBUTES) | set(FINE_ATTRIBUTES) < set(DRAWN_ATTRIBUTES)

HAIR_COLORS = {  # base RGB per hair category; each face jitters it
    "Black_Hair": (28, 22, 22), "Brown_Hair": (105, 68, 38), "Blond_Hair": (226, 196, 122),
    "Gray_Hair": (182, 180, 176), "other": (150, 62, 32),   # other = red / auburn
}


# ----------------------------------------------------------------------------
# Attributes

def sample_attributes(rng: np.random.Generator) -> dict[str, bool]:
    """Draw one face's 40 attributes with CelebA-like rates and correlations."""
    uniforms = iter(rng.random(64).tolist())   # one call: scalar Generator calls cost microseconds each
    u = lambda p: next(uniforms) < p  # noqa: E731
    a = {}
    a["Male"] = u(0.42)
    male = a["Male"]
    a["Young"] = u(0.68 if male else 0.84)               # 77% overall

    # Hair colour is one category. Gray mostly when not young (~4% overall); blond mostly female
    # (~15% overall, P(Male | Blond) ~ 0.06); the rest black / brown / other (red, auburn).
    if u(0.01 if a["Young"] else 0.14):
        hair = "Gray_Hair"
    elif u(0.022 if male else 0.255):
        hair = "Blond_Hair"
    else:
        v = next(uniforms)
        hair = "Black_Hair" if v < 0.36 else "Brown_Hair" if v < 0.66 else "other"
    for name in ("Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair"):
        a[name] = hair == name

    a["Bald"] = male and u(0.06)
    a["Wearing_Hat"] = u(0.05)
    a["Bangs"] = not a["Bald"] and u(0.08 if male else 0.22)
    a["Eyeglasses"] = u(0.13 if male else 0.06)          # ~9% overall
    a["Smiling"] = u(0.48)
    a["Mouth_Slightly_Open"] = u(0.65 if a["Smiling"] else 0.32)
    a["Pale_Skin"] = u(0.08)

    # Facial hair only on males: beard in ~39% of them (No_Beard ~ 84% overall), a third of those a goatee.
    beard = male and u(0.39)
    a["No_Beard"] = not beard
    a["Goatee"] = beard and u(0.35)
    a["Mustache"] = male and u(0.20 if beard else 0.04)
    a["Sideburns"] = male and u(0.25 if beard else 0.05)

    a["Wearing_Lipstick"] = not male and u(0.80)
    a["Heavy_Makeup"] = not male and u(0.80 if a["Wearing_Lipstick"] else 0.10)

    for name, p in UNDRAWN_RATES.items():
        a[name] = u(p)
    return a


# ----------------------------------------------------------------------------
# Geometry: every shape is a polygon in face coordinates (pixels at native size, origin at the
# face centre, y down), mapped to the canvas by one similarity transform. This gives tilt for free
# (ImageDraw cannot rotate ellipses) and keeps each feature a few lines.

class Pose:
    """Face coordinates -> supersampled canvas pixels: shift, scale, in-plane rotation."""

    def __init__(self, cx, cy, scale, angle_rad):
        c, s = np.cos(angle_rad) * scale * SUPERSAMPLE, np.sin(angle_rad) * scale * SUPERSAMPLE
        self.matrix = np.array([[c, -s], [s, c]])
        self.offset = np.array([cx, cy]) * SUPERSAMPLE
        self.px = scale * SUPERSAMPLE       # one face-unit in canvas pixels, for line widths

    def __call__(self, points) -> list[float]:
        """(K, 2) face coordinates -> flat [x0, y0, x1, y1, ...] for ImageDraw."""
        return (np.asarray(points, dtype=np.float64) @ self.matrix.T + self.offset).ravel().tolist()


@functools.lru_cache(maxsize=None)
def _unit_arc(t0, t1, n, power):
    t = np.linspace(t0, t1, n)
    c, s = np.cos(t), np.sin(t)
    e = 2.0 / power
    return np.stack([np.sign(c) * np.abs(c) ** e, np.sign(s) * np.abs(s) ** e], axis=1)


def ellipse(cx, cy, rx, ry, t0=0.0, t1=2 * np.pi, n=28, power=2.0):
    """Points on a (super)ellipse from angle t0 to t1; power > 2 squares the shape off."""
    return _unit_arc(t0, t1, n, power) * (rx, ry) + (cx, cy)   # cached: a face draws ~20 arcs


def curve(x0, x1, y_of_x, n=12):
    """Points of y = y_of_x(x) for x from x0 to x1."""
    x = np.linspace(x0, x1, n)
    return np.stack([x, y_of_x(x)], axis=1)


def jitter(rng, rgb, amount):
    return tuple(int(v) for v in np.clip(np.asarray(rgb) + rng.normal(0, amount, 3), 0, 255))


def mix(a, b, t):
    return tuple(int(round((1 - t) * x + t * y)) for x, y in zip(a, b))


def sample_skin(rng, pale):
    if pale:
        return jitter(rng, (248, 228, 218), 4)
    tones = np.array([(236, 198, 170), (214, 162, 124), (176, 120, 84), (116, 76, 52)], dtype=float)
    t = rng.uniform(0, len(tones) - 1)          # a continuous range from light to dark
    i = min(int(t), len(tones) - 2)
    return jitter(rng, tones[i] + (t - i) * (tones[i + 1] - tones[i]), 5)


# ----------------------------------------------------------------------------
# Drawing

def narrow(rgb: np.ndarray, nuisance: float) -> np.ndarray:
    """A nuisance colour pulled towards mid-grey: nuisance 1 keeps it, 0 makes it NEUTRAL."""
    if nuisance == 1:
        return rgb
    return np.round(NEUTRAL + nuisance * (rgb.astype(np.float64) - NEUTRAL)).astype(rgb.dtype)


def draw_face(a: dict[str, bool], rng: np.random.Generator, nuisance: float = 1.0) -> Image.Image:
    """Render one 178x218 RGB face whose features follow the attributes `a`; `nuisance` in [0, 1] scales
    the spread of the background and clothes colours (the draws are the same, so 1 is the default data)."""
    male = a["Male"]

    # Nuisance: pose, proportions and colours.
    pose = Pose(FACE_CENTER[0] + np.clip(rng.normal(0, 2.5), -6, 6), FACE_CENTER[1] + np.clip(rng.normal(0, 2.5), -6, 6),
                rng.uniform(0.92, 1.06), np.deg2rad(rng.uniform(-8, 8)))
    yaw = rng.uniform(-5, 5)                    # features slide sideways when the head turns
    rx, ry = (41.0 if male else 38.0) * rng.uniform(0.95, 1.05), 50.0 * rng.uniform(0.97, 1.03)
    skin = sample_skin(rng, a["Pale_Skin"])
    shade = mix(skin, (60, 30, 20), 0.22)      # darker skin for nose, ears, neck, wrinkles
    hair_key = next((k for k in ("Black_Hair", "Brown_Hair", "Blond_Hair", "Gray_Hair") if a[k]), "other")
    hair = jitter(rng, HAIR_COLORS[hair_key], 10)
    if hair_key == "other" and rng.random() < 0.5:
        hair = jitter(rng, (190, 110, 60), 10)  # strawberry / copper
    clothes = tuple(int(v) for v in narrow(rng.integers(20, 235, 3), nuisance))
    bg_top, bg_bottom = narrow(rng.integers(30, 240, 3), nuisance), narrow(rng.integers(30, 240, 3), nuisance)

    # Background: a vertical gradient between two random colours.
    ramp = np.linspace(0.0, 1.0, HEIGHT * SUPERSAMPLE)[:, None, None]
    column = ((1 - ramp) * bg_top + ramp * bg_bottom).astype(np.uint8)
    img = Image.fromarray(np.repeat(column, WIDTH * SUPERSAMPLE, axis=1))
    d = ImageDraw.Draw(img)
    poly = lambda pts, fill: d.polygon(pose(pts), fill=fill)                                   # noqa: E731
    line = lambda pts, fill, w: d.line(pose(pts), fill=fill, width=max(1, round(w * pose.px)), joint="curve")  # noqa: E731

    # Back layer: long hair (female) hangs behind the neck and shoulders.
    if not male:
        length = rng.uniform(65, 95)
        top = ellipse(0, -6, rx + 11, ry + 10, np.pi, 2 * np.pi, 20)
        poly(np.concatenate([top, [(rx + 13, length), (-rx - 13, length)]]), hair)

    # Shoulders, neck, ears, face.
    poly(ellipse(0, 118, 88, 42, np.pi, 2 * np.pi, 20), clothes)
    poly([(-17, 25), (17, 25), (19, 88), (-19, 88)], shade)
    for side in (-1, 1):
        poly(ellipse(side * (rx - 1), -6, 6, 11, n=14), shade)
    face = np.concatenate([ellipse(0, 0, rx, ry, np.pi, 2 * np.pi, 18),           # rounded forehead
                           ellipse(0, 0, rx, ry, 0, np.pi, 20, power=2.9 if male else 2.0)])  # jaw
    poly(face, skin)

    # Short hair cap (all but bald): from above the hairline over the crown; female hair gets a parting.
    hairline = -ry + rng.uniform(11, 16)
    cap_top = ellipse(0, -4, rx + 4, ry + 8, np.pi, 2 * np.pi, 22)
    if a["Bald"]:
        for side in (-1, 1):   # a fringe of hair left above the ears
            poly([(side * (rx + 2), -26), (side * (rx - 3), -30), (side * (rx - 3), -4), (side * (rx + 2), -8)], hair)
    else:
        side_y = -18 if male else -8
        rim = curve(rx + 1, -rx - 1, lambda x: hairline + (side_y - hairline) * (x / rx) ** 4)
        poly(np.concatenate([[(-rx - 4, side_y)], cap_top, [(rx + 4, side_y)], rim]), hair)
        if a["Bangs"]:
            fringe = curve(rx - 4, -rx + 4, lambda x: -27 + 2.5 * np.cos(x * 0.55), 16)
            poly(np.concatenate([ellipse(0, -4, rx + 2, ry + 6, np.pi * 1.08, np.pi * 1.92, 14), fringe]), hair)
    if a["Sideburns"]:
        for side in (-1, 1):
            poly([(side * rx, -22), (side * (rx - 7), -22), (side * (rx - 6), 8), (side * (rx - 1), 8)], hair)

    # Wrinkles (not Young): forehead lines, crow's feet, nasolabial folds.
    if not a["Young"]:
        for y in (-33, -38):
            if y > hairline + 2 and not a["Bangs"]:
                line(curve(-15, 15, lambda x, y=y: y + 0.01 * x * x), shade, 0.9)
        for side in (-1, 1):
            line([(side * 29 + yaw, -14), (side * 33 + yaw, -11)], shade, 0.8)
            line([(side * 30 + yaw, -9), (side * 33 + yaw, -8)], shade, 0.8)
            line(curve(side * 9 + yaw, side * 17 + yaw, lambda x, s=side: 10 + 1.6 * abs(x - s * 9 - yaw), 6), shade, 1.0)

    # Eyes and brows.
    eye_y, eye_dx = -12 + rng.uniform(-2, 2), rng.uniform(17.5, 20.5)
    iris = jitter(rng, [(80, 50, 30), (60, 100, 150), (80, 110, 60), (40, 30, 25)][rng.integers(4)], 8)
    brow = mix(hair, (20, 15, 10), 0.5) if hair_key not in ("Black_Hair",) else hair
    gaze = yaw * 0.25
    for side in (-1, 1):
        ex = side * eye_dx + yaw
        if a["Heavy_Makeup"]:
            poly(ellipse(ex, eye_y - 3.5, 9.5, 5, np.pi, 2 * np.pi, 12), mix(skin, jitter(rng, (110, 60, 110), 20), 0.6))
            poly(ellipse(side * 24 + yaw * 0.8, 9, 7, 4.5, n=14), mix(skin, (230, 110, 120), 0.35))
        poly(ellipse(ex, eye_y, 7.5, 3.6, n=16), (245, 245, 240))
        poly(ellipse(ex + gaze, eye_y, 3.3, 3.3, n=12), iris)
        poly(ellipse(ex + gaze, eye_y, 1.5, 1.5, n=8), (10, 10, 10))
        line(ellipse(ex, eye_y, 7.5, 3.6, np.pi, 2 * np.pi, 10), (40, 25, 20), 0.9)    # upper lid
        arch = 2.5 if male else 4.0
        by = eye_y - 8 - rng.uniform(0, 1.5)
        line(curve(ex - 9, ex + 9, lambda x, ex=ex: by - arch * (1 - ((x - ex) / 9) ** 2)), brow, 2.6 if male else 1.7)

    # Nose.
    line([(yaw * 1.3, -6), (yaw * 1.5 - 1.5, 10)], shade, 1.2)
    line(curve(yaw * 1.4 - 5, yaw * 1.4 + 5, lambda x: 12 - 0.6 * np.cos((x - yaw * 1.4) * 0.6), 8), shade, 1.2)

    # Beard below the mouth line, along the jaw (or just a goatee on the chin).
    mouth_y, mouth_x = 27 + rng.uniform(-1.5, 1.5), yaw
    beard = mix(hair, (40, 30, 25), 0.25)
    if a["Goatee"]:
        poly(ellipse(mouth_x, 40, 9, 9, n=16), beard)
    elif not a["No_Beard"]:
        jaw = face[face[:, 1] > 8]
        poly(np.concatenate([jaw, curve(-rx * 0.72, rx * 0.72, lambda x: 8 + 14 * (x / rx) ** 2)[::-1]]), beard)

    # Mouth: a curve y(x) that is upturned when smiling, lips around it, an opening if open.
    half = 13.5 if a["Smiling"] else 11.5
    bend = 5.0 if a["Smiling"] else 0.6
    mid = lambda x: mouth_y + bend * (1 - ((x - mouth_x) / half) ** 2) - bend * 0.4   # noqa: E731
    lipw = lambda x: np.sqrt(np.clip(1 - ((x - mouth_x) / half) ** 2, 0, 1))            # noqa: E731
    lips = jitter(rng, (190, 30, 50), 15) if a["Wearing_Lipstick"] else mix(skin, (150, 60, 60), 0.35)
    upper = curve(mouth_x - half, mouth_x + half, lambda x: mid(x) - 3.0 * lipw(x), 14)
    lower = curve(mouth_x + half, mouth_x - half, lambda x: mid(x) + 3.6 * lipw(x), 14)
    poly(np.concatenate([upper, lower]), lips)
    if a["Mouth_Slightly_Open"]:
        gap = 2.2 if a["Smiling"] else 1.6
        top = curve(mouth_x - half * 0.85, mouth_x + half * 0.85, lambda x: mid(x) - gap * lipw(x), 12)
        bottom = curve(mouth_x + half * 0.85, mouth_x - half * 0.85, lambda x: mid(x) + gap * lipw(x), 12)
        poly(np.concatenate([top, bottom]), (45, 15, 20))
        if a["Smiling"]:   # upper teeth
            teeth = curve(mouth_x + half * 0.7, mouth_x - half * 0.7, lambda x: mid(x) - 0.2 * lipw(x), 10)
            poly(np.concatenate([top[1:-1], teeth]), (235, 230, 220))
    else:
        line(curve(mouth_x - half, mouth_x + half, mid, 12), mix(lips, (40, 10, 10), 0.5), 0.9)
    if a["Mustache"]:
        # Sits on the upper lip and is thickest in the middle, so it shows on smiling mouths too.
        lower = lambda x: mid(x) - 3.0 * lipw(x) - 0.5                                   # noqa: E731
        must = curve(mouth_x - half - 2, mouth_x + half + 2, lambda x: lower(x) - 3.0 - 2.5 * lipw(x), 12)
        poly(np.concatenate([must, curve(mouth_x + half + 2, mouth_x - half - 2, lower, 12)]), beard)

    # Eyeglasses: two rings, a bridge and temple arms.
    if a["Eyeglasses"]:
        frame = jitter(rng, [(20, 20, 20), (90, 60, 40), (150, 150, 160)][rng.integers(3)], 6)
        for side in (-1, 1):
            ex = side * eye_dx + yaw
            line(ellipse(ex, eye_y, 11, 8.5, n=24), frame, 1.6)
            line([(ex + side * 11, eye_y - 1), (side * (rx - 1), eye_y - 3)], frame, 1.4)
        line(curve(yaw - eye_dx + 11, yaw + eye_dx - 11, lambda x: eye_y - 1.5 + 0 * x, 4), frame, 1.4)

    # Hat: a crown and a brim over the top of the head.
    if a["Wearing_Hat"]:
        color = tuple(int(v) for v in rng.integers(20, 235, 3))
        brim_y = hairline - rng.uniform(2, 6)
        poly(np.concatenate([ellipse(0, brim_y, rx + 3, 40, np.pi, 2 * np.pi, 18)]), color)
        poly(ellipse(0, brim_y, rx + 17, 6, n=24), mix(color, (0, 0, 0), 0.25))

    return img.reduce(SUPERSAMPLE) if SUPERSAMPLE > 1 else img


def add_photometric_noise(img: Image.Image, rng: np.random.Generator, nuisance: float = 1.0) -> Image.Image:
    """Lighting gradient in a random direction (its strength scaled by `nuisance`), then Gaussian pixel noise."""
    x = np.asarray(img, dtype=np.float32)
    angle, strength = rng.uniform(0, 2 * np.pi), rng.uniform(0.0, 0.35) * nuisance
    gy, gx = np.linspace(-1, 1, HEIGHT, dtype=np.float32), np.linspace(-1, 1, WIDTH, dtype=np.float32)
    light = 1 + strength * 0.5 * (np.sin(angle) * gy[:, None] + np.cos(angle) * gx[None, :])
    # Gaussian noise as a sum of 4 uniform bytes (Irwin-Hall: mean 510, std 147.8), ~3x cheaper than
    # rng.standard_normal, which was the largest single cost per image. The mean and the +0.5 of
    # rounding are folded into one offset so that the float image is touched as few times as possible.
    k = np.float32(rng.uniform(1.0, 5.0) / 147.8)
    noise = rng.integers(0, 256, (4,) + x.shape, dtype=np.uint8).sum(axis=0, dtype=np.int16)
    x *= (light * rng.uniform(0.85, 1.1))[:, :, None]
    x += np.float32(0.5) - 510 * k
    x += noise * k
    np.clip(x, 0, 255, out=x)
    return Image.fromarray(x.astype(np.uint8))


def render_sample(seed: int, index: int, nuisance: float = 1.0) -> tuple[np.ndarray, bytes]:
    """Image `index` of the dataset `seed` -> (attributes as int8 (40,) of +-1, JPEG bytes)."""
    rng = np.random.default_rng([seed, index])
    a = sample_attributes(rng)
    img = add_photometric_noise(draw_face(a, rng, nuisance), rng, nuisance)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=JPEG_QUALITY)
    return np.array([1 if a[name] else -1 for name in ATTRIBUTE_NAMES], dtype=np.int8), buf.getvalue()


def _render_star(args):
    return render_sample(*args)


# ----------------------------------------------------------------------------
# Dataset

def split_sizes(num_images: int) -> tuple[int, int, int]:
    """CelebA's train / val / test proportions applied to `num_images`."""
    total = sum(CELEBA_SPLIT_SIZES)
    n_train = round(num_images * CELEBA_SPLIT_SIZES[0] / total)
    n_val = round(num_images * CELEBA_SPLIT_SIZES[1] / total)
    return n_train, n_val, num_images - n_train - n_val


def generate_celeba_like(root, num_images: int, seed: int, num_workers: int = 1, progress: bool = True,
                         nuisance: float = 1.0) -> dict:
    """Write `num_images` synthetic faces in CelebA's layout to `root` (atomically); return a summary.
    nuisance < 1 narrows the background, clothes and lighting variation (draw_face)."""
    if int(num_images) < 1:
        raise ValueError(f"num_images must be >= 1, got {num_images}")
    if int(num_workers) < 1:
        raise ValueError(f"num_workers must be >= 1, got {num_workers}")
    root = Path(root)
    check_replaceable(root)
    tmp = tmp_path(root)
    if tmp.exists():
        shutil.rmtree(tmp)                      # left over from an interrupted run
    (tmp / IMAGE_DIR).mkdir(parents=True)

    filenames = [f"{i + 1:06d}.jpg" for i in range(num_images)]
    attrs = np.empty((num_images, len(ATTRIBUTE_NAMES)), dtype=np.int8)
    if not 0 <= nuisance <= 1:
        raise ValueError(f"nuisance must be in [0, 1], got {nuisance}")
    jobs = [(int(seed), i, float(nuisance)) for i in range(num_images)]
    start = time.perf_counter()
    pool = Pool(num_workers) if num_workers > 1 else None
    try:
        results = pool.imap(_render_star, jobs, chunksize=32) if pool else map(_render_star, jobs)
        for i, (row, jpeg) in enumerate(tqdm(results, total=num_images, unit="img", desc="generate", disable=not progress)):
            attrs[i] = row
            (tmp / IMAGE_DIR / filenames[i]).write_bytes(jpeg)
    finally:
        if pool:
            pool.terminate()
    seconds = time.perf_counter() - start

    sizes = split_sizes(num_images)
    parts = np.repeat([0, 1, 2], sizes)
    write_attributes(tmp / ATTR_FILE, filenames, attrs)
    write_partitions(tmp / PARTITION_FILE, filenames, parts)
    replace_dir(tmp, root)

    summary = {
        "root": str(root), "num_images": num_images, "seed": int(seed), "nuisance": float(nuisance),
        "num_workers": num_workers,
        "counts": dict(zip(("train", "val", "test"), map(int, sizes))),
        "attribute_rates": {name: float((attrs[:, ATTRIBUTE_NAMES.index(name)] > 0).mean()) for name in DRAWN_ATTRIBUTES},
        "seconds": round(seconds, 3), "images_per_s": round(num_images / max(seconds, 1e-9), 1),
    }
    if progress:
        print(f"generate: {num_images} images in {seconds:.1f} s ({summary['images_per_s']:.0f} images/s, "
              f"{num_workers} worker(s)) -> {root}")
    return summary

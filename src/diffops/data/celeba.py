"""CelebA's official on-disk format: the attribute and partition lists, and the root layout.

The official release (Liu et al. 2015, "Align&Cropped Images") is a directory with

    img_align_celeba/000001.jpg ... 202599.jpg   178 wide x 218 high RGB JPEGs
    list_attr_celeba.txt                          40 binary attributes, +1 / -1
    list_eval_partition.txt                       0 = train, 1 = val, 2 = test

`list_attr_celeba.txt` is: line 1 the image count, line 2 the 40 attribute names separated by
spaces, then one row per image, `000001.jpg -1  1  1 -1 ...`. The official file right-aligns the
values in 3-character columns (two spaces before a 1, one before a -1), so readers split on any
whitespace. The synthetic stand-in (`synthetic_celeba.py`) writes exactly this format.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

# The 40 attributes of list_attr_celeba.txt, in file order (diffops.config reads them as CELEBA_ATTRIBUTES).
ATTRIBUTE_NAMES = (
    "5_o_Clock_Shadow", "Arched_Eyebrows", "Attractive", "Bags_Under_Eyes", "Bald", "Bangs",
    "Big_Lips", "Big_Nose", "Black_Hair", "Blond_Hair", "Blurry", "Brown_Hair", "Bushy_Eyebrows",
    "Chubby", "Double_Chin", "Eyeglasses", "Goatee", "Gray_Hair", "Heavy_Makeup", "High_Cheekbones",
    "Male", "Mouth_Slightly_Open", "Mustache", "Narrow_Eyes", "No_Beard", "Oval_Face", "Pale_Skin",
    "Pointy_Nose", "Receding_Hairline", "Rosy_Cheeks", "Sideburns", "Smiling", "Straight_Hair",
    "Wavy_Hair", "Wearing_Earrings", "Wearing_Hat", "Wearing_Lipstick", "Wearing_Necklace",
    "Wearing_Necktie", "Young",
)

SPLITS = {"train": 0, "val": 1, "test": 2}

IMAGE_DIR = "img_align_celeba"
ATTR_FILE = "list_attr_celeba.txt"
PARTITION_FILE = "list_eval_partition.txt"


# ----------------------------------------------------------------------------
# list_attr_celeba.txt

def write_attributes(path, filenames, attrs_pm1) -> None:
    """Write `list_attr_celeba.txt` in the official layout (values right-aligned in width 2)."""
    attrs = np.asarray(attrs_pm1)
    if attrs.shape != (len(filenames), len(ATTRIBUTE_NAMES)):
        raise ValueError(f"attrs_pm1 has shape {attrs.shape}, expected ({len(filenames)}, {len(ATTRIBUTE_NAMES)})")
    if not np.isin(attrs, (-1, 1)).all():
        raise ValueError("attrs_pm1 must contain only -1 and +1")
    lines = [str(len(filenames)), " ".join(ATTRIBUTE_NAMES)]
    for name, row in zip(filenames, attrs):
        lines.append(name + " " + " ".join(f"{int(v):2d}" for v in row))
    Path(path).write_text("\n".join(lines) + "\n")


def read_attributes(path) -> tuple[list[str], np.ndarray]:
    """Read `list_attr_celeba.txt` -> (file names, int8 array (N, 40) of +-1), validating the header."""
    path = Path(path)
    with open(path) as f:
        lines = f.read().splitlines()
    if len(lines) < 2:
        raise ValueError(f"{path}: line {len(lines) + 1}: file ends before the two header lines")
    try:
        count = int(lines[0].strip())
    except ValueError:
        raise ValueError(f"{path}: line 1: expected the image count, got {lines[0]!r}") from None
    names = tuple(lines[1].split())
    if names != ATTRIBUTE_NAMES:
        raise ValueError(f"{path}: line 2: attribute names differ from CelebA's 40 official names")

    rows = [(i, line) for i, line in enumerate(lines[2:], start=3) if line.strip()]
    if len(rows) != count:
        raise ValueError(f"{path}: line 1: count says {count} images but the file has {len(rows)} rows")
    filenames, line_of = [], {}
    attrs = np.empty((count, len(ATTRIBUTE_NAMES)), dtype=np.int8)
    for k, (lineno, line) in enumerate(rows):
        fields = line.split()
        if len(fields) != 1 + len(ATTRIBUTE_NAMES):
            raise ValueError(f"{path}: line {lineno}: expected a file name and 40 values, got {len(fields)} fields")
        try:
            values = [int(v) for v in fields[1:]]
        except ValueError:
            raise ValueError(f"{path}: line {lineno}: attribute values must be integers") from None
        if any(v not in (-1, 1) for v in values):
            raise ValueError(f"{path}: line {lineno}: attribute values must be -1 or 1")
        if fields[0] in line_of:
            raise ValueError(f"{path}: line {lineno}: {fields[0]} is listed twice (first on line "
                             f"{line_of[fields[0]]}); each image needs one row")
        line_of[fields[0]] = lineno
        filenames.append(fields[0])
        attrs[k] = values
    return filenames, attrs


# ----------------------------------------------------------------------------
# list_eval_partition.txt

def write_partitions(path, filenames, parts) -> None:
    """Write `list_eval_partition.txt`: one `000001.jpg 0` line per image."""
    if len(filenames) != len(parts):
        raise ValueError(f"{len(filenames)} file names but {len(parts)} partition codes")
    Path(path).write_text("".join(f"{name} {int(p)}\n" for name, p in zip(filenames, parts)))


def read_partitions(path) -> dict[str, int]:
    """Read `list_eval_partition.txt` -> {file name: 0 (train) | 1 (val) | 2 (test)}."""
    path = Path(path)
    partitions = {}
    with open(path) as f:
        for lineno, line in enumerate(f, start=1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != 2 or fields[1] not in ("0", "1", "2"):
                raise ValueError(f"{path}: line {lineno}: expected '<file name> <0|1|2>', got {line.strip()!r}")
            if fields[0] in partitions:
                raise ValueError(f"{path}: line {lineno}: {fields[0]} is listed twice; each image needs one partition")
            partitions[fields[0]] = int(fields[1])
    return partitions


# ----------------------------------------------------------------------------
# Root layout

def check_celeba_root(root) -> None:
    """Raise FileNotFoundError with a one-line instruction if `root` is not a CelebA directory."""
    root = Path(root)
    required = [(IMAGE_DIR + "/", os.path.isdir), (ATTR_FILE, os.path.isfile), (PARTITION_FILE, os.path.isfile)]
    missing = [name for name, exists in required if not exists(root / name.rstrip("/"))]
    if missing:
        raise FileNotFoundError(
            f"CelebA: {', '.join(missing)} missing under {root}; download the \"Align&Cropped Images\" "
            f"({IMAGE_DIR}/) and the annotation files {ATTR_FILE}, {PARTITION_FILE} from the official "
            f"CelebA page and place them there, or run `diffops generate` for the synthetic stand-in")

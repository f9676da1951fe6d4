"""CelebA preprocessing into diffops' training container.

Transform (ScoreSDE's CelebA crop): central `crop`x`crop` square at offsets ((H-crop)//2, (W-crop)//2)
— rows 39..178, columns 19..158 of a 218x178 CelebA image — then a PIL BICUBIC resize to
`resolution` (PIL's resize filters with a support scaled to the reduction, i.e. antialiased), uint8.

Container (a directory, written to `<out>.tmp` and renamed when complete):
    {split}_images.npy   uint8 (N, 3, R, R) for split in train, val, test (memory-mappable)
    {split}_attrs.npy    uint8 (N, 40) in {0, 1}, columns in celeba.ATTRIBUTE_NAMES order
    {split}_files.txt    the source file name of each row
    errors.txt           unreadable / too-small source files with the reason (empty when none)
    meta.json            format, source, crop, resolution, counts, attribute names and rates,
                         content_sha256 over the arrays (the dataset's identity in MLflow lineage)
Many DataLoader workers read it at once: each opens its own read-only memory map.
"""
from __future__ import annotations

import hashlib
import json
import time
from multiprocessing import Pool
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from .celeba import ATTR_FILE, ATTRIBUTE_NAMES, IMAGE_DIR, PARTITION_FILE, SPLITS, check_celeba_root, \
    read_attributes, read_partitions
from ..utils.io import allocate, atomic_dir, check_free_space, check_replaceable

FORMAT = "diffops-prepared-v1"


def crop_resize(img: Image.Image, crop: int, resolution: int) -> np.ndarray:
    """Central crop then BICUBIC resize; returns uint8 (3, R, R). Raises ValueError if too small."""
    img = img.convert("RGB")
    W, H = img.size
    if min(W, H) < crop:
        raise ValueError(f"image is {W}x{H}, smaller than the {crop}x{crop} crop")
    top, left = (H - crop) // 2, (W - crop) // 2
    img = img.crop((left, top, left + crop, top + crop))
    if crop != resolution:
        img = img.resize((resolution, resolution), Image.BICUBIC, reducing_gap=None)
    return np.asarray(img, dtype=np.uint8).transpose(2, 0, 1)


def _load_one(args):
    path, crop, resolution, transform = args
    try:
        with Image.open(path) as img:
            if transform == "d2c-crop":                     # diffae/DiTi crop, data/transforms.py
                from .transforms import make_transform
                out = make_transform("d2c-crop", resolution)(img.convert("RGB"))
                return np.asarray(out, dtype=np.uint8).transpose(2, 0, 1), None
            return crop_resize(img, crop, resolution), None
    except Exception as e:                                  # corrupt, truncated, not an image, too small
        return None, f"{type(e).__name__}: {e}".splitlines()[0]


def prepare_celeba(raw_root, out_dir, crop: int = 140, resolution: int = 32, on_error: str = "skip",
                   num_workers: int = 2, progress: bool = True, transform: str = "celeba-crop") -> dict:
    raw_root, out_dir = Path(raw_root), Path(out_dir)
    if not (isinstance(crop, int) and crop >= 1):
        raise ValueError(f"crop: must be a positive integer, got {crop!r}")
    if not (isinstance(resolution, int) and 1 <= resolution <= crop):
        raise ValueError(f"resolution: must be an integer in [1, crop={crop}], got {resolution!r}")
    if on_error not in ("skip", "fail"):
        raise ValueError(f"on_error: must be 'skip' or 'fail', got {on_error!r}")
    if transform not in ("celeba-crop", "d2c-crop"):
        raise ValueError(f"transform: must be 'celeba-crop' or 'd2c-crop', got {transform!r}")
    check_replaceable(out_dir)
    check_celeba_root(raw_root)
    names, attrs_pm1 = read_attributes(raw_root / ATTR_FILE)
    partitions = read_partitions(raw_root / PARTITION_FILE)
    missing = [n for n in names if n not in partitions]
    if missing:
        raise ValueError(f"{raw_root / PARTITION_FILE}: no partition for {len(missing)} images, e.g. {missing[0]}")
    unknown = sorted(set(partitions) - set(names))
    if unknown:
        raise ValueError(f"{raw_root / PARTITION_FILE}: {len(unknown)} entries name images that "
                         f"{raw_root / ATTR_FILE} does not list, e.g. {unknown[0]}; use the two files of one release")
    order = np.argsort(names, kind="stable")
    names, attrs = [names[i] for i in order], (attrs_pm1[order] > 0).astype(np.uint8)

    rows = {s: [i for i, n in enumerate(names) if partitions[n] == code] for s, code in SPLITS.items()}
    with atomic_dir(out_dir) as tmp:
        summary = _prepare_into(tmp, raw_root, names, attrs, rows, crop, resolution, on_error, num_workers,
                                progress, transform)
    errors, counts = summary["skipped"], summary["counts"]
    n_ok = sum(counts.values())
    print(f"prepare: {n_ok} images in {summary['seconds']:.1f} s ({n_ok / max(summary['seconds'], 1e-9):.0f} "
          f"images/s, {num_workers} worker(s)) -> {out_dir}; splits {counts}; skipped {len(errors)}"
          + (f" (listed in {out_dir / 'errors.txt'})" if errors else ""))
    for e in errors[:10]:
        print(f"  skipped {e}")
    return summary


def _prepare_into(tmp, raw_root, names, attrs, rows, crop, resolution, on_error, num_workers, progress,
                  transform) -> dict:
    nbytes = 3 * resolution * resolution * len(names)
    check_free_space(tmp, nbytes)
    images = {s: np.lib.format.open_memmap(tmp / f"{s}_images.npy", "w+", np.uint8,
                                           (len(r), 3, resolution, resolution)) for s, r in rows.items()}
    for split in images:        # reserve the blocks now: a full disk is an OSError here, not a SIGBUS later
        allocate(tmp / f"{split}_images.npy")
    split_of = {i: (s, j) for s, r in rows.items() for j, i in enumerate(r)}

    # Decode + transform in workers, written in index order by this process (bounded memory).
    errors, ok = [], np.ones(len(names), bool)
    jobs = [(raw_root / IMAGE_DIR / n, crop, resolution, transform) for n in names]
    t0 = time.perf_counter()
    with Pool(num_workers) if num_workers > 1 else _Serial() as pool:
        results = pool.imap(_load_one, jobs, chunksize=64)
        for i, (pixels, error) in enumerate(tqdm(results, total=len(jobs), unit="img", desc="prepare",
                                                 disable=not progress)):
            if error is not None:
                if on_error == "fail":
                    raise ValueError(f"{names[i]}: {error} (set data.on_error: skip to skip such files)")
                errors.append(f"{names[i]}\t{error}")
                ok[i] = False
                continue
            split, j = split_of[i]
            images[split][j] = pixels
    seconds = time.perf_counter() - t0
    empty = [s for s, r in rows.items() if (r or s == "train") and not ok[r].any()]
    if empty:                   # an empty split would replace a good container and fail the next stage
        first = "; e.g. " + errors[0].replace("\t", ": ") if errors else ""
        raise ValueError(f"{raw_root / IMAGE_DIR}: no readable image in the {'/'.join(empty)} split "
                         f"({len(errors)} of {len(names)} unreadable{first}); nothing was written, "
                         f"the previous output is kept")

    # Drop skipped rows, then write attributes, file lists, report and meta.
    sha, counts, rates = hashlib.sha256(), {}, {}
    for split, r in rows.items():
        keep = [j for j, i in enumerate(r) if ok[i]]
        arr = images[split]
        if len(keep) != len(r):
            arr = np.ascontiguousarray(arr[keep])
            del images[split]
            np.save(tmp / f"{split}_images.npy", arr)
        else:
            arr.flush()
        split_attrs = attrs[[r[j] for j in keep]] if keep else np.zeros((0, 40), np.uint8)
        np.save(tmp / f"{split}_attrs.npy", split_attrs)
        (tmp / f"{split}_files.txt").write_text("".join(names[r[j]] + "\n" for j in keep))
        sha.update(np.ascontiguousarray(arr).tobytes())
        sha.update(split_attrs.tobytes())
        counts[split] = len(keep)
        rates[split] = dict(zip(ATTRIBUTE_NAMES, split_attrs.mean(0).round(4).tolist())) if keep else {}
    images.clear()
    (tmp / "errors.txt").write_text("".join(e + "\n" for e in errors))
    meta = {"format": FORMAT, "source": str(raw_root.resolve()), "crop": crop, "resolution": resolution,
            "transform": "center-crop + PIL BICUBIC" if transform == "celeba-crop" else
                         "d2c-crop (rows 57-184, columns 25-152) + PIL BILINEAR", "counts": counts, "skipped": len(errors),
            "attribute_names": list(ATTRIBUTE_NAMES), "attribute_rates": rates,
            "content_sha256": sha.hexdigest()}
    (tmp / "meta.json").write_text(json.dumps(meta, indent=2))
    return {"counts": counts, "skipped": errors, "seconds": seconds, "content_sha256": meta["content_sha256"]}


class _Serial:
    """The Pool interface, in this process (num_workers <= 1)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def imap(self, fn, items, chunksize=1):
        return map(fn, items)


def load_split(root, split: str) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 (N, 3, R, R), attrs uint8 (N, 40)) of one split, fully in memory."""
    root = Path(root)
    if not (root / "meta.json").exists():
        raise FileNotFoundError(f"{root}: not a prepared dataset (no meta.json); run the prepare stage first")
    return np.load(root / f"{split}_images.npy"), np.load(root / f"{split}_attrs.npy")


class PreparedDataset(torch.utils.data.Dataset):
    """Rows of one split as dicts {"image": uint8 (3, R, R), "attrs": uint8 (40,), **extras}.

    Extras are optional per-row arrays `{split}_{name}.npy` named in meta.json's "extra_columns"
    (e.g. a biased/reference group id written by a split stage); the training loop hands every key
    to the method's loss. Arrays are memory-mapped lazily, so each DataLoader worker has its own map.
    """

    def __init__(self, root, split: str = "train"):
        self.root, self.split = Path(root), split
        if not (self.root / "meta.json").exists():
            raise FileNotFoundError(f"{root}: not a prepared dataset (no meta.json); run the prepare stage first")
        meta = json.loads((self.root / "meta.json").read_text())
        self.columns = {"image": f"{split}_images.npy", "attrs": f"{split}_attrs.npy",
                        **{name: f"{split}_{name}.npy" for name in meta.get("extra_columns", [])}}
        self._arrays = None
        self._len = len(np.load(self.root / self.columns["attrs"], mmap_mode="r"))
        if self._len == 0:
            raise ValueError(f"{root}: its {split} split holds no images; prepare it again from readable images")

    def __len__(self):
        return self._len

    def __getitem__(self, i):
        """Row i, or for a list of indices the stacked rows in that order (one read per column, what
        default_collate would make of the single rows; training.batches.training_loader asks for these)."""
        if self._arrays is None:                    # opened lazily: one map per DataLoader worker
            self._arrays = {k: np.load(self.root / f, mmap_mode="r") for k, f in self.columns.items()}
        if isinstance(i, (int, np.integer)):        # a view into the map: copied
            return {k: torch.from_numpy(np.array(a[i])) for k, a in self._arrays.items()}
        i = np.asarray(i, dtype=np.int64)           # fancy indexing already copies
        return {k: torch.from_numpy(a[i]) for k, a in self._arrays.items()}

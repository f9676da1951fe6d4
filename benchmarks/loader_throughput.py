"""Images/s the training loader delivers from the prepared container, against a PNG folder and a bare read.

Input, made once in a temp dir with the library: `--images` synthetic faces (diffops.data.synthetic_celeba,
seed 123), prepared by diffops.data.prepare.prepare_celeba at params.yaml's data.* (celeba-crop 140 -> 32 px),
as the root pipeline's `prepare` stage writes data/prepared; the train split's rows also saved as PNG files.
Each run draws `--batches` batches of `--batch` (train.batch_size) images and counts images delivered:
  - diffops loader: training.batches.training_loader(PreparedDataset(train), ResumableBatchSampler,
                    --workers), the loader the training loop iterates (whole batches per read);
  - PNG folder:     torch DataLoader over the same images as PNG files, PIL decode + to uint8 tensor,
                    same batch size, same shuffled order, same num_workers;
  - bare read:      no DataLoader: the same index lists, one fancy-index read per batch of the
                    memory-mapped {train}_images.npy and _attrs.npy arrays (torch.from_numpy), the
                    index lists made before the clock starts;
  - bare loop:      the same reads with the index lists drawn in the loop from the batch sampler, as
                    any loop that trains on this order must.
Runs alternate (diffops, PNG, bare, diffops, ...) so load from other users hits all alike; each loader is
warmed up (worker start-up excluded, the first 5 batches untimed). Reported: medians over >= 5 repeats
and the per-repeat ratios diffops/PNG (goal >= 3) and diffops/bare (goal >= 0.95).

    .venv/bin/python benchmarks/loader_throughput.py                           # 3000 images, 1 worker
    .venv/bin/python benchmarks/loader_throughput.py --workers 0 --repeats 7 --batches 200
"""
from __future__ import annotations

import argparse
import contextlib
import io
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from diffops.config import load_params
from diffops.data.prepare import PreparedDataset, prepare_celeba
from diffops.data.synthetic_celeba import generate_celeba_like
from diffops.training.batches import ResumableBatchSampler, training_loader

ROOT = Path(__file__).resolve().parents[1]
WARMUP = 5


class PngFolder(torch.utils.data.Dataset):
    def __init__(self, folder):
        self.files = sorted(str(p) for p in Path(folder).glob("*.png"))

    def __len__(self):
        return len(self.files)

    def __getitem__(self, i):
        with Image.open(self.files[i]) as img:
            return torch.from_numpy(np.asarray(img.convert("RGB")).transpose(2, 0, 1).copy())


def timed(batches, n: int) -> float:
    it = iter(batches)
    for _ in range(WARMUP):
        next(it)
    t0 = time.perf_counter()
    count = 0
    for _ in range(n):
        b = next(it)
        count += len(b["image"] if isinstance(b, dict) else b)
    return count / (time.perf_counter() - t0)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=3000, help="synthetic faces generated (train split ~80 %%)")
    ap.add_argument("--batches", type=int, default=100, help="timed batches per run")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--workers", type=int, default=None, help="loader workers (default: params train.num_workers)")
    ap.add_argument("--batch", type=int, default=None, help="batch size (default: params train.batch_size)")
    args = ap.parse_args()
    cfg = load_params(ROOT / "params.yaml")
    workers = cfg.train.num_workers if args.workers is None else args.workers
    B = cfg.train.batch_size if args.batch is None else args.batch
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        with contextlib.redirect_stdout(io.StringIO()):
            generate_celeba_like(tmp / "raw", args.images, 123, num_workers=2, progress=False)
            prepare_celeba(tmp / "raw", tmp / "prepared", crop=cfg.data.crop, resolution=cfg.data.resolution,
                           num_workers=2, progress=False, transform=cfg.data.transform)
        images = np.load(tmp / "prepared" / "train_images.npy", mmap_mode="r")
        attrs = np.load(tmp / "prepared" / "train_attrs.npy", mmap_mode="r")
        (tmp / "png").mkdir()
        for i, img in enumerate(images):
            Image.fromarray(np.ascontiguousarray(img.transpose(1, 2, 0))).save(tmp / "png" / f"{i:06d}.png")
        n, total = len(images), WARMUP + args.batches

        def diffops():
            ds = PreparedDataset(tmp / "prepared", "train")
            return training_loader(ds, ResumableBatchSampler(n, B, 0), workers)

        def png():
            return torch.utils.data.DataLoader(PngFolder(tmp / "png"), batch_sampler=ResumableBatchSampler(n, B, 0),
                                               num_workers=workers)

        def bare():
            s = ResumableBatchSampler(n, B, 0)
            order = [s.batch_indices(k) for k in range(total)]       # index lists made before the clock
            return ({"image": torch.from_numpy(images[idx]), "attrs": torch.from_numpy(attrs[idx])} for idx in order)

        def bare_loop():                                             # the same batches, drawn in the loop
            return ({"image": torch.from_numpy(images[idx]), "attrs": torch.from_numpy(attrs[idx])}
                    for idx in ResumableBatchSampler(n, B, 0))

        runs = {"diffops loader": diffops, "PNG folder (PIL)": png, "bare read": bare, "bare loop": bare_loop}
        rates = {k: [] for k in runs}
        for _ in range(args.repeats):
            for name, make in runs.items():
                rates[name].append(timed(make(), args.batches))
    print(f"machine: {os.cpu_count()} CPUs, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}, "
          f"torch {torch.__version__}")
    print(f"data: {n} train images {cfg.data.resolution}x{cfg.data.resolution} (prepared container), "
          f"batch {B}, loader workers {workers} (diffops and PNG), {args.batches} timed batches x {args.repeats} repeats")
    for name, r in rates.items():
        print(f"  {name:18s} median {statistics.median(r):10.0f} images/s   runs " + " ".join(f"{x:.0f}" for x in r))
    for other, goal in (("PNG folder (PIL)", 3.0), ("bare read", 0.95), ("bare loop", 0.95)):
        ratios = [a / b for a, b in zip(rates["diffops loader"], rates[other])]
        print(f"  diffops / {other:16s} median {statistics.median(ratios):.3f} (goal >= {goal})   per repeat "
              + " ".join(f"{x:.3f}" for x in ratios))


if __name__ == "__main__":
    main()

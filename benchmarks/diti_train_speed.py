"""Cost of one DiTi / PDAE training step vs one EDM step on the quickstart model (32 px, params.yaml).

Each step is forward + backward + Adam on a global batch of `--batch` random images, exactly as
training/loop.py calls the method (D frozen for DiTi/PDAE). Steps alternate EDM, DiTi, EDM, DiTi, ...
so that load from other users of the machine hits both alike. Reported per method: median wall-clock
images/s and median process CPU seconds per image (user + system, both threads), and the DiTi/EDM
ratios, which are what transfers to an idle machine.

    .venv/bin/python benchmarks/diti_train_speed.py                    # batch 64, 8 repeats
    .venv/bin/python benchmarks/diti_train_speed.py --repeats 12 --threads 2
"""
from __future__ import annotations

import argparse
import os
import statistics
import time
from dataclasses import replace
from pathlib import Path

import torch

from diffops.config import load_params
from diffops.methods import METHODS
from diffops.training.loop import build_trainable

ROOT = Path(__file__).resolve().parents[1]


def step_fn(cfg, name: str, batch: int):
    c = replace(cfg, method=replace(cfg.method, name=name))
    model = build_trainable(c)
    if getattr(model.method, "freeze_denoiser", False):
        model.D.requires_grad_(False)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    g = torch.Generator().manual_seed(0)
    x = {"image": torch.rand(batch, 3, cfg.data.resolution, cfg.data.resolution, generator=g) * 2 - 1,
         "attrs": torch.zeros(batch, 40, dtype=torch.uint8)}

    def step(i):
        loss = model(x, torch.Generator().manual_seed(i)).mean()
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    return step


def measure(step, i):
    t0, c0 = time.perf_counter(), os.times()
    step(i)
    c1 = os.times()
    return time.perf_counter() - t0, (c1.user - c0.user) + (c1.system - c0.system)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--methods", default="edm,diti")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfg = load_params(ROOT / "params.yaml", methods=METHODS)
    names = args.methods.split(",")
    steps = {n: step_fn(cfg, n, args.batch) for n in names}
    for n in names:                                 # warm-up
        steps[n](0)
    wall, cpu = {n: [] for n in names}, {n: [] for n in names}
    for r in range(args.repeats):
        for n in names:
            w, c = measure(steps[n], r + 1)
            wall[n].append(w)
            cpu[n].append(c)
    print(f"batch {args.batch}, {args.repeats} repeats, torch threads {args.threads}, load avg {os.getloadavg()[0]:.1f}")
    for n in names:
        w, c = statistics.median(wall[n]), statistics.median(cpu[n])
        print(f"  {n:>5}: {args.batch / w:7.1f} img/s wall, {1000 * c / args.batch:6.2f} CPU-ms/img")
    base = names[0]
    for n in names[1:]:
        print(f"  {n}/{base}: wall time per image x{statistics.median(wall[n]) / statistics.median(wall[base]):.2f}, "
              f"CPU per image x{statistics.median(cpu[n]) / statistics.median(cpu[base]):.2f}")


if __name__ == "__main__":
    main()

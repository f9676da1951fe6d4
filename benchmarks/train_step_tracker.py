"""Training-loop step time with the MLflow tracker, with the null tracker, and a bare PyTorch loop of the
same model and batch, in one process, alternating, median of several repeats.

    python benchmarks/train_step_tracker.py               # quickstart model.* / train.batch_size, 40 steps x 5
    python benchmarks/train_step_tracker.py --steps 20 --repeats 3

Each repeat trains from scratch for --steps steps in a temp folder (no checkpoints or grids inside the
window: their intervals are set past it) and reports seconds per step over the steps after the first few.
Goal: the loop with either tracker within 1.05x of the bare loop.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

from diffops.config import load_params
from diffops.data.prepare import PreparedDataset
from diffops.methods import METHODS
from diffops.stages.train import tracker_for
from diffops.training.loop import build_trainable, train
from diffops.training.tracker import NullTracker

WARMUP = 3


def loop_seconds(cfg, data, steps: int, tracker) -> float:
    stamps = []

    class Timed:                   # wraps a tracker: records when each step's metrics arrive
        def __init__(self, inner):
            self.inner = inner

        def __getattr__(self, name):
            return getattr(self.inner, name)

        def start(self, run_id=None):
            cm = self.inner.start(run_id)
            outer = self

            class _CM:
                def __enter__(self_):
                    cm.__enter__()
                    return outer

                def __exit__(self_, *exc):
                    return cm.__exit__(*exc)
            return _CM()

        def log_metrics(self, metrics, step=None):
            stamps.append(time.perf_counter())
            self.inner.log_metrics(metrics, step)

    with tempfile.TemporaryDirectory() as tmp:
        train(cfg, data, None, Path(tmp) / "state", tracker=Timed(tracker), stop_after_steps=steps)
    return (stamps[-1] - stamps[WARMUP - 1]) / (len(stamps) - WARMUP)


def bare_seconds(cfg, data, steps: int) -> float:
    """The same model, loss, optimiser, batch and EMA update, with nothing else."""
    model = build_trainable(cfg)
    ema = [p.detach().clone() for p in model.parameters()]
    opt = torch.optim.Adam(model.parameters(), lr=cfg.train.lr, betas=(0.9, 0.999), eps=1e-8)
    loader = torch.utils.data.DataLoader(PreparedDataset(data, "train"), batch_size=cfg.train.batch_size,
                                         shuffle=True, num_workers=cfg.train.num_workers, drop_last=True)
    g = torch.Generator().manual_seed(0)
    stamps = []
    for step, rows in enumerate(loader):
        if step >= steps:
            break
        batch = {k: v for k, v in rows.items()}
        batch["image"] = batch["image"].to(torch.float32) / 127.5 - 1
        loss = model(batch, g)
        loss.mean().backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        with torch.no_grad():
            for e, p in zip(ema, model.parameters()):
                e.copy_(p.detach().lerp(e, 0.999))
        loss.detach().mean().item()
        stamps.append(time.perf_counter())
    return (stamps[-1] - stamps[WARMUP - 1]) / (len(stamps) - WARMUP)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--data", default="data/prepared", help="A prepared container (dvc repro prepare).")
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    cfg = load_params(args.params, methods=METHODS)
    far = args.steps * cfg.train.batch_size / 1000 * 10
    cfg = replace(cfg, train=replace(cfg.train, log_every_steps=1, checkpoint_every_kimg=far, grid_every_kimg=far,
                                     duration_kimg=far),
                  tracking=replace(cfg.tracking, experiment="benchmark-tracker", system_metrics=False,
                                   log_checkpoints="none"))
    times = {"bare": [], "null tracker": [], "mlflow tracker": []}
    for _ in range(args.repeats):              # alternating, so drifts of the machine hit all three alike
        times["bare"].append(bare_seconds(cfg, args.data, args.steps))
        times["null tracker"].append(loop_seconds(cfg, args.data, args.steps, NullTracker()))
        times["mlflow tracker"].append(loop_seconds(cfg, args.data, args.steps, tracker_for(cfg, "benchmark")))
    bare = statistics.median(times["bare"])
    print(f"{torch.get_num_threads()} threads, batch {cfg.train.batch_size}, {args.steps} steps x {args.repeats}")
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"{name:>15}: {1000 * med:7.1f} ms/step (median; {', '.join(f'{1000 * t:.0f}' for t in ts)})  "
              f"{med / bare:.3f}x bare")


if __name__ == "__main__":
    main()

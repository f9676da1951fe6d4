"""Kill `diffops train` again and again at random moments, resume it each time, and compare the result
with a run that was never stopped: the README's figure for exact resume (issue 15, part 5).

    python -m tests.training.kill_resume_cycles                  # 6 cycles, seed 0
    python -m tests.training.kill_resume_cycles --cycles 10 --seed 1

A tiny ddpm config (100 steps of 4 images, a checkpoint every 10 steps, a log point every 3) in a temp
folder with its own MLflow store. Each cycle starts `diffops train` on the same --state (so it resumes),
waits for the first checkpoint it writes, then after a random delay (0-0.6 s) sends SIGKILL or SIGTERM
(in turn), wherever the loop is: in a step, logging, or writing a checkpoint. A final start trains to
the end. Prints one row per cycle and whether the exported EMA weights are bit-identical to the
uninterrupted run's and every metric's whole history (steps and values; images_per_sec: steps only)
is identical. Takes about 3 minutes for 6 cycles on 2 busy CPU cores (most of it process start-up).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import mlflow
import torch
import yaml
from safetensors.torch import load_file

from ..conftest import write_prepared
from .test_resume_history import history

PARAMS = {
    "data": {"resolution": 8, "crop": 8},
    "model": {"block_channels": [8, 8], "attention": [False, False], "norm_num_groups": 4},
    "method": {"name": "ddpm"},
    "ddpm": {"loss_weight": "lambda"},
    "train": {"duration_kimg": 0.4, "batch_size": 4, "checkpoint_every_kimg": 0.04, "log_every_steps": 3,
              "grid_every_kimg": 10.0, "num_workers": 0, "lr_rampup_kimg": 0.01},
    "tracking": {"experiment": "kill-resume", "system_metrics": False, "log_checkpoints": "none"},
}
ROOT = Path(__file__).parents[2]


def start_train(folder: Path, out: str, state: str) -> subprocess.Popen:
    env = os.environ | {"OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": "1"}
    with open(folder / "stderr.txt", "w") as stderr:      # the last start's, for a failure's message
        return subprocess.Popen([sys.executable, "-m", "diffops.cli", "train", "--data", "data", "--out", out,
                                 "--state", state], cwd=folder, env=env, stdout=subprocess.PIPE, stderr=stderr,
                                text=True)


def signal_after_first_checkpoint(proc: subprocess.Popen, sig: signal.Signals, delay_s: float) -> list[str]:
    """Wait for the child's first "Saved" line, then signal it after delay_s; returns its stdout lines."""
    lines = []
    for line in proc.stdout:
        lines.append(line.rstrip())
        if line.startswith("Saved "):
            break
    timer = threading.Timer(delay_s, lambda: proc.poll() is None and proc.send_signal(sig))
    timer.start()
    lines += [line.rstrip() for line in proc.stdout]
    proc.wait()
    timer.cancel()
    return lines


def finish(proc: subprocess.Popen, folder: Path) -> None:
    proc.communicate()
    if proc.returncode != 0:
        sys.exit((folder / "stderr.txt").read_text()[-3000:])


def main(cycles: int, seed: int) -> bool:
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{folder / 'mlflow.db'}"
        mlflow.set_tracking_uri(os.environ["MLFLOW_TRACKING_URI"])
        write_prepared(folder / "data")
        (folder / "params.yaml").write_text(yaml.safe_dump(PARAMS))

        t0 = time.perf_counter()
        finish(start_train(folder, "reference", "reference-state"), folder)
        print(f"uninterrupted run: {time.perf_counter() - t0:.1f} s")
        print(f"{'cycle':>5}  {'signal':<7} {'delay':>6}  {'resumed from':<22} {'exit':>4}  "
              f"last stored step  run status")
        for cycle in range(1, cycles + 1):
            sig = (signal.SIGKILL, signal.SIGTERM)[(cycle - 1) % 2]
            delay_s = rng.uniform(0, 0.6)
            proc = start_train(folder, "model", "state")
            lines = signal_after_first_checkpoint(proc, sig, delay_s)
            resumed = next((line.split()[2].split("/")[-1] for line in lines if line.startswith("Resuming")), "-")
            run_id = json.loads(max((folder / "state").glob("checkpoint-*/state.json")).read_text())["mlflow_run_id"]
            stored = max((s for s, _ in history(run_id).get("loss", [])), default=0)
            status = mlflow.MlflowClient().get_run(run_id).info.status
            print(f"{cycle:>5}  {sig.name:<7} {delay_s:>5.2f}s  {resumed:<22} {proc.returncode:>4}  "
                  f"{stored:>16}  {status}")
        finish(start_train(folder, "model", "state"), folder)

        ref_run, run = (json.loads((folder / d / "model.json").read_text())["mlflow_run_id"]
                        for d in ("reference", "model"))
        a, b = (load_file(folder / d / "ema.safetensors") for d in ("reference", "model"))
        weights_equal = a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
        ha, hb = history(ref_run), history(run)
        history_equal = ha == hb
        points = sum(len(v) for v in ha.values())
        print(f"{cycles} kill/resume cycles: EMA weights bit-identical: {weights_equal}; metric history identical: "
              f"{history_equal} ({len(ha)} metrics, {points} points); final run status "
              f"{mlflow.MlflowClient().get_run(run).info.status}")
        return weights_equal and history_equal


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cycles", type=int, default=6)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    sys.exit(0 if main(args.cycles, args.seed) else 1)

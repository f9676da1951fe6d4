"""Time the root quickstart pipeline stage by stage on this machine, from a fresh clone.

    python benchmarks/quickstart_pipeline.py            # clones HEAD into a temp dir, runs every stage
    python benchmarks/quickstart_pipeline.py --keep     # keep the clone to look at its outputs

Prints one line per stage (wall seconds) and the total, then the headline metrics (metrics/summary.json).
Stages run in dvc.yaml order with `dvc repro --single-item`, which is what `dvc repro` does on a fresh clone.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--keep", action="store_true", help="keep the temporary clone")
    args = ap.parse_args()
    bin_dir = Path(sys.executable).parent
    env = os.environ | {"PATH": f"{bin_dir}:{os.environ['PATH']}"}
    env.pop("MLFLOW_TRACKING_URI", None)
    root = Path(tempfile.mkdtemp(prefix="diffops-quickstart-"))
    subprocess.run(["git", "clone", "-q", str(REPO), str(root)], check=True)
    stages = list(yaml.safe_load((root / "dvc.yaml").read_text())["stages"])
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at start")
    total = 0.0
    for stage in stages:
        t0 = time.perf_counter()
        subprocess.run([str(bin_dir / "dvc"), "repro", "--single-item", stage], cwd=root, env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        dt = time.perf_counter() - t0
        total += dt
        print(f"{stage:>24}  {dt:7.1f} s")
    print(f"{'total':>24}  {total:7.1f} s  (load average {os.getloadavg()[0]:.2f} at end)")
    t0 = time.perf_counter()
    out = subprocess.run([str(bin_dir / "dvc"), "repro"], cwd=root, env=env, check=True,
                         capture_output=True, text=True).stdout
    print(f"{'second dvc repro':>24}  {time.perf_counter() - t0:7.1f} s  ({out.strip().splitlines()[-1]})")
    summary = json.loads((root / "metrics" / "summary.json").read_text())     # flat: dotted key -> number
    print("metrics/summary.json", {k: round(v, 4) for k, v in summary.items()})
    if args.keep:
        print(f"clone kept at {root}")
    else:
        shutil.rmtree(root)


if __name__ == "__main__":
    main()

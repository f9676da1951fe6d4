"""Datasets are DVC-cached: push to a local-folder remote, clone afresh, pull, and `dvc repro` does nothing.

A tiny temporary project: raw images added with `dvc add`, one `diffops convert` stage writing an edm2
zip and its report. The same commands work with an S3 remote (README: "DVC remotes").
"""
import io
import os
import sys
import subprocess
from pathlib import Path

import numpy as np
import PIL.Image
import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent                    # the environment running the tests
GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]

DVC_YAML = """stages:
  convert:
    cmd: diffops convert --source data/raw --dest data/images.zip --no-mlflow
    deps:
      - data/raw
    params:
      - convert.transform
      - convert.resolution
    outs:
      - data/images.zip
      - data/images.zip.report.json
"""


def run(cmd, cwd, env):
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"{cmd}:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
    return proc.stdout + proc.stderr


def test_push_clone_pull_then_repro_does_nothing(tmp_path):
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "DVC_"))},
           "PATH": f"{BIN}:{os.environ['PATH']}"}
    dvc = str(BIN / "dvc")
    proj = tmp_path / "proj"
    (proj / "data" / "raw").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(6):
        buf = io.BytesIO()
        PIL.Image.fromarray(rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)).save(buf, format="JPEG")
        (proj / "data" / "raw" / f"{i}.jpg").write_bytes(buf.getvalue())
    (proj / "params.yaml").write_text("convert:\n  transform: center-crop\n  resolution: 8\n  num_workers: 1\n")
    (proj / "dvc.yaml").write_text(DVC_YAML)
    run(["git", "init", "-q"], proj, env)
    run([dvc, "init", "-q"], proj, env)
    run([dvc, "add", "-q", "data/raw"], proj, env)
    out = run([dvc, "repro"], proj, env)
    assert "Running stage 'convert'" in out
    run([dvc, "remote", "add", "-d", "local", str(tmp_path / "remote")], proj, env)
    run([dvc, "push"], proj, env)
    run(GIT + ["add", "-A"], proj, env)
    run(GIT + ["commit", "-qm", "dataset"], proj, env)
    original = (proj / "data" / "images.zip").read_bytes()

    clone = tmp_path / "clone"
    run(["git", "clone", "-q", str(proj), str(clone)], tmp_path, env)
    assert not (clone / "data" / "images.zip").exists()
    run([dvc, "pull"], clone, env)
    assert (clone / "data" / "images.zip").read_bytes() == original
    assert len(list((clone / "data" / "raw").glob("*.jpg"))) == 6
    out = run([dvc, "repro"], clone, env)
    assert "Running stage" not in out, out
    assert "up to date" in run([dvc, "status"], clone, env)

"""The multi-process path: two CPU processes (gloo) through torchrun, as on a multi-GPU node, against one
process with the same global batch (issue 15, part 4)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import mlflow
import yaml
from safetensors.torch import load_file

from diffops.config import load_params
from diffops.methods import METHODS
from diffops.stages import sample, train
from diffops.training import checkpoint as ckpt

from ..conftest import write_prepared

PARAMS = {
    "data": {"resolution": 8, "crop": 8},
    "model": {"block_channels": [8, 8], "attention": [False, False], "norm_num_groups": 4},
    "train": {"duration_kimg": 0.064, "batch_size": 8, "checkpoint_every_kimg": 0.032,
              "grid_every_kimg": 1.0, "log_every_steps": 2, "num_workers": 0},
    "sample": {"steps": 2, "num_images": 10, "batch_size": 3},
    "tracking": {"experiment": "ddp", "system_metrics": False, "log_checkpoints": "none"},
}
# Each rank draws its own noise (training reseeds from (seed, rank, images seen)), so one and two
# processes train on the same images with other noise: their losses agree within the noise, not bit for
# bit. Measured over the 4 log points (2 steps of 8 images each; loss about 1.2): max |difference| 0.039.
LOSS_TOLERANCE = 0.06


def history(run_id: str, key: str) -> list[tuple[int, float]]:
    return sorted((m.step, m.value) for m in mlflow.MlflowClient().get_metric_history(run_id, key))


def test_two_processes_train_and_sample_as_one_does(tmp_path, mlflow_uri):
    data = write_prepared(tmp_path / "data")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(PARAMS))
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                "-m", "diffops.cli"]
    env = os.environ | {"MLFLOW_TRACKING_URI": mlflow_uri, "OMP_NUM_THREADS": "1"}
    stdout = ""
    for args in (["train", "--data", str(data), "--out", "model", "--state", "state"],
                 ["sample", "--model", "model", "--out", "samples"]):
        proc = subprocess.run(torchrun + args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-4000:]
        stdout += proc.stdout

    # One MLflow run, from the main process.
    spec = json.loads((tmp_path / "model" / "model.json").read_text())
    assert load_file(tmp_path / "model" / "ema.safetensors")
    runs = mlflow.MlflowClient().search_runs([mlflow.get_experiment_by_name("ddp").experiment_id])
    assert [r.info.run_id for r in runs] == [spec["mlflow_run_id"]]       # rank 1 made no stray run
    assert runs[0].info.status == "FINISHED" and runs[0].data.params["train.num_processes"] == "2"
    # Each checkpoint written once, by process 0, and intact.
    names = [p.name for p in ckpt.list_checkpoints(tmp_path / "state")]
    assert names == ["checkpoint-000000032", "checkpoint-000000064"]
    assert sorted(line for line in stdout.splitlines() if line.startswith("Saved ")) == \
        [f"Saved {Path('state') / n} (by process 0 of 2)" for n in names]
    assert all(ckpt.checkpoint_problem(tmp_path / "state" / n) is None for n in names)
    assert sorted(p.name for p in (tmp_path / "state").iterdir()) == [".diffops", *names, ckpt.RUN_FILE]

    # One process, the same params and global batch: the same images per step, learning rate and EMA
    # schedule, and the same loss curve within LOSS_TOLERANCE ...
    one = load_params(PARAMS | {"tracking": PARAMS["tracking"] | {"experiment": "ddp-one-process"}}, methods=METHODS)
    train.run(one, data, tmp_path / "model1", tmp_path / "state1")
    run1 = json.loads((tmp_path / "model1" / "model.json").read_text())["mlflow_run_id"]
    for key in ("kimg", "lr", "ema_beta"):
        assert history(spec["mlflow_run_id"], key) == history(run1, key), key
    two, single = history(spec["mlflow_run_id"], "loss"), history(run1, "loss")
    assert [s for s, _ in two] == [s for s, _ in single] == [2, 4, 6, 8]
    assert max(abs(a - b) for (_, a), (_, b) in zip(two, single)) <= LOSS_TOLERANCE

    # ... and the 2-process model sampled by 1 process: the same PNG files, byte for byte.
    sample.run(load_params(PARAMS, methods=METHODS), tmp_path / "model", tmp_path / "samples1")
    pngs = sorted(p.name for p in (tmp_path / "samples" / "images").glob("*.png"))
    assert pngs == [f"{s:06d}.png" for s in range(10)]                     # both ranks' seeds, once each
    for name in pngs:
        assert (tmp_path / "samples" / "images" / name).read_bytes() == \
            (tmp_path / "samples1" / "images" / name).read_bytes(), name

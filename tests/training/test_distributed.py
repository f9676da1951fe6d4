"""The multi-process path: two CPU processes (gloo) through torchrun, as on a multi-GPU node."""
import json
import os
import subprocess
import sys
from pathlib import Path

import mlflow
import yaml
from safetensors.torch import load_file

from ..conftest import write_prepared

PARAMS = {
    "data": {"resolution": 8, "crop": 8},
    "model": {"block_channels": [8, 8], "attention": [False, False], "norm_num_groups": 4},
    "train": {"duration_kimg": 0.064, "batch_size": 8, "checkpoint_every_kimg": 0.032,
              "grid_every_kimg": 1.0, "log_every_steps": 2, "num_workers": 0},
    "sample": {"steps": 2, "num_images": 10, "batch_size": 3},
    "tracking": {"experiment": "ddp", "system_metrics": False, "log_checkpoints": "none"},
}


def test_two_processes_train_and_sample(tmp_path, mlflow_uri):
    data = write_prepared(tmp_path / "data")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(PARAMS))
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                "-m", "diffops.cli"]
    env = os.environ | {"MLFLOW_TRACKING_URI": mlflow_uri, "OMP_NUM_THREADS": "1"}
    for args in (["train", "--data", str(data), "--out", "model", "--state", "state"],
                 ["sample", "--model", "model", "--out", "samples"]):
        proc = subprocess.run(torchrun + args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-4000:]

    spec = json.loads((tmp_path / "model" / "model.json").read_text())
    assert load_file(tmp_path / "model" / "ema.safetensors")
    runs = mlflow.MlflowClient().search_runs([mlflow.get_experiment_by_name("ddp").experiment_id])
    assert [r.info.run_id for r in runs] == [spec["mlflow_run_id"]]       # rank 1 made no stray run
    assert runs[0].info.status == "FINISHED" and runs[0].data.params["train.num_processes"] == "2"
    pngs = sorted(p.name for p in (tmp_path / "samples" / "images").glob("*.png"))
    assert pngs == [f"{s:06d}.png" for s in range(10)]                     # both ranks' seeds, once each

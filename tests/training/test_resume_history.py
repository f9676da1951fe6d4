"""A run killed between checkpoints and resumed has the metric history of one that never stopped, point
for point, and the same weights (issue 15, part 3). The kill is real: SIGKILL or SIGTERM to a child
process training as `diffops train` does (tests/training/kill_after_step.py)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest
import torch
from safetensors.torch import load_file

from diffops.stages.train import run as train

from ..conftest import single_thread, tiny_config, write_prepared

pytestmark = pytest.mark.usefixtures("one_thread")

# 15 steps of 4 images, checkpoints every 5 steps, a log point every 3 (which does not divide 5, so the
# loss averaged at step 6 spans the checkpoint at step 5); ddpm's loss_weight adds per-sample stats.
CFG = {"train.duration_kimg": 0.06, "train.log_every_steps": 3, "method.name": "ddpm", "ddpm.loss_weight": "lambda",
       "tracking.log_checkpoints": "none"}
WALL_CLOCK = {"images_per_sec"}          # its values are timings; only its steps can match
ROOT = Path(__file__).parents[2]


def history(run_id: str) -> dict[str, list[tuple[int, float]]]:
    """Every metric's whole history as (step, value), in logging order."""
    client = mlflow.MlflowClient()
    keys = client.get_run(run_id).data.metrics
    return {k: [(m.step, None if k in WALL_CLOCK else m.value)
                for m in sorted(client.get_metric_history(run_id, k), key=lambda m: (m.step, m.timestamp))]
            for k in keys}


def run_id_of(out: Path) -> str:
    return json.loads((out / "model.json").read_text())["mlflow_run_id"]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, _mlflow_store):
    root = tmp_path_factory.mktemp("uninterrupted")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", _mlflow_store)
        mlflow.set_tracking_uri(_mlflow_store)
        data = write_prepared(root / "data")
        with single_thread():
            train(tiny_config(**CFG), data, root / "out", root / "state")
    return data, history(run_id_of(root / "out")), load_file(root / "out" / "ema.safetensors")


@pytest.mark.parametrize("signal, steps", [("SIGKILL", 5), ("SIGKILL", 8), ("SIGTERM", 11)])
def test_killed_and_resumed_run_has_the_uninterrupted_history(signal, steps, uninterrupted, tmp_path, mlflow_uri):
    data, expected_history, expected_ema = uninterrupted
    out, state = tmp_path / "out", tmp_path / "state"
    child = subprocess.run([sys.executable, "-m", "tests.training.kill_after_step", str(data), str(out), str(state),
                            signal, str(steps), json.dumps(CFG)], cwd=ROOT, capture_output=True, text=True,
                           env=os.environ | {"MLFLOW_TRACKING_URI": mlflow_uri, "OMP_NUM_THREADS": "1"}, timeout=300)
    assert child.returncode == (-9 if signal == "SIGKILL" else 1), child.stderr[-3000:]
    killed = json.loads((state / f"checkpoint-{steps // 5 * 20:09d}" / "state.json").read_text())["mlflow_run_id"]
    status = mlflow.MlflowClient().get_run(killed).info.status
    assert status == ("RUNNING" if signal == "SIGKILL" else "KILLED")
    assert max(s for s, _ in history(killed)["loss"]) == steps // 3 * 3    # logged past the last checkpoint

    train(tiny_config(**CFG), data, out, state)
    assert run_id_of(out) == killed
    assert mlflow.MlflowClient().get_run(killed).info.status == "FINISHED"
    assert history(killed) == expected_history
    ema = load_file(out / "ema.safetensors")
    assert ema.keys() == expected_ema.keys() and all(torch.equal(ema[k], expected_ema[k]) for k in ema)


def test_a_run_killed_before_its_first_checkpoint_ends_killed(uninterrupted, tmp_path, mlflow_uri):
    data, expected_history, _ = uninterrupted
    out, state = tmp_path / "out", tmp_path / "state"
    child = subprocess.run([sys.executable, "-m", "tests.training.kill_after_step", str(data), str(out), str(state),
                            "SIGKILL", "3", json.dumps(CFG)], cwd=ROOT, capture_output=True, text=True,
                           env=os.environ | {"MLFLOW_TRACKING_URI": mlflow_uri, "OMP_NUM_THREADS": "1"}, timeout=300)
    assert child.returncode == -9, child.stderr[-3000:]
    killed = json.loads((state / "run.json").read_text())["mlflow_run_id"]
    assert mlflow.MlflowClient().get_run(killed).info.status == "RUNNING"     # no checkpoint names it

    train(tiny_config(**CFG), data, out, state)                 # nothing to resume: a new run, the old one KILLED
    assert mlflow.MlflowClient().get_run(killed).info.status == "KILLED"
    assert run_id_of(out) != killed and history(run_id_of(out)) == expected_history

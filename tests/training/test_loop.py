"""The training loop resumes exactly and logs a truthful MLflow run."""
import json

import mlflow
import torch
from safetensors.torch import load_file

from diffops.training import checkpoint as ckpt
from diffops.stages.train import run as train

from ..conftest import tiny_config, write_prepared


def test_interrupted_run_resumes_exactly(tmp_path, mlflow_uri):
    data = write_prepared(tmp_path / "data")
    cfg = tiny_config()                                  # 10 steps of 4 images, checkpoints every 5

    train(cfg, data, tmp_path / "a_out", tmp_path / "a_state")
    # "Crash" after step 7: the checkpoint at step 5 survives, steps 6-7 are lost.
    train(cfg, data, tmp_path / "b_out", tmp_path / "b_state", stop_after_steps=7)
    assert [p.name for p in ckpt.list_checkpoints(tmp_path / "b_state")] == ["checkpoint-000000020"]
    assert not (tmp_path / "b_out").exists()             # no half-finished export
    train(cfg, data, tmp_path / "b_out", tmp_path / "b_state")

    a, b = (load_file(tmp_path / d / "ema.safetensors") for d in ("a_out", "b_out"))
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k

    # Both halves of the interrupted run went into one MLflow run, which ended FINISHED.
    run_a = json.loads((tmp_path / "a_out" / "model.json").read_text())["mlflow_run_id"]
    run_b = json.loads((tmp_path / "b_out" / "model.json").read_text())["mlflow_run_id"]
    client = mlflow.MlflowClient()
    assert run_a != run_b
    for run_id in (run_a, run_b):
        run = client.get_run(run_id)
        assert run.info.status == "FINISHED"
        assert run.data.params["train.lr"] == str(cfg.train.lr)
        assert "loss" in run.data.metrics and "images_per_sec" in run.data.metrics
    # Steps 6-7 ran twice (before the crash and after the resume), their metrics are stored once.
    assert sorted(m.step for m in client.get_metric_history(run_b, "loss")) == [2, 4, 6, 8, 10]
    arts = {a.path for a in client.list_artifacts(run_b, "checkpoints")}
    assert arts == {"checkpoints/checkpoint-000000040"}     # log_checkpoints: last


def test_changed_config_does_not_resume_stale_checkpoints(tmp_path, mlflow_uri):
    data = write_prepared(tmp_path / "data")
    train(tiny_config(), data, tmp_path / "out", tmp_path / "state", stop_after_steps=6)
    train(tiny_config(**{"train.lr": 1e-4}), data, tmp_path / "out", tmp_path / "state")
    names = [p.name for p in ckpt.list_checkpoints(tmp_path / "state")]
    assert names == ["checkpoint-000000020", "checkpoint-000000040"]
    state = json.loads((tmp_path / "state" / names[0] / "state.json").read_text())
    run = mlflow.MlflowClient().get_run(state["mlflow_run_id"])
    assert run.data.params["train.lr"] == "0.0001"

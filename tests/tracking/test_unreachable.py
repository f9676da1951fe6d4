"""A tracking server that does not answer is one line within seconds, before any compute; sample and
evaluate check the run recorded in model.json first, in the store it names."""
import json
import os
import shutil
import socket
import subprocess
import sys
import time

import mlflow
import pytest
import yaml

from diffops.stages import sample
from diffops.stages.train import run as train
from diffops.tracking.mlflow_run import use_experiment
from diffops.tracking.store import TrackingUnavailable

from ..conftest import tiny_config, write_prepared
from .test_secrets import TINY


@pytest.fixture
def closed_port():
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_closed_port_fails_within_seconds_in_one_line(closed_port):
    uri = f"http://alice:s3cret@127.0.0.1:{closed_port}"
    t0 = time.monotonic()
    with pytest.raises(TrackingUnavailable) as e:
        use_experiment("unreachable", uri=uri)
    assert time.monotonic() - t0 < 6
    message = e.value.format_message()
    assert "\n" not in message and "s3cret" not in message
    assert f"http://alice:***@127.0.0.1:{closed_port}" in message and "connection refused" in message
    assert "MLFLOW_TRACKING_URI" in message


def test_train_stage_fails_before_training(tmp_path, closed_port):
    """The command's whole output is one line; no checkpoint is written."""
    data = write_prepared(tmp_path / "data", counts=(16, 4, 4))
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(TINY))
    env = os.environ | {"MLFLOW_TRACKING_URI": f"http://127.0.0.1:{closed_port}", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "diffops.cli", "train", "--data", str(data), "--out", "model",
                           "--state", "state"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1
    assert proc.stderr.startswith("Error: MLflow tracking server") and proc.stderr.count("\n") == 1, proc.stderr
    assert not (tmp_path / "model").exists() and not list(tmp_path.glob("state/**/*.safetensors"))


@pytest.fixture
def trained(tmp_path, mlflow_uri):
    """A tiny model trained into the session's store; its model.json."""
    cfg = tiny_config(**{"train.duration_kimg": 0.02, "sample.num_images": 4, "tracking.log_checkpoints": "none"})
    train(cfg, write_prepared(tmp_path / "data", counts=(16, 4, 4)), tmp_path / "model", tmp_path / "state")
    return cfg, tmp_path / "model"


def test_sample_checks_the_recorded_run_before_sampling(trained, tmp_path, closed_port):
    cfg, model = trained
    spec = json.loads((model / "model.json").read_text())
    (model / "model.json").write_text(json.dumps(spec | {"mlflow_tracking_uri": f"http://127.0.0.1:{closed_port}"}))
    t0 = time.monotonic()
    with pytest.raises(TrackingUnavailable, match="does not answer"):
        sample.run(cfg, model, tmp_path / "samples")
    assert time.monotonic() - t0 < 6 and not (tmp_path / "samples").exists()

    (model / "model.json").write_text(json.dumps(spec | {"mlflow_run_id": "0" * 32}))
    with pytest.raises(TrackingUnavailable, match=f"run {'0' * 32} is not in"):
        sample.run(cfg, model, tmp_path / "samples")
    assert not (tmp_path / "samples").exists()


def test_sample_logs_into_the_store_model_json_names(trained, tmp_path, monkeypatch, mlflow_uri):
    """The current MLFLOW_TRACKING_URI is another store: the grid still goes into the training run."""
    cfg, model = trained
    run_id = json.loads((model / "model.json").read_text())["mlflow_run_id"]
    other = tmp_path / "other.db"
    shutil.copy(mlflow_uri[len("sqlite:///"):], other)          # a migrated store, without later runs
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{other}")
    mlflow.MlflowClient(f"sqlite:///{other}").delete_run(run_id)  # (the copy may hold it, deleted)
    sample.run(cfg, model, tmp_path / "samples")
    artifacts = [a.path for a in mlflow.MlflowClient(mlflow_uri).list_artifacts(run_id, "samples")]
    assert artifacts == ["samples/grid.png"]

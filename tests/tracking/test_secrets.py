"""Credentials never reach params, tags, model.json, artifacts or stdout; the real URI still connects."""
import json
import os
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest
import yaml

from diffops.utils.redact import redact

from ..conftest import write_prepared

SECRET = "s3cr3t-Pa55"
TINY = {
    "data": {"resolution": 8, "crop": 8},
    "model": {"block_channels": [8, 8], "attention": [False, False], "norm_num_groups": 4},
    "train": {"duration_kimg": 0.016, "batch_size": 4, "checkpoint_every_kimg": 0.016, "grid_every_kimg": 1.0,
              "log_every_steps": 2, "num_workers": 0, "lr_rampup_kimg": 0.01},
    "sample": {"steps": 2, "num_images": 4, "batch_size": 4},
    "tracking": {"experiment": "secrets", "system_metrics": False, "log_checkpoints": "none"},
    "sweep": {"storage": f"postgresql://optuna:{SECRET}@db.example.org:5432/optuna?sslmode=require"},
}


@pytest.mark.parametrize("uri, shown", [
    ("postgresql://u:secret@host:5432/db", "postgresql://u:***@host:5432/db"),
    ("http://alice:p@ss@127.0.0.1:5000", "http://alice:***@127.0.0.1:5000"),
    ("mysql://u@h/d?password=pw&charset=utf8", "mysql://u@h/d?password=***&charset=utf8"),
    ("https://b.s3/x?X-Amz-Signature=abc&X-Amz-Security-Token=def", "https://b.s3/x?X-Amz-Signature=***&X-Amz-Security-Token=***"),
    ("sqlite:////tmp/mlflow.db", "sqlite:////tmp/mlflow.db"),
    ("study in postgresql://u:pw@h/db failed", "study in postgresql://u:***@h/db failed"),
])
def test_redact(uri, shown):
    assert redact(uri) == shown


def diffops(*args, cwd: Path, env: dict) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "diffops.cli", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def assert_no_secret_in_run(client: mlflow.MlflowClient, run_id: str, tmp: Path) -> None:
    run = client.get_run(run_id)
    assert not [k for k, v in run.data.params.items() if SECRET in v]
    assert not [k for k, v in run.data.tags.items() if SECRET in v]
    assert run.data.params["sweep.storage"] == "postgresql://optuna:***@db.example.org:5432/optuna?sslmode=require"
    files = [p for p in Path(client.download_artifacts(run_id, "", str(tmp))).rglob("*") if p.is_file()]
    assert any(p.name == "params.json" for p in files) and any(p.name == "grid.png" for p in files)
    assert not [p for p in files if SECRET.encode() in p.read_bytes()]


def test_no_password_with_a_postgresql_backend(tmp_path, postgres_db):
    """MLFLOW_TRACKING_URI with a password (an MLflow SQL store on PostgreSQL), sweep.storage with another:
    train and sample leave neither in params, tags, model.json, artifacts or output."""
    host, database = postgres_db.split("@", 1)
    uri = f"{host}:{SECRET}@{database}"                 # trust auth: the password is carried, not checked
    data = write_prepared(tmp_path / "data", counts=(16, 4, 4))
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(TINY))
    env = os.environ | {"MLFLOW_TRACKING_URI": uri, "OMP_NUM_THREADS": "1"}
    out = [diffops("train", "--data", str(data), "--out", "model", "--state", "state", cwd=tmp_path, env=env),
           diffops("sample", "--model", "model", "--out", "samples", cwd=tmp_path, env=env)]
    assert not [p.stdout + p.stderr for p in out if SECRET in p.stdout + p.stderr]

    text = (tmp_path / "model" / "model.json").read_text()
    assert SECRET not in text and json.loads(text)["mlflow_tracking_uri"] == redact(uri)
    assert_no_secret_in_run(mlflow.MlflowClient(uri), json.loads(text)["mlflow_run_id"], tmp_path / "artifacts")


@pytest.mark.parametrize("command", ["ui", "dashboard"])
def test_ui_and_dashboard_print_no_password(tmp_path, command):
    """Their first line names the store; the process they exec into is stopped right after it."""
    import signal
    uri = f"postgresql://postgres:{SECRET}@127.0.0.1:5432/nowhere"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"sweep": {"storage": uri}}))
    proc = subprocess.Popen([sys.executable, "-m", "diffops.cli", command, "--port", "1"], cwd=tmp_path,
                            env=os.environ | {"MLFLOW_TRACKING_URI": uri}, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        line = proc.stdout.readline()
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    assert redact(uri) in line and SECRET not in line, line

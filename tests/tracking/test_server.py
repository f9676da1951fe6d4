"""A real MLflow tracking server: `mlflow server` on 127.0.0.1 with a PostgreSQL backend store (a fresh
database) and a local artifact root, started here. A tiny `diffops train` + `diffops sample` and a tiny
`diffops sweep` log to it over HTTP, with credentials in MLFLOW_TRACKING_URI; its REST API returns the
runs with their params, metrics and artifacts, and no password anywhere."""
import json
import os
import signal
import subprocess
import sys
import time
import uuid

import pytest
import requests
import yaml

from ..conftest import write_prepared
from ..helpers.postgres import free_port
from ..sweeps.conftest import tiny_params, write_featurenet
from .test_secrets import SECRET, TINY


@pytest.fixture(scope="module")
def mlflow_server(postgres_server, tmp_path_factory):
    """The server's base URL (without credentials); stopped and its database dropped after the module."""
    name = f"diffops_mlflow_{uuid.uuid4().hex[:12]}"
    postgres_server.execute(f'CREATE DATABASE "{name}"')
    root, port = tmp_path_factory.mktemp("mlflow-server"), free_port()
    log = open(root / "server.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "mlflow", "server", "--backend-store-uri", postgres_server.url(name),
                             "--artifacts-destination", str(root / "artifacts"), "--host", "127.0.0.1",
                             "--port", str(port), "--workers", "1"],
                            stdout=log, stderr=subprocess.STDOUT, cwd=root, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    t0 = time.monotonic()
    try:
        while not answers(url):
            assert proc.poll() is None, (root / "server.log").read_text()[-3000:]
            assert time.monotonic() - t0 < 180, "mlflow server did not start in 180 s"
            time.sleep(0.5)
        print(f"mlflow server with a PostgreSQL store up in {time.monotonic() - t0:.1f} s")
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGKILL)        # the store is dropped next: nothing to shut down cleanly
        proc.wait(timeout=60)
        postgres_server.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def answers(url: str) -> bool:
    try:
        return requests.get(f"{url}/health", timeout=2).ok
    except requests.ConnectionError:
        return False


def rest(url: str, endpoint: str, **params) -> dict:
    response = requests.get(f"{url}/api/2.0/mlflow/{endpoint}", params=params, timeout=30)
    response.raise_for_status()
    return response.json()


def run_of(url: str, run_id: str) -> tuple[dict, dict, dict, dict]:
    """(info, params, metrics, tags) of a run, as the REST API returns it."""
    run = rest(url, "runs/get", run_id=run_id)["run"]
    data = run["data"]
    return (run["info"], {p["key"]: p["value"] for p in data.get("params", [])},
            {m["key"]: m["value"] for m in data.get("metrics", [])}, {t["key"]: t["value"] for t in data.get("tags", [])})


def diffops(*args, cwd, env) -> str:
    proc = subprocess.run([sys.executable, "-m", "diffops.cli", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout + proc.stderr


def with_credentials(url: str) -> str:
    return url.replace("http://", f"http://alice:{SECRET}@")


def test_train_and_sample_log_to_the_server(mlflow_server, tmp_path):
    data = write_prepared(tmp_path / "data", counts=(16, 4, 4))
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(TINY))
    env = os.environ | {"MLFLOW_TRACKING_URI": with_credentials(mlflow_server), "OMP_NUM_THREADS": "1"}
    output = diffops("train", "--data", str(data), "--out", "model", "--state", "state", cwd=tmp_path, env=env)
    output += diffops("sample", "--model", "model", "--out", "samples", cwd=tmp_path, env=env)
    assert f"View run train-edm at: {mlflow_server}/#/experiments/" in output     # MLflow's own line, clean
    assert SECRET not in output

    spec = json.loads((tmp_path / "model" / "model.json").read_text())
    assert spec["mlflow_tracking_uri"] == mlflow_server
    info, params, metrics, tags = run_of(mlflow_server, spec["mlflow_run_id"])
    assert info["status"] == "FINISHED" and tags["diffops.stage"] == "train"
    assert params["train.batch_size"] == "4" and params["sweep.storage"].startswith("postgresql://optuna:***@")
    assert metrics["loss"] > 0 and metrics["kimg"] == pytest.approx(0.016)
    assert SECRET not in json.dumps([params, tags])
    files = {f["path"] for f in rest(mlflow_server, "artifacts/list", run_id=info["run_id"], path="samples")["files"]}
    assert files == {"samples/grid.png"}                     # sample's grid, into the training run


def test_sweep_logs_to_the_server(mlflow_server, tmp_path):
    data, featurenet = write_prepared(tmp_path / "data", counts=(64, 16, 16)), write_featurenet(tmp_path / "featurenet")
    raw = tiny_params(tmp_path / "optuna.journal", n_trials=1)
    raw["tracking"]["experiment"] = "sweep-on-server"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    env = os.environ | {"MLFLOW_TRACKING_URI": with_credentials(mlflow_server), "OMP_NUM_THREADS": "1"}
    output = diffops("sweep", "--data", str(data), "--featurenet", str(featurenet), "--out", "out", cwd=tmp_path, env=env)
    assert SECRET not in output

    exp = rest(mlflow_server, "experiments/get-by-name", experiment_name="sweep-on-server")["experiment"]
    runs = requests.post(f"{mlflow_server}/api/2.0/mlflow/runs/search", json={"experiment_ids": [exp["experiment_id"]]},
                         timeout=30).json()["runs"]
    by_stage = {}
    for r in runs:
        stage = next(t["value"] for t in r["data"]["tags"] if t["key"] == "diffops.stage")
        by_stage.setdefault(stage, []).append(r["info"]["run_id"])
    assert sorted(by_stage) == ["sweep", "sweep-trial"] and len(by_stage["sweep-trial"]) == 1
    parent, sweep_params, parent_metrics, _ = run_of(mlflow_server, by_stage["sweep"][0])
    assert parent["status"] == "FINISHED" and parent_metrics["trials_complete"] + parent_metrics["trials_pruned"] == 1
    trial, trial_params, trial_metrics, trial_tags = run_of(mlflow_server, by_stage["sweep-trial"][0])
    assert trial["status"] in ("FINISHED", "KILLED") and trial_tags["mlflow.parentRunId"] == parent["run_id"]
    assert {"train.lr", "edm.P_mean"} <= set(trial_params) and "fd_attrnet_intermediate" in trial_metrics
    assert sweep_params["sweep.n_trials"] == "1"

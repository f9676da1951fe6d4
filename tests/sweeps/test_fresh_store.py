"""README's `diffops sweep & diffops sweep & wait` on a new MLFLOW_TRACKING_URI: two workers started at
the same moment on a fresh sqlite MLflow store and a fresh Optuna journal (in a folder not made yet) both
run; the store's tables are created once (MLflow's schema creation races: "table experiments already
exists")."""
import os
import subprocess
import sys
import time

import mlflow
import optuna

from diffops.sweeps import storage as st

from .conftest import SweepEnv


def test_two_workers_start_together_on_a_fresh_store(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'fresh' / 'mlflow.db'}"
    (tmp_path / "fresh").mkdir()
    env_ = SweepEnv(tmp_path, uri)
    env_.storage = tmp_path / "sweeps" / "optuna.journal"          # its folder is made by the workers
    params = env_.write_params(n_trials=2)
    env = os.environ | {"MLFLOW_TRACKING_URI": uri, "OMP_NUM_THREADS": "1", "MLFLOW_ENABLE_ASYNC_LOGGING": "false"}
    cmd = [sys.executable, "-m", "diffops.cli", "sweep", "--params", str(params), "--data", str(env_.data),
           "--featurenet", str(env_.featurenet), "--out", str(env_.out), "--n-trials", "1"]
    t0 = time.monotonic()
    workers = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                                cwd=tmp_path) for _ in range(2)]
    outputs = [w.communicate(timeout=900)[0] for w in workers]
    print(f"two workers: {time.monotonic() - t0:.1f} s")
    for w, out in zip(workers, outputs):
        assert w.returncode == 0, out[-3000:]
    assert sum("(created)" in out for out in outputs) == 1, outputs

    study = optuna.load_study(study_name="tiny", storage=st.make_storage(str(env_.storage)))
    assert [t.number for t in study.trials] == [0, 1]
    assert all(t.state.name in ("COMPLETE", "PRUNED") for t in study.trials)
    client = mlflow.MlflowClient(uri)
    exp = client.get_experiment_by_name("sweep-test").experiment_id
    assert len(client.search_runs([exp], "tags.`diffops.stage` = 'sweep'")) == 1
    assert len(client.search_runs([exp], "tags.`diffops.stage` = 'sweep-trial'")) == 2

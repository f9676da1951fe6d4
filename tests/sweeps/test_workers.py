"""Several worker processes on one JournalStorage file: a worker killed mid-trial leaves its trial
RUNNING; the next workers fail it and run its params again; no trial is lost or run twice."""
import os
import signal
import socket
import subprocess
import sys
from collections import Counter

import mlflow
import optuna
import psutil
from ruamel.yaml import YAML

from diffops.config import apply_overrides, load_params
from diffops.sweeps import storage as st
from diffops.sweeps.space import parse_space
from diffops.sweeps.study import open_study
from diffops.tracking.optuna_mlflow import OptunaMlflow


def start_trial_of_killed_worker(params):
    """A trial started as Objective.__call__ starts one, by a worker process that is then SIGKILLed.

    The worker is a real process (`sleep`), killed for real; its identity (host, pid, start time) is what
    the trial records (claim_trial records the current process's), so the trial is one a SIGKILLed
    worker left RUNNING. Cheaper than a third Python worker process importing torch.
    """
    cfg = load_params(params)
    base = load_params(apply_overrides(YAML(typ="safe").load(params.read_text()), cfg.sweep.budget))
    study, created, _ = open_study(cfg.sweep.study, st.make_storage(cfg.sweep.storage), cfg.sweep, base)
    tracker = OptunaMlflow(base.tracking.experiment, cfg.sweep.metric)
    tracker.attach(study, created)
    worker = subprocess.Popen(["sleep", "600"])
    trial = study.ask()
    trial.set_user_attr(st.WORKER, f"{socket.gethostname()}:{worker.pid}:{psutil.Process(worker.pid).create_time():.3f}")
    tracker.start_trial(trial)
    for p in parse_space(cfg.sweep):
        p.suggest(trial)
    worker.send_signal(signal.SIGKILL)
    worker.wait(timeout=30)
    return trial.number


def test_killed_worker_then_two_workers(sweep_env):
    params = sweep_env.write_params(n_trials=4)
    env = os.environ | {"MLFLOW_TRACKING_URI": sweep_env.mlflow_uri, "OMP_NUM_THREADS": "1",
                        "MLFLOW_ENABLE_ASYNC_LOGGING": "false"}
    assert start_trial_of_killed_worker(params) == 0

    storage = st.make_storage(str(sweep_env.storage))
    study = optuna.load_study(study_name="tiny", storage=storage)
    assert study.trials[0].state.name == "RUNNING"          # no heartbeat in a journal: a zombie trial

    cmd = [sys.executable, "-m", "diffops.cli", "sweep", "--params", str(params), "--data", str(sweep_env.data),
           "--featurenet", str(sweep_env.featurenet), "--out", str(sweep_env.out)]
    workers = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                                cwd=sweep_env.root) for _ in range(2)]
    outputs = [w.communicate(timeout=1500)[0] for w in workers]
    for w, out in zip(workers, outputs):
        assert w.returncode == 0, out[-3000:]
    assert sum("left RUNNING by a dead worker" in out for out in outputs) == 1, outputs

    study = optuna.load_study(study_name="tiny", storage=storage)
    trials = study.trials
    numbers = [t.number for t in trials]
    assert numbers == list(range(len(trials)))                 # unique, none lost
    zombie, rest = trials[0], trials[1:]
    assert zombie.state.name == "FAIL" and zombie.user_attrs[st.RETRIED]
    retries = [t for t in rest if t.user_attrs.get(st.RETRY_OF) == 0]
    assert len(retries) == 1 and retries[0].params == zombie.params          # retried once, same params
    assert all(t.state.name in ("COMPLETE", "PRUNED") for t in rest), [t.state for t in rest]
    assert 4 <= st.spent(study) <= 5                         # the cap; two workers may overshoot by one
    # Which worker runs which trial depends on start-up timing (one may finish before the other has
    # imported torch on a loaded machine), so only the absence of lost or duplicated trials is asserted.

    # MLflow: one parent run; exactly one nested run per trial, with the trial's terminal status.
    client = mlflow.MlflowClient(sweep_env.mlflow_uri)
    exp = client.get_experiment_by_name("sweep-test").experiment_id
    parents = client.search_runs([exp], "tags.`diffops.stage` = 'sweep'")
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    runs = client.search_runs([exp], "tags.`diffops.stage` = 'sweep-trial'")
    assert Counter(int(r.data.tags["optuna.trial_number"]) for r in runs) == Counter(numbers)
    status = {"COMPLETE": "FINISHED", "PRUNED": "KILLED", "FAIL": "FAILED"}
    for r in runs:
        t = trials[int(r.data.tags["optuna.trial_number"])]
        assert r.data.tags["mlflow.parentRunId"] == parents[0].info.run_id
        assert (r.info.status, r.data.tags["optuna.trial_state"]) == (status[t.state.name], t.state.name)
    zombie_run = next(r for r in runs if r.data.tags["optuna.trial_number"] == "0")
    assert "died while running it" in zombie_run.data.tags["diffops.fail_reason"]

"""Sweeps on PostgreSQL (Optuna RDB storage): workers on one study, a worker SIGKILLed mid-trial and
restarted, and the heartbeat that fails the trials of workers on other machines. No trial is lost or
run twice; the dead trial is FAIL, retried once with its params, and its MLflow run is not left RUNNING."""
import os
import signal
import subprocess
import sys
import time
from collections import Counter

import mlflow
import optuna
import pytest
from ruamel.yaml import YAML

from diffops.config import apply_overrides, load_params
from diffops.sweeps import storage as st
from diffops.sweeps.space import parse_space
from diffops.sweeps.study import open_study
from diffops.tracking.optuna_mlflow import OptunaMlflow

STATUS = {"COMPLETE": "FINISHED", "PRUNED": "KILLED", "FAIL": "FAILED"}


def trial_runs(uri: str) -> tuple[list, list]:
    client = mlflow.MlflowClient(uri)
    exp = client.get_experiment_by_name("sweep-test").experiment_id
    return (client.search_runs([exp], "tags.`diffops.stage` = 'sweep'"),
            client.search_runs([exp], "tags.`diffops.stage` = 'sweep-trial'"))


def assert_one_retry_of(trials, dead: int) -> None:
    """The dead trial is FAIL and retried exactly once, with its params, through Optuna's retry callback."""
    assert trials[dead].state.name == "FAIL"
    retries = [t for t in trials if t.user_attrs.get(st.RETRY_OF) == dead]
    assert len(retries) == 1 and retries[0].params == trials[dead].params
    assert optuna.storages.RetryHeartbeatStaleTrialCallback.retried_trial_number(retries[0]) == dead
    assert st.WORKER not in retries[0].user_attrs or retries[0].user_attrs[st.WORKER] != trials[dead].user_attrs[st.WORKER]


def test_heartbeat_fails_a_trial_whose_worker_fell_silent(sweep_env, postgres_db):
    """A worker on another host (its pid cannot be checked here) stops beating: the next trial start of any
    worker fails its trial after the grace period, enqueues its params again and ends its run FAILED."""
    sweep_env.storage = postgres_db
    params = sweep_env.write_params()
    cfg = load_params(params)
    base = load_params(apply_overrides(YAML(typ="safe").load(params.read_text()), cfg.sweep.budget))
    tracker = OptunaMlflow(base.tracking.experiment, cfg.sweep.metric)
    storage = st.make_storage(postgres_db, on_stale=lambda t, reason: tracker.end_trial(t, reason=reason),
                              heartbeat_interval=1, grace_period=2)
    study, created, _ = open_study(cfg.sweep.study, storage, cfg.sweep, base)
    tracker.attach(study, created)
    trial = study.ask()
    trial.set_user_attr(st.WORKER, "another-host:4242:1.000")
    tracker.start_trial(trial)
    for p in parse_space(cfg.sweep):
        p.suggest(trial)
    storage.record_heartbeat(trial._trial_id)
    assert st.fail_stale_trials(study) == []              # not this host's process: only the heartbeat can tell
    time.sleep(3)
    optuna.storages.fail_stale_trials(study)              # what study.optimize runs at each trial start

    trials = study.get_trials()
    assert [t.state.name for t in trials] == ["FAIL", "WAITING"]
    assert_one_retry_of(trials, 0)
    _, runs = trial_runs(sweep_env.mlflow_uri)
    assert [(r.info.status, r.data.tags["optuna.trial_state"]) for r in runs] == [("FAILED", "FAIL")]
    assert "no heartbeat for 2 s" in runs[0].data.tags["diffops.fail_reason"]


def wait_for(predicate, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if (value := predicate()):
            return value
        time.sleep(0.5)
    pytest.fail(f"timed out after {timeout_s:g} s waiting for {what}")


def test_worker_killed_mid_trial_and_restarted(sweep_env, postgres_db, tmp_path):
    sweep_env.storage = postgres_db
    params = sweep_env.write_params(n_trials=5)
    env = os.environ | {"MLFLOW_TRACKING_URI": sweep_env.mlflow_uri, "OMP_NUM_THREADS": "1",
                        "MLFLOW_ENABLE_ASYNC_LOGGING": "false"}
    cmd = [sys.executable, "-m", "diffops.cli", "sweep", "--params", str(params), "--data", str(sweep_env.data),
           "--featurenet", str(sweep_env.featurenet), "--out", str(sweep_env.out)]

    def start(name):
        log = open(tmp_path / f"{name}.log", "w")
        return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=sweep_env.root), log
    (a, a_log), (b, b_log) = start("a"), start("b")         # together, on a fresh database

    storage = st.make_storage(postgres_db)                   # (this process: no heartbeat of its own)

    def trial_of_a():
        try:
            study = optuna.load_study(study_name="tiny", storage=storage)
        except KeyError:                                     # not created yet
            return None
        return next((t.number for t in study.get_trials(states=(optuna.trial.TrialState.RUNNING,))
                     if t.user_attrs.get(st.WORKER, "").split(":")[1:2] == [str(a.pid)]), None)
    killed = wait_for(lambda: trial_of_a(), 600, "worker a to start a trial")
    a.send_signal(signal.SIGKILL)
    a.wait(timeout=30)
    restarted, r_log = start("restarted")
    for w in (b, restarted):
        assert w.wait(timeout=1500) == 0, (tmp_path / "b.log").read_text()[-3000:] + r_log.name
    outputs = {n: (tmp_path / f"{n}.log").read_text() for n in ("b", "restarted")}
    assert "left RUNNING by a dead worker" in outputs["restarted"], outputs["restarted"][-3000:]

    study = optuna.load_study(study_name="tiny", storage=storage)
    trials = study.trials
    numbers = [t.number for t in trials]
    assert numbers == list(range(len(trials)))               # unique, none lost
    assert_one_retry_of(trials, killed)
    rest = [t for t in trials if t.number != killed]
    assert all(t.state.name in ("COMPLETE", "PRUNED") for t in rest), [t.state for t in rest]
    assert 5 <= st.spent(study) <= 6                          # the cap; two workers may overshoot by one

    parents, runs = trial_runs(sweep_env.mlflow_uri)
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert Counter(int(r.data.tags["optuna.trial_number"]) for r in runs) == Counter(numbers)
    for r in runs:
        t = trials[int(r.data.tags["optuna.trial_number"])]
        assert (r.info.status, r.data.tags["optuna.trial_state"]) == (STATUS[t.state.name], t.state.name)
    dead_run = next(r for r in runs if r.data.tags["optuna.trial_number"] == str(killed))
    assert "died while running it" in dead_run.data.tags["diffops.fail_reason"]

"""The Optuna -> MLflow callback: a parent run per study, a nested run per trial opened at its start,
every intermediate value with its step, and a truthful status for complete, pruned and failed trials."""
import math

import mlflow
import optuna
import pytest

from diffops.tracking.optuna_mlflow import PARENT_RUN, TRIAL_RUN, OptunaMlflow


def objective_for(tracker, client):
    def objective(trial):
        run_id = tracker.start_trial(trial)
        # The run exists and is RUNNING while the trial runs (not created after it ended).
        assert client.get_run(run_id).info.status == "RUNNING"
        x = trial.suggest_float("train.lr", 1e-4, 1e-2, log=True)
        tracker.log_params(trial, {"train.lr": x})
        kind = ["complete", "pruned", "raises", "nan", "complete"][trial.number]
        for step in (10, 20, 30):
            tracker.report(trial, 100.0 / step + trial.number, step)
            if kind == "pruned" and step == 20:
                raise optuna.TrialPruned()
        if kind == "raises":
            raise RuntimeError("diverged")
        return math.nan if kind == "nan" else 1.0 + trial.number
    return objective


def test_parent_and_nested_runs_with_truthful_status(tmp_path, mlflow_uri):
    study = optuna.create_study(study_name="cb", sampler=optuna.samplers.RandomSampler(seed=0))
    tracker = OptunaMlflow("cb-test", "fd_attrnet", root=tmp_path)
    parent = tracker.attach(study, True, params={"sweep.n_trials": 5}, tags={"optuna.version": optuna.__version__})
    client = mlflow.MlflowClient()
    study.optimize(objective_for(tracker, client), n_trials=5, callbacks=[tracker], catch=(Exception,))
    tracker.end_study(study, "FINISHED", metrics={"best_fd_attrnet": study.best_value})

    assert study.user_attrs[PARENT_RUN] == parent
    runs = {r.data.tags["optuna.trial_number"]: r for r in client.search_runs(
        [client.get_experiment_by_name("cb-test").experiment_id], "tags.`diffops.stage` = 'sweep-trial'")}
    assert sorted(runs) == ["0", "1", "2", "3", "4"]
    for number, run in runs.items():
        assert run.data.tags["mlflow.parentRunId"] == parent
        assert run.data.params["train.lr"] == str(study.trials[int(number)].params["train.lr"])
        assert study.trials[int(number)].user_attrs[TRIAL_RUN] == run.info.run_id
    expected = {"0": ("FINISHED", "COMPLETE"), "1": ("KILLED", "PRUNED"), "2": ("FAILED", "FAIL"),
                "3": ("FAILED", "FAIL"), "4": ("FINISHED", "COMPLETE")}
    assert {n: (r.info.status, r.data.tags["optuna.trial_state"]) for n, r in runs.items()} == expected

    # Every intermediate value with its step; the final value only for complete trials.
    history = lambda n: [(m.step, m.value) for m in client.get_metric_history(runs[n].info.run_id, "fd_attrnet_intermediate")]
    assert history("0") == [(10, 10.0), (20, 5.0), (30, 100 / 30)]
    assert history("1") == [(10, 11.0), (20, 6.0)]
    assert runs["0"].data.metrics["fd_attrnet"] == 1.0 and runs["4"].data.metrics["fd_attrnet"] == 5.0
    assert "fd_attrnet" not in runs["1"].data.metrics and "fd_attrnet" not in runs["3"].data.metrics

    # A second worker joining the study nests under the same parent run.
    assert OptunaMlflow("cb-test", "fd_attrnet", root=tmp_path).attach(study, False, wait_s=1) == parent
    assert len(client.search_runs([runs["0"].info.experiment_id], "tags.`diffops.stage` = 'sweep'")) == 1
    tracker.end_study(study, "FINISHED")
    parent_run = client.get_run(parent)
    assert parent_run.info.status == "FINISHED"
    assert parent_run.data.params["sweep.n_trials"] == "5"
    assert parent_run.data.tags["optuna.version"] == optuna.__version__
    assert parent_run.data.metrics["best_fd_attrnet"] == 1.0
    assert parent_run.data.metrics["trials_complete"] == 2 and parent_run.data.metrics["trials_fail"] == 2


"""Optuna -> MLflow: one parent run per study, one nested run per trial, opened when the trial starts.

optuna-integration's MLflowCallback (deprecated in 4.9) opens a trial's run only after the trial has
ended, creates no parent run, logs no intermediate values, and marks failed and pruned trials FINISHED.
Here:
  - the parent run is created once per study, by the worker that created the study; its id is kept in
    the study's user attrs (PARENT_RUN), so every worker of the study nests its trials under it;
  - `start_trial(trial)` creates the trial's run (tag mlflow.parentRunId) at the start of the objective
    and keeps its id in the trial's user attrs (TRIAL_RUN), so code inside the objective (the training
    loop, evaluation) logs into it;
  - `report(trial, value, step)` is trial.report plus the same value as an MLflow metric at that step;
  - called as an optimize() callback, it gives the run its terminal status from the trial's state:
        COMPLETE -> FINISHED, with the objective value as the metric
        PRUNED   -> KILLED, tag optuna.trial_state=PRUNED
        FAIL     -> FAILED, tag diffops.fail_reason
    and logs any intermediate value the objective reported without `report`.
All calls go through MlflowClient with explicit run ids, so they never touch the fluent active run
that the code inside the objective may have open.
"""
from __future__ import annotations

import math
import time
from pathlib import Path

import mlflow
import optuna
from mlflow.entities import Metric, Param, RunTag
from optuna.trial import TrialState

from ..utils.redact import redact
from .mlflow_run import git_lineage, project_root, use_experiment

PARENT_RUN = "mlflow.parent_run_id"     # study user attr
TRIAL_RUN = "mlflow.run_id"             # trial user attr
STATUS = {TrialState.COMPLETE: "FINISHED", TrialState.PRUNED: "KILLED", TrialState.FAIL: "FAILED"}


def _params(values: dict) -> list[Param]:
    return [Param(k, redact(str(v))[:6000]) for k, v in values.items()]


def _tags(values: dict) -> dict[str, str]:
    return {k: redact(str(v))[:5000] for k, v in values.items()}


def _batches(items: list, n: int = 100):
    for i in range(0, len(items), n):
        yield items[i:i + n]


class OptunaMlflow:
    """The MLflow side of a study: `attach` once per worker, then `start_trial`/`report` inside the
    objective and the object itself as an optimize() callback."""

    def __init__(self, experiment: str, metric: str, *, intermediate_metric: str | None = None,
                 root: Path | None = None):
        self.experiment, self.metric = experiment, metric
        self.intermediate_metric = intermediate_metric or f"{metric}_intermediate"
        self.root = root or project_root()
        self.client: mlflow.MlflowClient | None = None
        self.experiment_id = self.parent_run_id = None

    # ------------------------------------------------------------------------
    # The study's parent run.

    def attach(self, study: optuna.Study, created: bool, *, params: dict | None = None,
               tags: dict | None = None, wait_s: float = 120.0) -> str:
        """Create the parent run (created=True: this worker created the study) or find it, and mark it RUNNING."""
        self.experiment_id = use_experiment(self.experiment, self.root)
        self.client = mlflow.MlflowClient()
        run_id = None
        if not created:             # the creating worker sets the attr right after creating the study
            deadline = time.monotonic() + wait_s
            while (run_id := study.user_attrs.get(PARENT_RUN)) is None and time.monotonic() < deadline:
                time.sleep(0.5)
        if run_id is None:          # we created the study, or its creator died before making the run
            run = self.client.create_run(self.experiment_id, run_name=f"study-{study.study_name}", tags={
                **git_lineage(self.root), "diffops.stage": "sweep", "optuna.study_name": study.study_name,
                **_tags(tags or {})})
            run_id = run.info.run_id
            for batch in _batches(_params(params or {})):
                self.client.log_batch(run_id, params=batch)
            study.set_user_attr(PARENT_RUN, run_id)
        else:
            self.client.update_run(run_id, status="RUNNING")
        self.parent_run_id = run_id
        return run_id

    def end_study(self, study: optuna.Study, status: str, *, metrics: dict | None = None,
                  artifacts: dict[str, Path] | None = None) -> None:
        """Log the study's summary into the parent run and set its status (see worker.py for which)."""
        ts = int(time.time() * 1000)
        counts = {s: 0 for s in ("COMPLETE", "PRUNED", "FAIL", "RUNNING", "WAITING")}
        for t in study.get_trials(deepcopy=False):
            counts[t.state.name] = counts.get(t.state.name, 0) + 1
        step = counts["COMPLETE"] + counts["PRUNED"] + counts["FAIL"]
        values = {f"trials_{k.lower()}": v for k, v in counts.items()} | (metrics or {})
        self.client.log_batch(self.parent_run_id, metrics=[Metric(k, float(v), ts, step) for k, v in values.items()
                                                            if v is not None and math.isfinite(float(v))])
        for artifact_path, path in (artifacts or {}).items():
            if Path(path).is_dir():
                self.client.log_artifacts(self.parent_run_id, str(path), artifact_path)
            elif Path(path).exists():
                self.client.log_artifact(self.parent_run_id, str(path), artifact_path or None)
        if status == "RUNNING":        # other workers still run trials of the study; the last one ends it
            self.client.update_run(self.parent_run_id, status="RUNNING")
        else:
            self.client.set_terminated(self.parent_run_id, status)

    # ------------------------------------------------------------------------
    # Trial runs.

    def start_trial(self, trial: optuna.Trial, tags: dict | None = None) -> str:
        """Create the trial's nested run now, at the start of the trial; its id goes into the trial's user attrs."""
        retry_of = trial.user_attrs.get("diffops.retry_of")
        run = self.client.create_run(self.experiment_id, run_name=f"trial-{trial.number}", tags={
            **git_lineage(self.root), "mlflow.parentRunId": self.parent_run_id, "diffops.stage": "sweep-trial",
            "optuna.study_name": trial.study.study_name, "optuna.trial_number": str(trial.number),
            "optuna.trial_state": "RUNNING",
            **({"optuna.retry_of": str(retry_of)} if retry_of is not None else {}),
            **_tags(tags or {})})
        trial.set_user_attr(TRIAL_RUN, run.info.run_id)
        self.client.update_run(self.parent_run_id, status="RUNNING")   # another worker may have ended it
        return run.info.run_id

    def log_params(self, trial: optuna.Trial, params: dict) -> None:
        for batch in _batches(_params(params)):
            self.client.log_batch(trial.user_attrs[TRIAL_RUN], params=batch)

    def report(self, trial: optuna.Trial, value: float, step: int) -> None:
        """trial.report, and the value as the run's intermediate metric at the same step."""
        trial.report(value, step)
        if math.isfinite(value):
            self.client.log_metric(trial.user_attrs[TRIAL_RUN], self.intermediate_metric, value, step=step)

    def end_trial(self, trial: optuna.trial.FrozenTrial, status: str | None = None, reason: str | None = None) -> None:
        """Terminal status of the trial's run, from its Optuna state (or `status` when the trial did not end
        through optimize, e.g. interrupted)."""
        run_id = trial.user_attrs.get(TRIAL_RUN)
        if run_id is None or self.client is None:
            return
        run = self.client.get_run(run_id)
        ts = int(time.time() * 1000)
        metrics = []
        logged = {m.step for m in self.client.get_metric_history(run_id, self.intermediate_metric)}
        metrics += [Metric(self.intermediate_metric, float(v), ts, int(step))
                    for step, v in sorted(trial.intermediate_values.items())
                    if step not in logged and math.isfinite(v)]
        if trial.state == TrialState.COMPLETE and trial.value is not None and math.isfinite(trial.value) \
                and run.data.metrics.get(self.metric) != trial.value:
            metrics.append(Metric(self.metric, float(trial.value), ts, 0))
        state = trial.state.name if trial.state.is_finished() else "FAIL"   # still RUNNING: Optuna fails it next
        tags = {"optuna.trial_state": state}
        reason = reason or trial.user_attrs.get("diffops.fail_reason")
        if trial.state == TrialState.FAIL and reason is None and trial.values is None:
            reason = "the objective returned NaN or no value"
        if reason and trial.state != TrialState.COMPLETE:
            tags["diffops.fail_reason"] = str(reason)
        tags = _tags(tags | {f"optuna.user_attr.{k}": v for k, v in trial.user_attrs.items()
                             if k not in (TRIAL_RUN, "diffops.fail_reason")})
        self.client.log_batch(run_id, metrics=metrics, tags=[RunTag(k, v) for k, v in tags.items()])
        self.client.set_terminated(run_id, status or STATUS.get(trial.state, "FAILED"))

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        self.end_trial(trial)

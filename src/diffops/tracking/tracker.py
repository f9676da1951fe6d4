"""The MLflow side of the training loop's tracker (training/tracker.py): one run per training."""
from __future__ import annotations

import contextlib
from pathlib import Path

import mlflow

from ..utils.redact import redact, redact_values
from .mlflow_run import ensure_store, log_dataset_input, log_flat_params, redacted, tracked_run, tracking_uri


class MlflowTracker:
    """Opens (or reopens) the MLflow run of a training; ends it FINISHED, FAILED or KILLED.

    run_id: log into this existing run (e.g. a sweep trial's nested run, or a run the stage named).
    start(resume_run_id) prefers the run a resumed checkpoint belongs to. A resumed run holds each metric
    once per step: a point at a step the run already stores (logged again by the replay after a crash,
    with the same value: checkpoints hold the loop's metric window) is dropped.
    """

    def __init__(self, experiment: str, run_name: str, stage: str, system_metrics: bool = False,
                 run_id: str | None = None):
        self.experiment, self.run_name, self.stage = experiment, run_name, stage
        self.system_metrics, self.default_run_id = system_metrics, run_id
        self.run_id = self.tracking_uri = None
        self.resumed = False
        self.stored_steps: dict[str, int] = {}      # metric -> the last step the reopened run stored
        ensure_store(tracking_uri())    # made before the training starts: fail now, not after its compute

    @contextlib.contextmanager
    def start(self, run_id: str | None = None):
        reopen = run_id or self.default_run_id
        with tracked_run(self.experiment, run_name=self.run_name, run_id=reopen, stage=self.stage,
                         system_metrics=self.system_metrics) as run:
            # tracking_uri goes into model.json (a DVC output): recorded without its password
            self.run_id, self.tracking_uri, self.resumed = run.info.run_id, redact(mlflow.get_tracking_uri()), bool(run_id)
            self.stored_steps = last_stored_steps(self.run_id) if self.resumed else {}
            try:
                yield self
            finally:
                self.flush()

    def log_params(self, params: dict) -> None:
        log_flat_params(params)

    def log_metrics(self, metrics: dict, step: int | None = None) -> None:
        if step is not None:
            metrics = {k: v for k, v in metrics.items() if step > self.stored_steps.get(k, -1)}
        if not metrics:
            return
        # Queued and written by MLflow's logging thread, so a step does not wait on the store; flush()
        # before each checkpoint keeps "what a checkpoint saw is stored" (an exact resume's history).
        mlflow.log_metrics(metrics, step=step, synchronous=False)

    def flush(self) -> None:
        mlflow.flush_async_logging()

    def end_abandoned_run(self, run_id: str) -> None:
        """A run whose checkpoints were discarded: a killed training left it RUNNING; it ends KILLED."""
        client = mlflow.MlflowClient()
        try:
            running = run_id != self.default_run_id and client.get_run(run_id).info.status == "RUNNING"
        except mlflow.exceptions.MlflowException:       # in another store, or deleted: nothing to end here
            return
        if running:
            client.set_terminated(run_id, "KILLED")

    def log_dict(self, obj: dict, name: str) -> None:
        mlflow.log_dict(redact_values(obj), name)

    def set_tags(self, tags: dict) -> None:
        mlflow.set_tags(redacted(tags))

    def log_artifact(self, path: Path, artifact_dir: str | None = None) -> None:
        mlflow.log_artifact(str(path), artifact_dir)

    def log_artifacts(self, folder: Path, artifact_dir: str | None = None) -> None:
        mlflow.log_artifacts(str(folder), artifact_dir)

    def log_dataset(self, name: str, digest: str, path: Path, context: str) -> None:
        log_dataset_input(name, digest, path, context)

    def log_generator_model(self, model_dir: Path, cfg) -> None:
        from .pyfunc_model import log_generator_model
        log_generator_model(model_dir, cfg)


def last_stored_steps(run_id: str) -> dict[str, int]:
    client = mlflow.MlflowClient()
    return {k: max(m.step for m in client.get_metric_history(run_id, k)) for k in client.get_run(run_id).data.metrics}

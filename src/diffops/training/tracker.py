"""What the training loop reports to: a tracker object it is given (MLflow for stages and sweeps,
`NullTracker` for tests and benchmarks). The loop never calls MLflow itself.

    with tracker.start(resume_run_id) as t:     # resume_run_id: the run a checkpoint was logged to
        t.log_params({...}); t.log_metrics({...}, step=step); t.log_artifact(path, "grids")
"""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Protocol


class Tracker(Protocol):
    run_id: str | None          # the open run's id (None: nothing is recorded)
    tracking_uri: str | None
    resumed: bool               # True when start() reopened an existing run

    def start(self, run_id: str | None = None) -> contextlib.AbstractContextManager["Tracker"]: ...
    def log_params(self, params: dict) -> None: ...
    # May be stored later. A resumed run drops a point at a step it already stores: the replay of the
    # steps after the last checkpoint logs them again (with the same values, from the metric window).
    def log_metrics(self, metrics: dict, step: int | None = None) -> None: ...
    def flush(self) -> None: ...        # every metric logged so far is stored (before a checkpoint)
    def log_dict(self, obj: dict, name: str) -> None: ...
    def set_tags(self, tags: dict) -> None: ...
    def log_artifact(self, path: Path, artifact_dir: str | None = None) -> None: ...
    def log_artifacts(self, folder: Path, artifact_dir: str | None = None) -> None: ...
    def log_dataset(self, name: str, digest: str, path: Path, context: str) -> None: ...
    def log_generator_model(self, model_dir: Path, cfg) -> None: ...
    def end_abandoned_run(self, run_id: str) -> None: ...   # its checkpoints were discarded: KILLED if RUNNING


class NullTracker:
    """Records nothing; every call is a no-op."""
    run_id = tracking_uri = None
    resumed = False

    @contextlib.contextmanager
    def start(self, run_id=None):
        yield self

    def _nothing(self, *args, **kwargs) -> None:
        return None

    log_params = log_metrics = flush = log_dict = set_tags = log_artifact = log_artifacts = log_dataset = \
        log_generator_model = end_abandoned_run = _nothing

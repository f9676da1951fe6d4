"""MLflow run lifecycle for diffops stages.

- The store is `sqlite:///<project>/mlruns/mlflow.db` with artifacts in `<project>/mlruns/artifacts`,
  unless MLFLOW_TRACKING_URI points elsewhere (e.g. a tracking server with a SQL backend).
- Runs end with a truthful status: FINISHED on success, FAILED on an exception, KILLED on
  SIGINT/SIGTERM (the stock `with mlflow.start_run()` leaves SIGTERM'd runs RUNNING).
- Every run carries its lineage: git commit and dirty flag, DVC experiment name, dataset digests.
- No secret is logged: params and tags go through diffops.utils.redact, and an http(s) URI's
  `user:password@` is handed to MLflow as MLFLOW_TRACKING_USERNAME/PASSWORD (store.connect_uri), so MLflow
  neither prints nor records it.
"""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from pathlib import Path

import mlflow

from ..artifacts import read_spec
from ..utils.redact import redact
from ..utils.signals import interrupts_raise
from .store import TrackingUnavailable, check_reachable, connect_uri, create_tables, recorded_store

EXPERIMENT_KIND_TAG = "mlflow.experimentKind"   # MLflow 3 UI: open on the runs table, not GenAI


def project_root(start: Path | None = None) -> Path:
    """The nearest ancestor holding `.dvc/` (the DVC project), else the current directory."""
    here = (start or Path.cwd()).resolve()
    for d in (here, *here.parents):
        if (d / ".dvc").is_dir():
            return d
    return here


def tracking_uri(root: Path | None = None) -> str:
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    store = (root or project_root()) / "mlruns"
    store.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{store / 'mlflow.db'}"


_opened: set[str] = set()


def ensure_store(uri: str) -> str:
    """uri, made ready once per process: a tracking server answers (one line within seconds if it does
    not), a SQL store's tables exist (created by one process at a time)."""
    if uri not in _opened:
        check_reachable(uri)
        create_tables(uri)
        _opened.add(uri)
    return uri


def open_store(uri: str) -> str:
    """Point MLflow at uri (ensure_store)."""
    mlflow.set_tracking_uri(connect_uri(ensure_store(uri)))
    return uri


def use_experiment(name: str, root: Path | None = None, uri: str | None = None) -> str:
    """Point MLflow at the project store (or uri) and return the experiment id, creating it if needed."""
    root = root or project_root()
    open_store(uri or tracking_uri(root))
    exp = mlflow.get_experiment_by_name(name)
    if exp is None:
        artifacts = None                                 # a tracking server chooses its own root
        uri = mlflow.get_tracking_uri()
        if uri.startswith("sqlite:///"):                 # a local store keeps artifacts beside its db
            artifacts = (Path(uri[len("sqlite:///"):]).parent / "artifacts").resolve().as_uri()
        try:
            exp_id = mlflow.create_experiment(name, artifact_location=artifacts,
                                              tags={EXPERIMENT_KIND_TAG: "custom_model_development"})
        except mlflow.exceptions.MlflowException:      # created concurrently by another process
            exp_id = mlflow.get_experiment_by_name(name).experiment_id
    else:
        exp_id = exp.experiment_id
    mlflow.set_experiment(experiment_id=exp_id)
    return exp_id


def git_lineage(root: Path) -> dict[str, str]:
    """Git commit, branch and dirty flag of the project (empty values outside a git checkout)."""
    def git(*args):
        try:
            return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True,
                                  timeout=10).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            return ""
    commit = git("rev-parse", "HEAD")
    tags = {"mlflow.source.git.commit": commit, "diffops.git_commit": commit}
    if commit:
        tags["diffops.git_dirty"] = str(bool(git("status", "--porcelain", "--untracked-files=no")))
        tags["mlflow.source.git.branch"] = git("rev-parse", "--abbrev-ref", "HEAD")
    for var in ("DVC_EXP_NAME", "DVC_EXP_BASELINE_REV"):     # set by `dvc exp run`
        if os.environ.get(var):
            tags[f"dvc.{var.lower()}"] = os.environ[var]
    return {k: v for k, v in tags.items() if v}


@contextlib.contextmanager
def tracked_run(experiment: str, *, run_name: str | None = None, run_id: str | None = None,
                stage: str | None = None, system_metrics: bool = False, root: Path | None = None,
                uri: str | None = None):
    """Start (or reopen, with run_id) an MLflow run (in the project store, or uri); end it FINISHED,
    FAILED or KILLED."""
    root = root or project_root()
    use_experiment(experiment, root, uri)
    if system_metrics:
        mlflow.set_system_metrics_sampling_interval(5)
    with interrupts_raise(signal.SIGTERM, signal.SIGINT):
        run = mlflow.start_run(run_id=run_id, run_name=None if run_id else run_name,
                               log_system_metrics=system_metrics or None)
        try:
            if run_id is None:
                mlflow.set_tags(redacted(git_lineage(root) | ({"diffops.stage": stage} if stage else {})))
            yield run
        except KeyboardInterrupt:           # includes Interrupted (SIGTERM)
            mlflow.end_run("KILLED")
            raise
        except BaseException:
            mlflow.end_run("FAILED")
            raise
        else:
            mlflow.end_run("FINISHED")


def redacted(values: dict) -> dict:
    """Param or tag values with the secrets of any URI in them masked (e.g. sweep.storage's password)."""
    return {k: redact(v) for k, v in values.items()}


def log_flat_params(params: dict) -> None:
    """Log params in batches of 100 (MLflow's per-request limit), redacted."""
    items = list(redacted(params).items())
    for i in range(0, len(items), 100):
        mlflow.log_params(dict(items[i:i + 100]))


def log_dataset_input(name: str, digest: str, path: Path, context: str) -> None:
    """Record a dataset read by this run as an MLflow dataset input (lineage by content digest)."""
    from mlflow.data.sources import LocalArtifactDatasetSource
    from mlflow.data.meta_dataset import MetaDataset
    ds = MetaDataset(LocalArtifactDatasetSource(str(Path(path).resolve())), name=name, digest=digest[:36])
    mlflow.log_input(ds, context=context)


def producing_store(output_dir: Path, spec_name: str = "model.json") -> tuple[str, str] | None:
    """(run id, store URI) of the MLflow run that wrote a stage output (its spec's mlflow_run_id, in the
    store its mlflow_tracking_uri names: store.recorded_store), checked to answer and to hold the run;
    None when the output was made without tracking. Stages call it before computing what they log there."""
    spec_path = Path(output_dir) / spec_name
    spec = read_spec(spec_path, "a diffops stage") if spec_path.is_file() else {}
    if not spec.get("mlflow_run_id"):
        return None
    run_id, uri = spec["mlflow_run_id"], recorded_store(spec.get("mlflow_tracking_uri"), tracking_uri())
    fix = f"set MLFLOW_TRACKING_URI to the store that holds it, or rerun the stage that wrote {output_dir}"
    if uri.startswith("sqlite:///") and not Path(uri[len("sqlite:///"):]).is_file():
        raise TrackingUnavailable(f"{spec_path}: its MLflow run {run_id} is in {redact(uri)}, which does not "
                                  f"exist here; {fix}")
    open_store(uri)
    try:
        mlflow.MlflowClient().get_run(run_id)
    except mlflow.exceptions.MlflowException:
        raise TrackingUnavailable(f"{spec_path}: its MLflow run {run_id} is not in {redact(uri)}; {fix}") from None
    return run_id, uri


@contextlib.contextmanager
def producing_run(experiment: str, output_dir: Path, spec_name: str = "model.json"):
    """Reopen the MLflow run that wrote a stage output (producing_store), so that what a later stage
    measures of it lands in the same row; yields None when the output was made without tracking."""
    found = producing_store(output_dir, spec_name)
    if found is None:
        yield None
        return
    with tracked_run(experiment, run_id=found[0], uri=found[1]) as run:
        yield run


def metric_curve(run_id: str, x: str = "kimg", y: str = "loss") -> list[dict]:
    """A run's logged history of `y` against `x` (joined by step), as dvc plots rows [{x: .., y: ..}].
    A resumed run's history is whole: its steps were logged into the same run."""
    client = mlflow.MlflowClient()
    xs = {m.step: m.value for m in client.get_metric_history(run_id, x)}
    return [{x: xs[m.step], y: m.value} for m in sorted(client.get_metric_history(run_id, y), key=lambda m: m.step)
            if m.step in xs]

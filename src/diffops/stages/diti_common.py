"""What the DiTi evaluation stages share: logging an output folder into the representation's training run."""
from __future__ import annotations

from pathlib import Path

import mlflow

from ..config import flatten
from ..tracking.mlflow_run import producing_run


def log_into_representation_run(cfg, model_dir, out_dir: Path, artifact_path: str, metrics: dict, prefix: str,
                                extra_file=None) -> None:
    with producing_run(cfg.tracking.experiment, model_dir, "diti.json") as run:
        if not run:
            return
        if metrics:
            mlflow.log_metrics({k: float(v) for k, v in metrics.items()})
        mlflow.set_tags({f"evaluated_with.{k}": str(v) for k, v in flatten(cfg).items() if k.startswith(prefix)})
        mlflow.log_artifacts(str(out_dir), artifact_path)
        if extra_file is not None:
            mlflow.log_artifact(str(extra_file), artifact_path)

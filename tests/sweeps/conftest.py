"""A tiny study on a tiny prepared set: resolution 8, a 2-level UNet, an untrained 4-d feature net."""
import json
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import save_file

from diffops.config import Config
from diffops.nets.attrnet import AttrNet

from ..conftest import write_prepared


def tiny_params(storage: Path, **sweep) -> dict:
    return {
        "data": {"resolution": 8, "crop": 8},
        "model": {"block_channels": [8, 8], "attention": [False, False], "norm_num_groups": 4},
        "train": {"batch_size": 4, "log_every_steps": 5, "num_workers": 0, "lr_rampup_kimg": 0.01},
        "sample": {"steps": 2, "batch_size": 16},
        "evaluate": {"batch_size": 64},
        "tracking": {"experiment": "sweep-test", "system_metrics": False},
        "sweep": {
            "study": "tiny",
            "space": ["train.lr=float(1e-4, 1e-2, log)", "edm.P_mean=float(-2.0, 0.0)"],
            "budget": ["train.duration_kimg=0.04", "train.checkpoint_every_kimg=0.02", "train.grid_every_kimg=1",
                       "sample.num_images=24", "evaluate.untrained_baseline=false",
                       "tracking.log_checkpoints=none"],
            "n_trials": 3, "sampler": "tpe", "sampler_seed": 0, "sampler_startup_trials": 2,
            "pruner": "median", "pruner_startup_trials": 1,
            "intermediate_num_images": 16, "intermediate_steps": 2,
            "storage": str(storage), **sweep},
    }


def write_featurenet(out: Path, resolution: int = 8) -> Path:
    """Untrained weights in the format of artifacts/featurenet.py (enough to define a feature space)."""
    attributes = list(Config().featurenet.attributes)
    torch.manual_seed(0)
    net = AttrNet(len(attributes), width=4, feature_dim=4)
    out.mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, out / "attrnet.safetensors")
    (out / "featurenet.json").write_text(json.dumps({"attributes": attributes, "width": 4, "feature_dim": 4,
                                                     "resolution": resolution, "validation": {}}))
    return out


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """With other processes on the 2 cores, 2 OpenMP threads spin: 24 tiny samples take 2-5 s instead of 0.05 s."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def _mlflow_template(tmp_path_factory):
    """One migrated MLflow sqlite store per session: creating one costs 5-15 s on 2 busy cores."""
    import mlflow
    path = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    mlflow.MlflowClient(f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def mlflow_uri(tmp_path, monkeypatch, _mlflow_template):
    """A temporary sqlite MLflow store for one test (a copy of the session's empty, migrated store).

    The test runs in tmp_path: MLflow puts the artifacts of experiments created without an artifact
    location under ./mlruns, which would otherwise be the repository's own store.
    """
    import shutil
    import mlflow
    monkeypatch.chdir(tmp_path)
    shutil.copy(_mlflow_template, tmp_path / "mlflow.db")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    return uri


class SweepEnv:
    def __init__(self, root: Path, mlflow_uri: str):
        self.root, self.mlflow_uri = root, mlflow_uri
        self.data = write_prepared(root / "data", counts=(64, 16, 16))
        self.featurenet = write_featurenet(root / "featurenet")
        self.storage = root / "optuna.journal"
        self.out = root / "out"

    def write_params(self, **sweep) -> Path:
        path = self.root / "params.yaml"
        path.write_text(yaml.safe_dump(tiny_params(self.storage, **sweep), sort_keys=False))
        return path


@pytest.fixture
def sweep_env(tmp_path, mlflow_uri):
    return SweepEnv(tmp_path, mlflow_uri)

import contextlib
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from diffops.config import load_params


@pytest.fixture(scope="session")
def _mlflow_store(tmp_path_factory):
    """One temporary sqlite MLflow store for the session (creating its tables takes seconds)."""
    import mlflow
    uri = f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"
    mlflow.MlflowClient(uri).search_experiments()
    return uri


@pytest.fixture
def mlflow_uri(_mlflow_store, monkeypatch):
    """The session's temporary MLflow store, as the tracking URI of this test (and its subprocesses).
    Tests keep apart by experiment name or run id."""
    import mlflow
    monkeypatch.setenv("MLFLOW_TRACKING_URI", _mlflow_store)
    mlflow.set_tracking_uri(_mlflow_store)
    return _mlflow_store


@pytest.fixture
def one_thread():
    """For tests of tiny tensors, where a second thread only adds synchronisation (and, on a loaded
    machine, spin-waiting that made them 10-30x slower). Use with
    `pytestmark = pytest.mark.usefixtures("one_thread")`; restored after each test."""
    with single_thread():
        yield


@contextlib.contextmanager
def single_thread():
    """torch on one thread inside (for module-scoped fixtures, which run before `one_thread`): a run and
    its replay must round the same way to compare bit for bit."""
    import torch
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def write_prepared(root: Path, resolution: int = 8, counts=(32, 8, 8), seed: int = 0) -> Path:
    """A tiny prepared container in the format of diffops.data.prepare (random pixels)."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True)
    sha = hashlib.sha256()
    for split, n in zip(("train", "val", "test"), counts):
        images = rng.integers(0, 256, (n, 3, resolution, resolution), dtype=np.uint8)
        attrs = rng.integers(0, 2, (n, 40), dtype=np.uint8)
        np.save(root / f"{split}_images.npy", images)
        np.save(root / f"{split}_attrs.npy", attrs)
        (root / f"{split}_files.txt").write_text("".join(f"{split}{i:06d}.jpg\n" for i in range(n)))
        sha.update(images.tobytes() + attrs.tobytes())
    (root / "meta.json").write_text(json.dumps({"format": "diffops-prepared-v1", "resolution": resolution,
                                                "content_sha256": sha.hexdigest()}))
    return root


def tiny_config(**overrides):
    """Params small enough for a training step in milliseconds."""
    raw = {
        "data": {"resolution": 8, "crop": 8},
        "model": {"block_channels": [8, 8], "attention": [False, False], "norm_num_groups": 4},
        "train": {"duration_kimg": 0.04, "batch_size": 4, "checkpoint_every_kimg": 0.02,
                  "grid_every_kimg": 1.0, "log_every_steps": 2, "num_workers": 0, "lr_rampup_kimg": 0.01},
        "sample": {"steps": 2, "num_images": 8, "batch_size": 4},
        "tracking": {"experiment": "test", "system_metrics": False, "log_checkpoints": "last"},
    }
    for dotted, value in overrides.items():
        section, key = dotted.split(".")
        raw.setdefault(section, {})[key] = value
    from diffops.methods import METHODS
    return load_params(raw, methods=METHODS)


def pytest_sessionfinish(session, exitstatus):
    from .helpers.filesystems import unmount_all
    unmount_all()


# A real PostgreSQL (the local server, else a throwaway cluster) and a fresh database per test.
from .helpers.postgres import postgres_db, postgres_server  # noqa: E402,F401

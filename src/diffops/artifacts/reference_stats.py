"""Reference statistics of one dataset split in one feature space, the `reference` stage's output:

    <split>_<space>.npz   mu (D,), sigma (D, D) float64 (EDM's reference format, which EDM's fid.py and
                          diffops score read), n, and features (N, D) float32 for KID and precision/recall
    <split>_<space>.json  format, space, split, count, the dataset's content_sha256 and the feature
                          extractor's file sha256 (what the statistics are valid for)

`space` is `attrnet` (fd_attrnet) or `inception` (fid).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

FORMAT = "diffops-reference-stats-v1"


def reference_paths(root, split: str, space: str) -> tuple[Path, Path]:
    stem = Path(root) / f"{split}_{space}"
    return stem.with_suffix(".npz"), stem.with_suffix(".json")


def save_reference(root, split: str, space: str, mu, sigma, features: np.ndarray, record: dict) -> Path:
    """Write the pair into `root` (a folder the caller writes atomically)."""
    npz, sidecar = reference_paths(root, split, space)
    with open(npz, "wb") as f:
        np.savez(f, mu=np.asarray(mu, np.float64), sigma=np.asarray(sigma, np.float64), n=np.int64(len(features)),
                 features=np.asarray(features, np.float32))
    sidecar.write_text(json.dumps({"format": FORMAT, "space": space, "split": split, "count": len(features),
                                   **record}, indent=2))
    return npz


def load_reference(root, split: str, space: str, expect: dict) -> dict:
    """{mu, sigma, features, record} of one split and space; ValueError if the sidecar disagrees with
    `expect` (e.g. another dataset or extractor than the caller's), FileNotFoundError if absent."""
    npz, sidecar = reference_paths(root, split, space)
    if not (npz.is_file() and sidecar.is_file()):
        raise FileNotFoundError(f"{npz}: no {space} reference statistics of the {split} split; "
                                "run `dvc repro reference` (diffops reference)")
    record = json.loads(sidecar.read_text())
    stale = {k: (record.get(k), v) for k, v in expect.items() if record.get(k) != v}
    if stale:
        what = ", ".join(f"{k} {have} != {want}" for k, (have, want) in stale.items())
        raise ValueError(f"{npz}: made for other inputs ({what}); rerun `dvc repro reference`")
    with np.load(npz, allow_pickle=False) as data:
        return {"mu": data["mu"], "sigma": data["sigma"], "features": data["features"], "record": record,
                "path": os.fspath(npz)}

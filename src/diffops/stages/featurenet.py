"""dvc stage `featurenet`: the attribute classifier whose features define `fd_attrnet`.

Output folder (artifacts/featurenet.py): attrnet.safetensors + featurenet.json.
"""
from __future__ import annotations

import json
from pathlib import Path

import click
import mlflow
import numpy as np
import torch

from ..artifacts.featurenet import save_featurenet
from ..config import flatten
from ..data.celeba import ATTRIBUTE_NAMES
from ..data.prepare import load_split
from ..evaluation.featurenet import train_attrnet
from ..tracking.mlflow_run import log_dataset_input, log_flat_params, tracked_run
from ..utils.io import atomic_dir
from .common import PARAMS, load, path, output_folder


def _split(data_dir: Path, split: str, columns: list[int]):
    images, attrs = load_split(data_dir, split)
    return torch.from_numpy(np.ascontiguousarray(images)), torch.from_numpy(attrs[:, columns].astype(np.float32))


def run(cfg, data_dir: Path, out_dir: Path) -> dict:
    f = cfg.featurenet
    columns = [ATTRIBUTE_NAMES.index(a) for a in f.attributes]
    train_x, train_y = _split(data_dir, "train", columns)
    val_x, val_y = _split(data_dir, "val", columns)
    meta = json.loads((Path(data_dir) / "meta.json").read_text())

    with tracked_run(cfg.tracking.experiment, run_name="featurenet", stage="featurenet"):
        log_flat_params({k: v for k, v in flatten(cfg).items() if k.startswith(("featurenet.", "data."))})
        log_dataset_input("prepared-train", meta["content_sha256"], data_dir, "training")

        def on_epoch(epoch, m):
            mlflow.log_metrics({k: float(v) for k, v in m.items() if np.isscalar(v)}, step=epoch)

        model, history = train_attrnet(train_x, train_y, val_x, val_y, width=f.width,
                                       feature_dim=f.feature_dim, epochs=f.epochs,
                                       batch_size=f.batch_size, lr=f.lr,
                                       generator=torch.Generator().manual_seed(f.seed), on_epoch=on_epoch,
                                       attribute_names=list(f.attributes))
        spec = {"attributes": list(f.attributes), "width": f.width, "feature_dim": f.feature_dim,
                "resolution": cfg.data.resolution, "validation": _jsonable(history[-1])}
        with atomic_dir(out_dir) as tmp:
            save_featurenet(tmp, model, spec)
        mlflow.log_dict(spec, "featurenet.json")
    return spec


def _jsonable(d):
    if isinstance(d, dict):
        return {k: _jsonable(v) for k, v in d.items()}
    if isinstance(d, (list, tuple, np.ndarray)):
        return [_jsonable(v) for v in d]
    return float(d) if isinstance(d, (np.floating, float, torch.Tensor)) else d


@click.command("featurenet")
@PARAMS
@click.option("--data", type=path(exists=True), default="data/prepared", show_default=True)
@click.option("--out", type=output_folder(), default="models/featurenet", show_default=True)
def command(params_path, data, out):
    """Train the attribute classifier that defines fd_attrnet (params: featurenet.*).

    \b
    Example:  diffops featurenet --data data/prepared --out models/featurenet
    """
    spec = run(load(params_path), data, out)
    click.echo(f"featurenet: validation mean accuracy {spec['validation']['val_acc_mean']:.3f}")

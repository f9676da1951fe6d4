"""The featurenet stage: train the attribute classifier whose features define `fd_attrnet`.

Output folder: attrnet.safetensors + featurenet.json (attributes, architecture, validation scores).
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import mlflow
import numpy as np
import torch
from safetensors.torch import load_file, save_file

from ..config import flatten
from ..data.celeba import ATTRIBUTE_NAMES
from ..data.prepare import load_split
from ..nets.attrnet import AttrNet
from .featurenet import train_attrnet


def _split(data_dir: Path, split: str, columns: list[int]):
    images, attrs = load_split(data_dir, split)
    return torch.from_numpy(np.ascontiguousarray(images)), torch.from_numpy(attrs[:, columns].astype(np.float32))


def train_featurenet(cfg, data_dir: Path, out_dir: Path) -> dict:
    from ..tracking.mlflow_run import log_dataset_input, log_flat_params, tracked_run
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
        final = history[-1]
        spec = {"attributes": list(f.attributes), "width": f.width, "feature_dim": f.feature_dim,
                "resolution": cfg.data.resolution, "validation": _jsonable(final)}
        tmp = Path(out_dir).with_name(Path(out_dir).name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, tmp / "attrnet.safetensors")
        (tmp / "featurenet.json").write_text(json.dumps(spec, indent=2))
        shutil.rmtree(out_dir, ignore_errors=True)
        os.replace(tmp, out_dir)
        mlflow.log_dict(spec, "featurenet.json")
    return spec


def load_featurenet(featurenet_dir: Path) -> tuple[AttrNet, list[str]]:
    featurenet_dir = Path(featurenet_dir)
    if not (featurenet_dir / "featurenet.json").exists():
        raise FileNotFoundError(f"{featurenet_dir}: no featurenet.json; run the featurenet stage first")
    spec = json.loads((featurenet_dir / "featurenet.json").read_text())
    net = AttrNet(len(spec["attributes"]), width=spec["width"], feature_dim=spec["feature_dim"])
    net.load_state_dict(load_file(featurenet_dir / "attrnet.safetensors"))
    return net.eval().requires_grad_(False), spec["attributes"]


def _jsonable(d):
    if isinstance(d, dict):
        return {k: _jsonable(v) for k, v in d.items()}
    if isinstance(d, (list, tuple, np.ndarray)):
        return [_jsonable(v) for v in d]
    return float(d) if isinstance(d, (np.floating, float, torch.Tensor)) else d

"""Asyrp's stage outputs: the inversion cache (asyrp_invert) and the trained Delta h network (asyrp_train).

Inversion folder: train.safetensors and test.safetensors (ids int64 = rows of the prepared split, images uint8,
x_T float32 = the deterministic DDIM inversion at t_0) + inversion.json, whose `key` says what the latents
depend on: the EDM model's sha256, t_0, the inversion steps and the image ids (and the data's content hash).
A consumer compares the key with what it is given and refuses a stale cache by name.

Delta h folder: delta_h.safetensors (DeltaBlock) + asyrp.json (its shape, what it edits, the interval and the
rule that chose it, the steps it trained with, the inversion key and the MLflow run).
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from ..nets.delta_h import DeltaBlock
from . import load_weights, read_spec

SPLITS = ("train", "test")


def inversion_key(edm_sha256: str, t_0: int, steps: int, ids: dict[str, list[int]], data_sha256: str) -> dict:
    digest = hashlib.sha256(json.dumps(ids, sort_keys=True).encode()).hexdigest()[:16]
    return {"edm_sha256": edm_sha256, "t_0": t_0, "inversion_steps": steps, "data_sha256": data_sha256,
            "ids_sha256": digest}


def save_inversion(out_dir: Path, splits: dict[str, dict[str, torch.Tensor]], spec: dict) -> None:
    for name, tensors in splits.items():
        save_file({k: v.contiguous() for k, v in tensors.items()}, Path(out_dir) / f"{name}.safetensors")
    (Path(out_dir) / "inversion.json").write_text(json.dumps(spec, indent=2))


def load_inversion(inv_dir: Path) -> tuple[dict, dict[str, dict[str, torch.Tensor]]]:
    inv_dir = Path(inv_dir)
    spec = read_spec(inv_dir / "inversion.json", "the asyrp_invert stage")
    splits = {}
    for name in SPLITS:
        path = inv_dir / f"{name}.safetensors"
        if not path.is_file():
            raise FileNotFoundError(f"{path}: not found; rerun the asyrp_invert stage")
        splits[name] = load_file(path)
    return spec, splits


def check_inversion_key(spec: dict, edm_sha256: str, inv_dir: Path) -> None:
    """The cache was inverted with this EDM model (the stage that reads it is given the model too)."""
    if spec["key"]["edm_sha256"] != edm_sha256:
        raise ValueError(f"{inv_dir}: inverted with another EDM model (sha256 {spec['key']['edm_sha256'][:12]}...); "
                         f"rerun the asyrp_invert stage")


def save_delta_h(out_dir: Path, net: DeltaBlock, spec: dict) -> None:
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, Path(out_dir) / "delta_h.safetensors")
    (Path(out_dir) / "asyrp.json").write_text(json.dumps(spec, indent=2))


def load_delta_h(model_dir: Path) -> tuple[DeltaBlock, dict]:
    model_dir = Path(model_dir)
    spec = read_spec(model_dir / "asyrp.json", "the asyrp_train stage")
    net = DeltaBlock(**spec["delta_block"])
    load_weights(net, model_dir / "delta_h.safetensors", model_dir / "asyrp.json")
    return net.eval().requires_grad_(False), spec

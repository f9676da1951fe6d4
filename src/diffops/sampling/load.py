"""Load an exported denoiser (ema.safetensors + model.json, written by training.loop.export_model)."""
from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file

from ..diffusion.edm import EDMPrecond
from ..nets.unet import build_unet


def load_denoiser(model_dir: Path, device="cpu") -> tuple[EDMPrecond, dict]:
    model_dir = Path(model_dir)
    if not (model_dir / "model.json").exists():
        raise FileNotFoundError(f"{model_dir}: no model.json; run the train stage first (dvc repro train)")
    spec = json.loads((model_dir / "model.json").read_text())
    D = EDMPrecond(build_unet(**spec["unet"]), sigma_data=spec["sigma_data"])
    D.load_state_dict(load_file(model_dir / "ema.safetensors"))
    return D.eval().requires_grad_(False).to(device), spec


def untrained_denoiser(spec: dict, seed: int, device="cpu") -> EDMPrecond:
    """The network as initialised by training with this seed: the 'chance' baseline."""
    torch.manual_seed(seed)
    D = EDMPrecond(build_unet(**spec["unet"]), sigma_data=spec["sigma_data"])
    return D.eval().requires_grad_(False).to(device)

"""The exported denoiser: ema.safetensors (the denoiser's state dict) + model.json (UNet arguments, sigma_data,
method, the MLflow run that trained it, a space's entries such as the VAE of a latent model, and, for a
network trained in another formulation, its "precond": e.g. {"kind": "ddpm", "schedule", "target"})."""
from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import save_file

from ..diffusion.ddpm import DDPMPrecond
from ..diffusion.edm import EDMPrecond
from ..nets.unet import build_unet
from ..utils.redact import redact_values
from . import load_weights, read_spec


def make_denoiser(unet: torch.nn.Module, spec: dict) -> torch.nn.Module:
    """The denoiser D(x; sigma) around `unet` that model.json describes (EDM's preconditioning by default)."""
    precond = spec.get("precond") or {"kind": "edm"}
    if precond["kind"] == "ddpm":
        return DDPMPrecond(unet, schedule=precond["schedule"], target=precond["target"])
    if precond["kind"] != "edm":
        raise ValueError(f"model.json: unknown precond kind {precond['kind']!r} (edm or ddpm)")
    return EDMPrecond(unet, sigma_data=spec["sigma_data"])


def save_denoiser(out_dir: Path, D: torch.nn.Module, spec: dict) -> None:
    save_file({k: v.contiguous() for k, v in D.state_dict().items()}, Path(out_dir) / "ema.safetensors")
    (Path(out_dir) / "model.json").write_text(json.dumps(redact_values(spec), indent=2))   # no password of a URI


def denoiser_spec(model_dir: Path) -> dict:
    return read_spec(Path(model_dir) / "model.json", "a train stage (dvc repro train)")


def load_denoiser(model_dir: Path, device="cpu") -> tuple[torch.nn.Module, dict]:
    spec = denoiser_spec(model_dir)
    D = make_denoiser(build_unet(**spec["unet"]), spec)
    load_weights(D, Path(model_dir) / "ema.safetensors", Path(model_dir) / "model.json")
    return D.eval().requires_grad_(False).to(device), spec


def load_denoiser_weights(D: torch.nn.Module, model_dir: Path, expected_unet: dict) -> None:
    """Copy an exported EMA denoiser into D, whose UNet must be the exported one."""
    spec = denoiser_spec(model_dir)
    if spec["unet"] != expected_unet:
        raise ValueError(f"{model_dir}: its UNet {spec['unet']} differs from the model.* params {expected_unet}; "
                         f"train from the same model.* params or point --init-model elsewhere")
    load_weights(D, Path(model_dir) / "ema.safetensors", Path(model_dir) / "model.json")


def untrained_denoiser(spec: dict, seed: int, device="cpu") -> torch.nn.Module:
    """The network as initialised by training with this seed: the 'chance' baseline."""
    torch.manual_seed(seed)
    D = make_denoiser(build_unet(**spec["unet"]), spec)
    return D.eval().requires_grad_(False).to(device)

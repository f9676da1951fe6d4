"""The train_diti / train_pdae output: encoder.safetensors, shift.safetensors (EMA weights of E and G) and
diti.json (method, the params sections needed to rebuild them, chunk ends, the frozen DPM's path and
sha256, the MLflow run). `Representation` loads one."""
from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import save_file

from ..config import load_params, to_dict
from ..methods import METHODS
from ..utils.io import file_sha256
from . import load_weights, read_spec
from .denoiser import load_denoiser


def stored_params(tcfg) -> dict:
    """The params sections a trained representation needs to be rebuilt (the rest of the schema may move on)."""
    full = to_dict(tcfg)
    return {"data": {k: full["data"][k] for k in ("crop", "resolution")}, "model": full["model"],
            "featurenet": {"attributes": full["featurenet"]["attributes"]}, "diti": full["diti"]}


def save_representation(out_dir: Path, modules, spec: dict) -> None:
    for name in ("encoder", "shift"):
        save_file({k: v.contiguous() for k, v in modules[name].state_dict().items()},
                  Path(out_dir) / f"{name}.safetensors")
    (Path(out_dir) / "diti.json").write_text(json.dumps(spec, indent=2))


class Representation:
    """A trained DiTi/PDAE model: method (schedule, masks), EMA encoder E, shift branch G, frozen D."""

    def __init__(self, model_dir: Path, edm_dir: Path | None = None, device="cpu"):
        model_dir = Path(model_dir)
        self.spec = read_spec(model_dir / "diti.json", "the train_diti / train_pdae stage")
        method_cls = METHODS[self.spec["method"]]
        self.cfg = method_cls.training_config(load_params(self.spec["params"], methods=METHODS))
        self.method = method_cls(self.cfg)
        with torch.random.fork_rng(devices=[]):
            modules = self.method.extra_modules()           # weights are overwritten below
        for name, module in modules.items():
            load_weights(module, model_dir / f"{name}.safetensors", model_dir / "diti.json")
            module.eval().requires_grad_(False).to(device)
        self.encoder, self.shift = modules["encoder"], modules["shift"]
        self.edm_dir = Path(edm_dir or self.spec["edm_model"]["path"])
        self.D = None

    def load_dpm(self, device="cpu"):
        """The frozen EDM model the shift branch was trained against (checked by digest)."""
        if file_sha256(self.edm_dir / "ema.safetensors") != self.spec["edm_model"]["ema_sha256"]:
            raise ValueError(f"{self.edm_dir}: not the EDM model this representation was trained on "
                             f"(digest differs); rerun its training stage")
        self.D, _ = load_denoiser(self.edm_dir, device)
        return self.D

    @property
    def run_id(self) -> str | None:
        return self.spec.get("mlflow_run_id")

    @torch.no_grad()
    def encode(self, images_uint8: torch.Tensor, batch_size: int = 500, flip: bool = False) -> torch.Tensor:
        """z = E(x0) for uint8 images (N, 3, R, R); flip = horizontally mirrored inputs."""
        out = []
        for i in range(0, images_uint8.shape[0], batch_size):
            x = images_uint8[i:i + batch_size].to(torch.float32) / 127.5 - 1
            out.append(self.encoder(x.flip(3) if flip else x))
        return torch.cat(out)

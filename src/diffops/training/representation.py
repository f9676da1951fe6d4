"""The train_diti / train_pdae stages: DiTi or PDAE on the frozen EDM model, through the one training loop.

The loop trains the method's extra modules (encoder, shift branch) around D loaded from `edm_dir`
(`init_model_dir`, `freeze_denoiser`). Its params come from the `diti` section: this module derives the
`train.*` / `method.name` values the loop reads, so the quickstart's EDM run and these runs share one
params.yaml. The learning rate is `diti.lr` for any process count (`diti.batch_size` is global); the
reference scales it by local_batch / 32 instead, which makes runs on different GPU counts differ.

Output (written atomically): out_dir/
    encoder.safetensors, shift.safetensors   EMA weights of E and G
    diti.json                                method, resolved params, chunk ends, the frozen DPM's
                                             digest, the MLflow run id
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import replace
from pathlib import Path

import mlflow
import torch
from safetensors.torch import load_file, save_file

from ..config import MethodConfig, load_params, to_dict
from ..methods import METHODS
from ..sampling.load import load_denoiser

# diti.* keys that change what is trained (checkpoints written under other values are discarded).
TRAIN_KEYS = ("latent_dim", "k", "allocation", "stages", "dims_per_stage", "mode", "encoder_width", "seed",
              "duration_kimg", "batch_size", "lr", "ema_halflife_kimg", "checkpoint_every_kimg")
REPRESENTATION_METHODS = ("diti", "pdae")


def training_config(cfg, method: str):
    """The Config the training loop sees for `method` ('diti' or 'pdae' = DiTi with k = 1)."""
    if method not in REPRESENTATION_METHODS:
        raise ValueError(f"method must be one of {REPRESENTATION_METHODS}, got {method!r}")
    d = cfg.diti if method == "diti" else replace(cfg.diti, k=1, allocation="balanced", mode="base")
    train = replace(cfg.train, seed=d.seed, duration_kimg=d.duration_kimg, batch_size=d.batch_size, lr=d.lr,
                    lr_rampup_kimg=0.0, ema_halflife_kimg=d.ema_halflife_kimg,
                    checkpoint_every_kimg=d.checkpoint_every_kimg, grid_every_kimg=d.duration_kimg)
    return replace(cfg, method=MethodConfig(name=method), diti=d, train=train)


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def train_representation(cfg, method: str, data_dir: Path, edm_dir: Path, out_dir: Path, state_dir: Path, *,
                         mlflow_run_id: str | None = None, on_checkpoint=None, stop_after_steps: int | None = None):
    """Train DiTi/PDAE on data_dir around the frozen EDM model in edm_dir; export the EMA modules to out_dir."""
    from .loop import train as train_loop
    tcfg = training_config(cfg, method)
    data_dir, edm_dir, out_dir, state_dir = map(Path, (data_dir, edm_dir, out_dir, state_dir))
    edm_sha = file_sha256(edm_dir / "ema.safetensors")

    # The loop matches checkpoints to data/model/method/edm/train; the diti keys and the frozen DPM
    # are matched here, so that a changed k or a retrained EDM model never resumes a stale state.
    marker = {"method": method, "diti": {k: to_dict(tcfg.diti)[k] for k in TRAIN_KEYS}, "edm_sha256": edm_sha}
    marker_path = state_dir / "representation.json"
    if _is_main_process():
        if state_dir.exists() and (not marker_path.exists() or json.loads(marker_path.read_text()) != marker):
            print(f"{state_dir}: checkpoints belong to another diti config or EDM model; starting fresh")
            shutil.rmtree(state_dir)
        state_dir.mkdir(parents=True, exist_ok=True)
        marker_path.write_text(json.dumps(marker, indent=2))

    def checkpoint_hook(cur_nimg, ema):
        marker_path.write_text(json.dumps(marker, indent=2))   # the loop may have recreated state_dir
        if on_checkpoint is not None:
            on_checkpoint(cur_nimg, ema)

    loop_out = out_dir.with_name(out_dir.name + ".loop")       # the loop's own export (frozen D): discarded
    ema = train_loop(tcfg, data_dir, loop_out, state_dir, init_model_dir=edm_dir, mlflow_run_id=mlflow_run_id,
                     on_checkpoint=checkpoint_hook, stop_after_steps=stop_after_steps)
    if not _is_main_process() or not (loop_out / "model.json").exists():
        return None
    run_id = json.loads((loop_out / "model.json").read_text()).get("mlflow_run_id")
    shutil.rmtree(loop_out)
    method_obj = METHODS[method](tcfg)
    spec = {"method": method, "params": stored_params(tcfg),
            "chunk_ends": getattr(method_obj, "ends", [tcfg.diti.latent_dim]),
            "edm_model": {"path": str(edm_dir), "ema_sha256": edm_sha}, "mlflow_run_id": run_id,
            "mlflow_tracking_uri": mlflow.get_tracking_uri() if run_id else None,
            "num_params": {name: sum(p.numel() for p in m.parameters()) for name, m in ema.extra.items()}}
    _export(out_dir, ema.extra, spec)
    if run_id:
        from ..tracking.mlflow_run import tracked_run
        with tracked_run(tcfg.tracking.experiment, run_id=run_id):
            mlflow.log_params({"diti.lr_effective": tcfg.train.lr, "diti.lr_scaling": "none (diti.batch_size is global)",
                               "diti.chunk_ends": str(spec["chunk_ends"]),
                               "diti.encoder_params": spec["num_params"]["encoder"],
                               "diti.shift_params": spec["num_params"]["shift"]})
            mlflow.set_tag("diffops.frozen_dpm_sha256", edm_sha)
            mlflow.log_artifacts(str(out_dir), "representation")
    return spec


def stored_params(tcfg) -> dict:
    """The params sections a trained representation needs to be rebuilt (the rest of the schema may move on)."""
    full = to_dict(tcfg)
    return {"data": {k: full["data"][k] for k in ("crop", "resolution")}, "model": full["model"],
            "featurenet": {"attributes": full["featurenet"]["attributes"]}, "diti": full["diti"]}


def _export(out_dir: Path, modules, spec: dict) -> None:
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name in ("encoder", "shift"):
        save_file({k: v.contiguous() for k, v in modules[name].state_dict().items()}, tmp / f"{name}.safetensors")
    (tmp / "diti.json").write_text(json.dumps(spec, indent=2))
    shutil.rmtree(out_dir, ignore_errors=True)
    os.replace(tmp, out_dir)


class Representation:
    """A trained DiTi/PDAE model: method (schedule, masks), EMA encoder E, shift branch G, frozen D."""

    def __init__(self, model_dir: Path, edm_dir: Path | None = None, device="cpu"):
        model_dir = Path(model_dir)
        if not (model_dir / "diti.json").exists():
            raise FileNotFoundError(f"{model_dir}: no diti.json; run the train_diti / train_pdae stage first")
        self.spec = json.loads((model_dir / "diti.json").read_text())
        self.cfg = training_config(load_params(self.spec["params"], methods=METHODS), self.spec["method"])
        self.method = METHODS[self.spec["method"]](self.cfg)
        with torch.random.fork_rng(devices=[]):
            modules = self.method.extra_modules()           # weights are overwritten below
        for name, module in modules.items():
            module.load_state_dict(load_file(model_dir / f"{name}.safetensors"))
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

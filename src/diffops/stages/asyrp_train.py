"""dvc stage `asyrp_train`: Asyrp's Delta h network (DeltaBlock) for one edit, on the inverted training images.

The frozen EDM model's h-space shapes the DeltaBlock (nets/delta_h.py). training/asyrp.py walks the
asyrp.train_steps generation steps from t_0 down to t_edit and takes one optimiser step per timestep on
lambda_dir L_direction + lambda_rec cos L1(P_t^edit, P_t^orig). The direction (asyrp.direction):
- attribute: the attribute net (featurenet stage) raises asyrp.attribute's logit on P_t^edit;
- clip: the directional CLIP loss from asyrp.source_prompt to asyrp.target_prompt with the local open_clip
  model asyrp.clip_model (L1 weighted by the prompts' cosine, the LPIPS threshold too).
t_edit comes from the explicit param, or from the LPIPS rule when asyrp.lpips_weights is set, and is logged
with the rule that chose it (t_boost acts at inference only: the edit stage chooses and logs it).
MLflow: run `asyrp-train` (params, loss per step, the exported network); the edit stage logs its metrics and
grids into the same run.
Output (artifacts/asyrp.py): delta_h.safetensors + asyrp.json.
"""
from __future__ import annotations

import time
from pathlib import Path

import click
import mlflow
import torch
from mlflow.entities import Metric
from torch.nn import functional as F

from ..config.asyrp import check_attribute
from ..utils.redact import redact
from ..artifacts.asyrp import save_delta_h
from ..artifacts.featurenet import featurenet_spec, load_featurenet
from ..artifacts.perceptual import load_clip
from ..config import flatten
from ..diffusion.ddpm import DDPMSchedule
from ..methods.asyrp import (attribute_direction_loss, clip_direction_loss, clip_directional_cosine,
                             text_direction)
from ..nets.delta_h import delta_block_for, h_space_shape
from ..sampling.asyrp import asyrp_timesteps
from ..tracking.mlflow_run import log_flat_params, tracked_run
from ..training.asyrp import train_delta_h
from ..utils.io import atomic_dir
from .asyrp_common import edit_interval, load_checked_inversion, load_frozen_dpm
from .common import PARAMS, load, one_line_errors, output_folder, path


def direction_for(cfg, featurenet_dir: Path):
    """(direction_loss(P_edit, x0) -> (loss, stats), cos(y_src, y_trg)) of asyrp.direction."""
    a = cfg.asyrp
    if a.direction == "clip":
        clip = load_clip(Path(a.clip_model), a.clip_arch)
        direction, prompt_cosine = text_direction(clip.encode_text, a.source_prompt, a.target_prompt)

        def clip_loss(P_edit, x0):
            cos = clip_directional_cosine(clip.encode_image, x0, P_edit, direction)
            return clip_direction_loss(cos), {"clip_directional_similarity": float(cos.detach().mean())}
        return clip_loss, prompt_cosine
    attrnet, names = load_featurenet(featurenet_dir)
    if a.attribute not in names:
        raise ValueError(f"asyrp.attribute: {a.attribute} is not predicted by {featurenet_dir} ({', '.join(names)})")
    index, side = names.index(a.attribute), featurenet_spec(featurenet_dir)["resolution"]

    def attribute_loss(P_edit, x0):
        x = P_edit if P_edit.shape[-1] == side else F.interpolate(P_edit, size=side, mode="bilinear", align_corners=False)
        logit = attrnet(x)[:, index]
        return attribute_direction_loss(logit), {"attr_prob": float(torch.sigmoid(logit.detach()).mean())}
    return attribute_loss, 1.0


def run(cfg, inv_dir, edm_dir, featurenet_dir, out_dir, progress: bool = True, run_id: str | None = None) -> dict:
    check_attribute(cfg)
    a = cfg.asyrp
    D, edm_sha = load_frozen_dpm(edm_dir)
    inv_spec, splits = load_checked_inversion(cfg, Path(inv_dir), edm_sha)
    direction_loss, rec_cosine = direction_for(cfg, Path(featurenet_dir))
    t_edit, _, rule = edit_interval(cfg, inv_spec, rec_cosine)       # t_boost acts at inference only (asyrp_edit)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(a.seed)
        delta_net = delta_block_for(D.net)                 # default initialisation, as the reference
    train = splits["train"]
    x0 = train["images"].to(torch.float32) / 127.5 - 1
    seq = asyrp_timesteps(a.train_steps, a.t_0)
    with tracked_run(cfg.tracking.experiment, run_name="asyrp-train", run_id=run_id, stage="asyrp_train") as run_:
        log_flat_params({k: v for k, v in flatten(cfg).items() if k.startswith("asyrp.")})
        mlflow.log_params({"asyrp.t_edit_used": t_edit,
                           "asyrp.rec_cosine": rec_cosine, "asyrp.h_space_shape": str(list(h_space_shape(D.net)))})
        mlflow.set_tags({"asyrp.t_rule": rule, "diffops.frozen_dpm_sha256": edm_sha,
                         "asyrp.inversion_run_id": inv_spec.get("mlflow_run_id") or ""})
        history = []
        t0 = time.perf_counter()
        steps = train_delta_h(D, delta_net, direction_loss, train["x_T"], x0, DDPMSchedule(), seq, t_edit,
                              epochs=a.epochs, batch_size=a.batch_size, optimizer=a.optimizer, lr=a.lr,
                              lr_step_epochs=a.lr_step_epochs, lr_gamma=a.lr_gamma, weight_decay=a.weight_decay,
                              lambda_dir=a.lambda_dir, lambda_rec=a.lambda_rec, rec_cosine=rec_cosine,
                              on_step=lambda step, m: history.append((step, m)), progress=progress)
        seconds = time.perf_counter() - t0
        now = int(time.time() * 1000)
        metrics = [Metric(k, float(v), now, step) for step, m in history for k, v in m.items()]
        for i in range(0, len(metrics), 1000):                        # MLflow's batch limit
            mlflow.MlflowClient().log_batch(run_.info.run_id, metrics=metrics[i:i + 1000])
        mlflow.log_metrics({"train_seconds": seconds, "train_steps_total": steps})
        spec = {"direction": a.direction, "attribute": a.attribute,
                "prompts": [a.source_prompt, a.target_prompt] if a.direction == "clip" else None,
                "delta_block": {"channels": delta_net.conv1.in_channels,
                                "temb_dim": delta_net.temb_proj.in_features,
                                "groups": delta_net.norm.num_groups, "eps": delta_net.norm.eps},
                "h_space_shape": list(h_space_shape(D.net)), "t_0": a.t_0, "train_steps": a.train_steps,
                "t_edit": t_edit, "t_rule": rule, "rec_cosine": rec_cosine,
                "inversion_key": inv_spec["key"], "edm_sha256": edm_sha, "optimizer_steps": steps,
                "train_seconds": round(seconds, 1), "final_loss": history[-1][1]["loss"] if history else None,
                "mlflow_run_id": run_.info.run_id, "mlflow_tracking_uri": redact(mlflow.get_tracking_uri())}
        with atomic_dir(out_dir) as tmp:
            save_delta_h(tmp, delta_net, spec)
        mlflow.log_artifacts(str(out_dir), "asyrp")
    return spec


@click.command("train")
@PARAMS
@click.option("--inversion", "inv_dir", type=path(exists=True), default="data/asyrp/inversion", show_default=True)
@click.option("--edm", "edm_dir", type=path(exists=True), default="models/edm", show_default=True)
@click.option("--featurenet", "featurenet_dir", type=path(exists=True), default="models/featurenet", show_default=True,
              help="The attribute net (asyrp.direction attribute).")
@click.option("--out", type=output_folder(), default="models/asyrp", show_default=True)
def command(params_path, inv_dir, edm_dir, featurenet_dir, out):
    """Train Asyrp's Delta h network for asyrp.attribute (or a CLIP prompt pair) on the frozen EDM model.

    \b
    Example:  diffops asyrp train --inversion data/asyrp/inversion --edm models/edm --out models/asyrp
    """
    cfg = load(params_path)
    with one_line_errors():
        spec = run(cfg, inv_dir, edm_dir, featurenet_dir, out)
    click.echo(f"asyrp train: {spec['optimizer_steps']} steps in {spec['train_seconds']:.0f} s, t_edit {spec['t_edit']} "
               f"({spec['t_rule'].split(':')[0]}); final loss {spec['final_loss']:.4f}")

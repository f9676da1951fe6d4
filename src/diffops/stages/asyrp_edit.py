"""dvc stage `asyrp_edit`: edit the inverted test images with the trained Delta h and measure the edit.

Each test image (without the attribute) is generated three times from its inverted x_{t_0} with the same
per-image noise: without Delta h (the reconstruction), with the learned Delta h, and with a random Delta h of
the learned one's norm at every step (a fixed random direction per image: the control). The sampler is
sampling/asyrp.py's: Delta h for t >= t_edit (the t_edit it trained with), eta = 1 below t_boost (read here: it
only acts at inference), asyrp.edit_steps steps; Delta h is scaled
by asyrp.scale x train_steps / edit_steps, and several --model edits combine with 1 / sqrt(N) each.
The attribute net measures it (evaluation/asyrp.py): change_rate, change_rate_random, other_attr_change (each
with its _se), fd_attrnet (edited vs original); a CLIP edit also clip_directional_similarity (the cosine). Several models: the metrics are about the first one's
attribute, "other" attributes exclude every edited one.
Outputs: the metrics file, grid.png (rows: original, reconstruction, edit, random edit) + grid.json; both
logged into the (first) model's `asyrp-train` MLflow run.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import click
import mlflow
import torch

from ..config.asyrp import check_attribute
from ..artifacts.asyrp import load_delta_h
from ..artifacts.featurenet import featurenet_spec, load_featurenet
from ..artifacts.perceptual import load_clip
from ..config import flatten
from ..diffusion.ddpm import DDPMSchedule
from ..evaluation.asyrp import edit_metrics, mean_se, other_attribute_changes
from ..evaluation.counterfactual import to_uint8
from ..evaluation.featurenet import extract, to_resolution
from ..methods.asyrp import (asyrp_eps, clip_directional_cosine, combined_delta, edit_coefficients,
                             text_direction)
from ..sampling.asyrp import asyrp_timesteps, generate
from ..tracking.mlflow_run import producing_run
from ..utils.grid import save_image_grid
from ..utils.io import atomic_dir, write_json_atomic
from .asyrp_common import edit_interval, load_checked_inversion, load_frozen_dpm
from .common import PARAMS, load, one_line_errors, output_file, output_folder, path

BATCH = 128
ROWS = ("original", "reconstruction", "edit", "random edit (same norm)")


def image_generators(seed: int, ids, stream: int) -> list[torch.Generator]:
    """One generator per image, by (asyrp.seed, image id, stream): 0 = the eta = 1 noise, 1 = the random direction."""
    return [torch.Generator().manual_seed((seed * 1_000_003 + int(i)) * 2 + stream) for i in ids]


def random_delta(learned, directions: torch.Tensor):
    """Delta h_rand = |Delta h(h)| r / |r| per image: the control with the learned edit's norm at every step."""
    def delta(h, emb):
        norm = learned(h, emb).flatten(1).norm(dim=1)
        r = directions.to(h)
        return r / r.flatten(1).norm(dim=1).reshape(-1, 1, 1, 1) * norm.reshape(-1, 1, 1, 1)
    return delta


@torch.no_grad()
def clip_similarity(a, prompts: list[str], original: torch.Tensor, edited: torch.Tensor) -> dict:
    """clip_directional_similarity: the mean cosine cos(E_I(edit) - E_I(original), Delta T) with the training
    CLIP model (the paper's S_dir; the reproduction prints 1 - this under that name), and its SE over images."""
    clip = load_clip(Path(a.clip_model), a.clip_arch)
    direction, _ = text_direction(clip.encode_text, *prompts)
    to_float = lambda x: x.to(torch.float32) / 127.5 - 1                                   # noqa: E731
    cos = torch.cat([clip_directional_cosine(clip.encode_image, to_float(original[i:i + BATCH]),
                                             to_float(edited[i:i + BATCH]), direction)
                     for i in range(0, len(original), BATCH)])
    mean, se = mean_se(cos.numpy())
    return {"clip_directional_similarity": mean, "clip_directional_similarity_se": se}


def run(cfg, inv_dir, edm_dir, featurenet_dir, model_dirs, out_dir, metrics_path, progress: bool = True) -> dict:
    check_attribute(cfg)
    a = cfg.asyrp
    model_dirs = [Path(m) for m in model_dirs]
    D, edm_sha = load_frozen_dpm(edm_dir)
    inv_spec, splits = load_checked_inversion(cfg, Path(inv_dir), edm_sha)
    loaded = [load_delta_h(m) for m in model_dirs]
    for m, (_, spec) in zip(model_dirs, loaded):
        if spec["edm_sha256"] != edm_sha:
            raise ValueError(f"{m}: trained on another EDM model than {edm_dir}; rerun the asyrp_train stage")
    nets, specs = [n for n, _ in loaded], [s for _, s in loaded]
    first = specs[0]
    attrnet, names = load_featurenet(featurenet_dir)
    if first["attribute"] not in names:
        raise ValueError(f"{model_dirs[0]}: edits {first['attribute']}, which {featurenet_dir} does not predict")
    if first["attribute"] != inv_spec["attribute"]:
        raise ValueError(f"{model_dirs[0]}: edits {first['attribute']}, but {inv_dir} holds the test images without "
                         f"{inv_spec['attribute']}; invert with asyrp.attribute = {first['attribute']}")
    target, side = names.index(first["attribute"]), featurenet_spec(featurenet_dir)["resolution"]
    edited_attrs = {s["attribute"] for s in specs}
    t_edit = first["t_edit"]                              # what Delta h trained for
    _, t_boost, boost_rule = edit_interval(cfg, inv_spec, first["rec_cosine"])   # inference only
    coefficients = edit_coefficients(len(nets), a.scale, first["train_steps"], a.edit_steps)
    sched, seq = DDPMSchedule(), asyrp_timesteps(a.edit_steps, a.t_0)
    learned = combined_delta(nets, coefficients)

    test = splits["test"]
    ids, x_T = test["ids"].tolist(), test["x_T"]
    h_shape = tuple(first["h_space_shape"])
    t0 = time.perf_counter()
    out = {"recon": [], "edited": [], "random": []}
    for i in range(0, len(ids), BATCH):
        bid, bx = ids[i:i + BATCH], x_T[i:i + BATCH]
        directions = torch.stack([torch.randn(h_shape, generator=g) for g in image_generators(a.seed, bid, 1)])
        for key, delta in (("recon", None), ("edited", learned), ("random", random_delta(learned, directions))):
            eps_fn = lambda x, t, edit, delta=delta: asyrp_eps(D, x, t, sched, delta if edit else None)[:2]  # noqa: E731
            images = generate(eps_fn, bx, sched, seq, t_edit, t_boost, image_generators(a.seed, bid, 0), progress)
            out[key].append(to_uint8(images))
    seconds = time.perf_counter() - t0
    images = {"original": test["images"], **{k: torch.cat(v) for k, v in out.items()}}
    probs, features = {}, {}
    for key, imgs in images.items():
        features[key], probs[key] = extract(attrnet, to_resolution(imgs, side), 500)
    others = [j for j, n in enumerate(names) if n not in edited_attrs]
    metrics = edit_metrics({k: p[:, [target] + others] for k, p in probs.items()}, features, target=0)
    if first["direction"] == "clip":
        metrics |= clip_similarity(a, first["prompts"], images["original"], images["edited"])
    metrics = {"attribute": first["attribute"], "direction": first["direction"],
               "edits": [s["attribute"] for s in specs], **metrics,
               "other_attr_change_by_attribute": {n: v for n, v in other_attribute_changes(probs, names, target).items()
                                                  if n not in edited_attrs},
               "protocol": {"test_images": len(ids), "edit_steps": a.edit_steps, "t_0": a.t_0, "t_edit": t_edit,
                            "t_boost": t_boost, "t_edit_rule": first["t_rule"], "t_boost_rule": boost_rule,
                            "scale": a.scale, "coefficients": coefficients, "train_steps": first["train_steps"],
                            "featurenet": str(featurenet_dir), "seed": a.seed,
                            "se": "binomial sqrt(p(1-p)/N); other_attr_change: SE over images"},
               "seconds": round(seconds, 1)}
    n = min(a.grid_images, len(ids))
    with atomic_dir(out_dir) as tmp:
        save_image_grid(torch.cat([images[k][:n] for k in ("original", "recon", "edited", "random")]),
                        tmp / "grid.png", ncols=n)
        (tmp / "grid.json").write_text(json.dumps({"rows": [r if r not in ("edit",) else f"edit: +{first['attribute']}"
                                                            for r in ROWS], "image_ids": ids[:n]}, indent=2))
    write_json_atomic(Path(metrics_path), metrics)
    with producing_run(cfg.tracking.experiment, model_dirs[0], "asyrp.json") as run_:
        if run_:
            mlflow.log_metrics({f"asyrp.{k}": float(v) for k, v in metrics.items()
                                if isinstance(v, (int, float)) and not isinstance(v, bool)})
            mlflow.log_metrics({"asyrp.t_boost": t_boost})
            mlflow.set_tags({"asyrp.t_boost_rule": boost_rule,
                             **{f"evaluated_with.{k}": str(v) for k, v in flatten(cfg).items()
                                if k in ("asyrp.scale", "asyrp.edit_steps", "asyrp.t_boost", "asyrp.seed",
                                         "asyrp.test_images")}})
            mlflow.log_artifacts(str(out_dir), "edit")
            mlflow.log_artifact(str(metrics_path), "edit")
    return metrics


@click.command("edit")
@PARAMS
@click.option("--inversion", "inv_dir", type=path(exists=True), default="data/asyrp/inversion", show_default=True)
@click.option("--edm", "edm_dir", type=path(exists=True), default="models/edm", show_default=True)
@click.option("--featurenet", "featurenet_dir", type=path(exists=True), default="models/featurenet", show_default=True)
@click.option("--model", "model_dirs", type=path(exists=True), multiple=True, default=["models/asyrp"],
              show_default=True, help="A trained Delta h (repeat to combine edits, each scaled by 1/sqrt(N)).")
@click.option("--out", type=output_folder(), default="samples/asyrp", show_default=True)
@click.option("--metrics", type=output_file(), default="metrics/asyrp.json", show_default=True)
def command(params_path, inv_dir, edm_dir, featurenet_dir, model_dirs, out, metrics):
    """Edit the inverted test images with trained Delta h networks; the attribute net's change rates.

    \b
    Example:  diffops asyrp edit --model models/asyrp --out samples/asyrp --metrics metrics/asyrp.json
    """
    cfg = load(params_path)
    with one_line_errors():
        m = run(cfg, inv_dir, edm_dir, featurenet_dir, model_dirs, out, metrics)
    click.echo(f"asyrp edit +{m['attribute']} on {m['num_images']} test images: change rate {m['change_rate']:.3f} "
               f"± {m['change_rate_se']:.3f} (random Delta h {m['change_rate_random']:.3f} ± "
               f"{m['change_rate_random_se']:.3f}); other attributes {m['other_attr_change']:.3f} ± "
               f"{m['other_attr_change_se']:.3f}; fd_attrnet {m['fd_attrnet']:.2f}")

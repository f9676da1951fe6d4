"""dvc stage `asyrp_invert`: deterministic DDIM inversion (eta = 0) of the images Asyrp trains on and edits.

Images: the first asyrp.train_images rows of the train split and the first asyrp.test_images rows of the test
split that lack asyrp.attribute (ground truth), inverted from t = 0 to asyrp.t_0 in asyrp.inversion_steps
steps (sampling/asyrp.py) through the frozen EDM model read as a DDPM. The output (artifacts/asyrp.py) is
keyed by the model's sha256, t_0, the steps and the image ids, so the later stages refuse a stale cache; its
deterministic reconstruction error is the inversion's quality. With asyrp.lpips_weights, the mean LPIPS of
P_t and x_t to x0 at every step of the training images' inversion (the tables of the t_edit / t_boost rules).
MLflow: run `asyrp-invert`.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import click
import mlflow
import numpy as np
import torch

from ..artifacts.asyrp import inversion_key, save_inversion
from ..artifacts.perceptual import load_lpips
from ..config import flatten
from ..data.celeba import ATTRIBUTE_NAMES
from ..data.prepare import load_split
from ..diffusion.ddpm import DDPMSchedule
from ..methods.asyrp import asyrp_eps
from ..sampling.asyrp import asyrp_timesteps, generate, invert
from ..tracking.mlflow_run import log_dataset_input, log_flat_params, tracked_run
from ..utils.io import atomic_dir
from .asyrp_common import load_frozen_dpm
from .common import PARAMS, load, one_line_errors, output_folder, path

BATCH = 128


def select_ids(cfg, data_dir: Path) -> dict[str, np.ndarray]:
    """Rows of the train split (the first train_images) and of the test split (the first test_images without the
    attribute)."""
    a = cfg.asyrp
    col = ATTRIBUTE_NAMES.index(a.attribute)
    ids = {"train": np.arange(len(load_split(data_dir, "train")[0]))[:a.train_images],
           "test": np.nonzero(load_split(data_dir, "test")[1][:, col] == 0)[0][:a.test_images]}
    for split, key in (("train", "asyrp.train_images"), ("test", "asyrp.test_images")):
        want = a.train_images if split == "train" else a.test_images
        if len(ids[split]) < want:
            raise ValueError(f"{key}: {want} asked, {data_dir} has {len(ids[split])} {split} images"
                             + (f" without {a.attribute}" if split == "test" else ""))
    return ids


def run(cfg, data_dir, edm_dir, out_dir, progress: bool = True, run_id: str | None = None) -> dict:
    a = cfg.asyrp
    ids = select_ids(cfg, Path(data_dir))
    D, edm_sha = load_frozen_dpm(edm_dir)
    lpips = load_lpips(Path(a.lpips_weights)) if a.lpips_weights else None
    meta = json.loads((Path(data_dir) / "meta.json").read_text())
    sched, seq = DDPMSchedule(), asyrp_timesteps(a.inversion_steps, a.t_0)
    eps_fn = lambda x, t: asyrp_eps(D, x, t, sched, None)[0]                       # noqa: E731
    plain = lambda x, t, edit: (eps_fn(x, t),) * 2                                  # noqa: E731
    with tracked_run(cfg.tracking.experiment, run_name="asyrp-invert", run_id=run_id, stage="asyrp_invert"):
        log_flat_params({k: v for k, v in flatten(cfg).items()
                         if k in ("asyrp.attribute", "asyrp.t_0", "asyrp.inversion_steps", "asyrp.train_images",
                                  "asyrp.test_images", "asyrp.lpips_weights")})
        log_dataset_input("prepared", meta["content_sha256"], data_dir, "inversion")
        t0 = time.perf_counter()
        splits, recon_mae, table = {}, {}, None
        for split, rows in ids.items():
            images = torch.from_numpy(np.ascontiguousarray(load_split(data_dir, split)[0][rows]))
            x0 = images.to(torch.float32) / 127.5 - 1
            sums = {}

            def lpips_step(t, x_t, P_t, x0_batch):
                s = sums.setdefault(t, [0.0, 0.0])
                s[0] += float(lpips(P_t, x0_batch).sum())
                s[1] += float(lpips(x_t, x0_batch).sum())

            x_T, recon = [], []
            for i in range(0, len(x0), BATCH):
                xb = x0[i:i + BATCH]
                hook = (lambda t, x_t, P_t, xb=xb: lpips_step(t, x_t, P_t, xb)) if lpips and split == "train" else None
                x_T.append(invert(eps_fn, xb, sched, seq, on_step=hook, progress=progress))
                recon.append(generate(plain, x_T[-1], sched, seq, t_edit=a.t_0 + 1, t_boost=0, progress=progress))
            x_T, recon = torch.cat(x_T), torch.cat(recon)
            recon_mae[split] = float((recon.clamp(-1, 1) - x0).abs().mean() * 127.5)     # in 8-bit levels
            splits[split] = {"ids": torch.from_numpy(rows.astype(np.int64)), "images": images, "x_T": x_T}
            if sums:
                ts = sorted(sums)
                table = {"t": ts, "lpips_P_t": [sums[t][0] / len(x0) for t in ts],
                         "lpips_x_t": [sums[t][1] / len(x0) for t in ts]}
        seconds = time.perf_counter() - t0
        spec = {"key": inversion_key(edm_sha, a.t_0, a.inversion_steps, {k: v.tolist() for k, v in ids.items()},
                                     meta["content_sha256"]),
                "attribute": a.attribute, "ids": {k: v.tolist() for k, v in ids.items()}, "edm_model": str(edm_dir),
                "recon_mae_8bit": recon_mae, "lpips": table, "seconds": round(seconds, 1),
                "mlflow_run_id": mlflow.active_run().info.run_id}
        with atomic_dir(out_dir) as tmp:
            save_inversion(tmp, splits, spec)
        mlflow.log_metrics({f"asyrp.recon_mae_8bit.{k}": v for k, v in recon_mae.items()} | {"seconds": seconds})
        mlflow.log_dict(spec, "inversion.json")
    return spec


@click.command("invert")
@PARAMS
@click.option("--data", type=path(exists=True), default="data/prepared", show_default=True)
@click.option("--edm", "edm_dir", type=path(exists=True), default="models/edm", show_default=True,
              help="The frozen pre-trained DPM (an exported EDM model).")
@click.option("--out", type=output_folder(), default="data/asyrp/inversion", show_default=True)
def command(params_path, data, edm_dir, out):
    """Deterministic DDIM inversion of Asyrp's training and test images (params: asyrp.*).

    \b
    Example:  diffops asyrp invert --data data/prepared --edm models/edm --out data/asyrp/inversion
    """
    cfg = load(params_path)
    with one_line_errors():
        spec = run(cfg, data, edm_dir, out)
    click.echo(f"asyrp invert: {len(spec['ids']['train'])} train + {len(spec['ids']['test'])} test images in "
               f"{spec['seconds']:.0f} s; reconstruction error {spec['recon_mae_8bit']['test']:.2f} of 255 (test)")

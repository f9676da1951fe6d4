"""dvc stage `vae` (pipelines/quickstart-latent): the small AutoencoderKL that stands in for sd-vae-ft-mse."""
from __future__ import annotations

import click

from ..tracking.tracker import MlflowTracker
from ..training.vae import train_vae
from ..utils.io import atomic_dir
from .common import PARAMS, load, path, output_folder


def run(cfg, data_dir, out_dir) -> dict:
    tracker = MlflowTracker(cfg.tracking.experiment, run_name="vae", stage="vae")
    with tracker.start() as t, atomic_dir(out_dir) as tmp:
        info = train_vae(cfg, data_dir, tmp, t)
    print(f"vae: validation PSNR {info['val_psnr_db']:.1f} dB; scaling_factor {info['scaling_factor']:.4g} -> {out_dir}")
    return info


@click.command("vae")
@PARAMS
@click.option("--data", type=path(exists=True), default="data/prepared", show_default=True)
@click.option("--out", type=output_folder(), default="models/vae", show_default=True)
def command(params_path, data, out):
    """Train the quickstart's small AutoencoderKL on the prepared images (params: vae.*, encode.input_range).

    \b
    Example:  diffops vae --data data/prepared --out models/vae
    """
    run(load(params_path), data, out)

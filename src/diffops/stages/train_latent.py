"""dvc stage `train-latent` (pipelines/quickstart-latent, imagenet256-latents): the EDM baseline on VAE
latents (LDM/REPA style) through the one training loop with a LatentSpace (training/spaces.py): each step
draws z = (mean + std * eps - shift) * scaling_factor from the stored moments, and grids are decoded by
the VAE. Architecture and length come from the `latent` section (the rest of train.* is shared with the
pixel run), so both runs live in one params.yaml."""
from __future__ import annotations

from dataclasses import replace

import click

from ..config import ConfigError, ModelConfig
from ..methods import METHODS
from ..training.loop import train
from ..training.spaces import LatentSpace
from .common import PARAMS, load, one_line_errors, path, output_folder
from .train import tracker_for


def latent_config(cfg):
    """The Config the loop sees: latent.* replaces the UNet, sigma_data, length, batch and lr."""
    lat = cfg.latent
    return replace(cfg, model=ModelConfig(block_channels=lat.block_channels, attention=lat.attention,
                                          layers_per_block=lat.layers_per_block, norm_num_groups=lat.norm_num_groups,
                                          dropout=cfg.model.dropout),
                   edm=replace(cfg.edm, sigma_data=lat.sigma_data),
                   train=replace(cfg.train, duration_kimg=lat.duration_kimg, batch_size=lat.batch_size, lr=lat.lr,
                                 xflip=False))       # pixel flips do not apply; latent.xflip does


def run(cfg, latent_dir, out_dir, state_dir, vae_dir=None, run_id=None, **loop_kwargs):
    space = LatentSpace(latent_dir, vae_dir, xflip=cfg.latent.xflip)
    halvings = len(cfg.latent.block_channels) - 1
    if space.unet["resolution"] % 2 ** halvings:
        raise ConfigError("latent.block_channels", f"{len(cfg.latent.block_channels)} levels cannot halve the "
                          f"{space.unet['resolution']}-wide latents of {latent_dir} {halvings} times")
    tracker = tracker_for(cfg, "train-latent", run_name=f"train-{cfg.method.name}-latent", run_id=run_id)
    return train(latent_config(cfg), latent_dir, out_dir, state_dir, tracker=tracker, space=space,
                 tags={"diffops.vae": str(space.vae_dir), "diffops.scaling_factor": str(space.scale)}, **loop_kwargs)


@click.command("train-latent")
@PARAMS
@click.option("--data", type=path(exists=True), default="data/latents", show_default=True, help="encode output.")
@click.option("--out", type=output_folder(), default="models/edm-latent", show_default=True)
@click.option("--state", type=output_folder(), default="checkpoints/edm-latent", show_default=True)
@click.option("--vae", "vae_dir", type=path(exists=True), default=None, help="VAE for grids (default: the one that encoded).")
def command(params_path, data, out, state, vae_dir):
    """Train the EDM baseline on VAE latents (params: latent.*, other train.*, edm.P_*), logging to MLflow.

    \b
    Example:  diffops train-latent --data data/latents --out models/edm-latent --state checkpoints/edm-latent
    """
    cfg = load(params_path, methods=METHODS)
    with one_line_errors(ConfigError):
        run(cfg, data, out, state, vae_dir)

"""dvc stage `tiw_sample` (foreach loss): tiw.sample_num_images images of one loss's model with
tiw.sample_steps (the other sample.* keys shared with `sample`); optionally with discriminator guidance."""
from __future__ import annotations

import click

from ..artifacts.discriminator import load_discriminator
from ..methods import METHODS
from ..sampling.guidance import GuidedDenoiser
from . import sample
from .common import PARAMS, load, path, output_folder
from .tiw_train import LOSS


def run(cfg, loss: str, model_dir, out_dir, guidance_dir=None):
    tcfg = METHODS[loss].training_config(cfg)

    def guided(D):
        t = tcfg.tiw
        disc, _ = load_discriminator(guidance_dir, t.discriminator_step)
        return GuidedDenoiser(D, disc.to(next(D.parameters()).device), t.guidance_weight,
                              t.guidance_tau_min, t.guidance_tau_max)
    return sample.run(tcfg, model_dir, out_dir, wrap_denoiser=guided if guidance_dir is not None else None)


@click.command("sample")
@PARAMS
@LOSS
@click.option("--model", "model_dir", type=path(exists=True), required=True)
@click.option("--out", type=output_folder(), required=True)
@click.option("--guidance", "guidance_dir", type=path(exists=True), default=None,
              help="Discriminator folder: sample with discriminator guidance (params tiw.guidance_*).")
def command(params_path, loss, model_dir, out, guidance_dir):
    """Sample one loss's model with tiw.sample_num_images / tiw.sample_steps (other sample.* shared).

    \b
    Example:  diffops tiw sample --loss tiw_dsm --model models/tiw/tiw_dsm --out samples/tiw/tiw_dsm
              diffops tiw sample --loss dsm_obs --model models/tiw/dsm_obs --out samples/tiw/dsm_obs_dg \\
                --guidance models/tiw/discriminator      # DSM(obs) + discriminator guidance
    """
    run(load(params_path), loss, model_dir, out, guidance_dir)

"""dvc stage `generate`: synthetic faces in CelebA's on-disk layout (stand-in for the real download)."""
from __future__ import annotations

import click

from ..data.synthetic_celeba import generate_celeba_like
from .common import PARAMS, load, output_folder


def run(cfg, out, num_workers: int = 2) -> dict:
    return generate_celeba_like(out, cfg.generate.num_images, cfg.generate.seed, num_workers=num_workers,
                                nuisance=cfg.generate.nuisance)


@click.command("generate")
@PARAMS
@click.option("--out", type=output_folder(), default="data/raw/celeba", show_default=True, help="Raw dataset root to write.")
@click.option("--num-workers", type=click.IntRange(min=1), default=2, show_default=True)
def command(params_path, out, num_workers):
    """Write the synthetic faces dataset in CelebA's on-disk layout (params: generate.*).

    \b
    Example:  diffops generate --out data/raw/celeba
    """
    run(load(params_path), out, num_workers)

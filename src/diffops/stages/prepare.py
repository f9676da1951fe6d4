"""dvc stage `prepare`: central crop + resize of CelebA into the uint8 training container."""
from __future__ import annotations

import click

from ..data.prepare import prepare_celeba
from .common import PARAMS, load, one_line_errors, path, output_folder


def run(cfg, raw, out):
    d = cfg.data
    return prepare_celeba(raw, out, crop=d.crop, resolution=d.resolution, on_error=d.on_error,
                          num_workers=d.num_workers, transform=d.transform)


@click.command("prepare")
@PARAMS
@click.option("--raw", type=path(), default="data/raw/celeba", show_default=True,
              help="CelebA root: img_align_celeba/, list_attr_celeba.txt, list_eval_partition.txt.")
@click.option("--out", type=output_folder(), default="data/prepared", show_default=True)
def command(params_path, raw, out):
    """Crop and resize CelebA into the training container (params: data.*).

    \b
    Example (real CelebA):  diffops prepare --raw ~/datasets/celeba --out data/prepared
    """
    cfg = load(params_path)
    with one_line_errors(FileNotFoundError, ValueError):
        run(cfg, raw, out)

"""dvc stage `tiw_extractor`: the TIW-DSM discriminator's noise-aware, time-conditioned extractor (TimeAttrNet
on VP-noised prepared train images at the TIW losses' resolution; training/extractor.py), as the MLflow run
`extractor`.

Output folder (artifacts/discriminator.py): extractor.safetensors + extractor.json.
"""
from __future__ import annotations

import click

from ..tracking.tracker import MlflowTracker
from ..training.extractor import train_extractor
from ..utils.io import atomic_dir
from .common import PARAMS, load, path, output_folder


def run(cfg, data_dir, out_dir) -> dict:
    tracker = MlflowTracker(cfg.tracking.experiment, run_name="extractor", stage="tiw_extractor")
    with tracker.start() as t, atomic_dir(out_dir) as tmp:
        return train_extractor(cfg, data_dir, tmp, t)


@click.command("extractor")
@PARAMS
@click.option("--data", type=path(exists=True), default="data/prepared", show_default=True)
@click.option("--out", type=output_folder(), default="models/tiw/extractor", show_default=True)
def command(params_path, data, out):
    """Train the discriminator's noise-aware extractor on VP-noised images (params: tiw_extractor.*).

    \b
    Example:  diffops tiw extractor --data data/prepared --out models/tiw/extractor
    """
    spec = run(load(params_path), data, out)
    v = spec["validation"]
    click.echo(f"extractor: val attribute accuracy {v['val_acc_sigma0']:.3f} clean, "
               f"{v['val_acc_sigma1']:.3f} at sigma 1, {v['val_acc_sigma2']:.3f} at sigma 2")

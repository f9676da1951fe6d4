"""dvc stage `tiw_discriminator`: d(x_tau, tau) reference-vs-biased on the frozen attribute net, a head
checkpoint every discriminator.checkpoint_every_steps steps (training/discriminator.py), as the MLflow run
`discriminator`."""
from __future__ import annotations

import click

from ..tracking.tracker import MlflowTracker
from ..training.discriminator import train_discriminator
from ..utils.io import atomic_dir
from .common import PARAMS, load, path, output_folder


def run(cfg, data_dir, featurenet_dir, out_dir) -> dict:
    tracker = MlflowTracker(cfg.tracking.experiment, run_name="discriminator", stage="tiw_discriminator")
    with tracker.start() as t, atomic_dir(out_dir) as tmp:
        return train_discriminator(cfg, data_dir, featurenet_dir, tmp, t)


@click.command("discriminator")
@PARAMS
@click.option("--data", type=path(exists=True), default="data/tiw/obs", show_default=True)
@click.option("--featurenet", "featurenet_dir", type=path(exists=True), default="models/featurenet", show_default=True)
@click.option("--out", type=output_folder(), default="models/tiw/discriminator", show_default=True)
def command(params_path, data, featurenet_dir, out):
    """Train the time-dependent discriminator reference-vs-biased (params: discriminator.*).

    \b
    Example:  diffops tiw discriminator --data data/tiw/obs --out models/tiw/discriminator
    """
    spec = run(load(params_path), data, featurenet_dir, out)
    for step, c in spec["checkpoints"].items():
        click.echo(f"step {step:>6}: val_bce {c.get('val_bce', float('nan')):.4f}  "
                   f"val_acc {c.get('val_acc', float('nan')):.3f}  val_bce_clean {c.get('val_bce_clean', float('nan')):.4f}")

"""dvc stage `tiw_discriminator`: d(x_tau, tau) reference-vs-biased on the frozen noise-aware extractor of
the tiw_extractor stage, a head checkpoint every discriminator.checkpoint_every_steps steps, each with its
val scores and gates (training/discriminator.py), as the MLflow run `discriminator`."""
from __future__ import annotations

import click

from ..tracking.tracker import MlflowTracker
from ..training.discriminator import train_discriminator
from ..utils.io import atomic_dir
from .common import PARAMS, load, path, output_folder


def run(cfg, data_dir, extractor_dir, out_dir) -> dict:
    tracker = MlflowTracker(cfg.tracking.experiment, run_name="discriminator", stage="tiw_discriminator")
    with tracker.start() as t, atomic_dir(out_dir) as tmp:
        return train_discriminator(cfg, data_dir, extractor_dir, tmp, t)


@click.command("discriminator")
@PARAMS
@click.option("--data", type=path(exists=True), default="data/tiw/obs", show_default=True)
@click.option("--extractor", "extractor_dir", type=path(exists=True), default="models/tiw/extractor", show_default=True,
              help="The frozen noise-aware extractor (output of `diffops tiw extractor`).")
@click.option("--out", type=output_folder(), default="models/tiw/discriminator", show_default=True)
def command(params_path, data, extractor_dir, out):
    """Train the time-dependent discriminator reference-vs-biased (params: discriminator.*).

    \b
    Example:  diffops tiw discriminator --data data/tiw/obs --extractor models/tiw/extractor --out models/tiw/discriminator
    """
    spec = run(load(params_path), data, extractor_dir, out)
    p = spec["probe"]
    if p:
        click.echo(f"noisy linear probe: val_acc {p['probe_val_acc_sigma1']:.3f} at sigma 1, "
                   f"{p['probe_val_acc_sigma2']:.3f} at sigma 2")
    for step, c in spec["checkpoints"].items():
        if "val_bce" not in c:
            continue
        failed = [k for k, ok in c["gates"].items() if not ok]
        click.echo(f"step {step:>6}: val_bce {c['val_bce']:.4f}  val_acc sigma 1 / 2 {c['val_acc_sigma1']:.3f} / "
                   f"{c['val_acc_sigma2']:.3f}  E_bias[w] sigma 1 / 2 / tau~IS {c['val_w_bias_sigma1']:.3f} / "
                   f"{c['val_w_bias_sigma2']:.3f} / {c['val_w_bias']:.3f}  gates: "
                   + (f"FAIL {', '.join(failed)}" if failed else "all pass"))

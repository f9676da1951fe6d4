"""dvc stage `tiw_train` (foreach loss): one loss of the TIW-DSM comparison, trained with its own section
tiw_train.* (and tiw.* for the weighting), logged to MLflow as `train-<loss>`."""
from __future__ import annotations

import click

from ..methods import METHODS
from ..methods.tiw_dsm import MODES, NEEDS_DISCRIMINATOR
from ..training.loop import train
from .common import PARAMS, load_with, one_line_errors, path, output_folder, output_file
from .train import CURVE_METRIC, checkpoint_fd, method_inputs, tracker_for, write_curve

LOSS = click.option("--loss", type=click.Choice(MODES), required=True, help="Which loss (a mode of methods/tiw_dsm.py).")


def run(cfg, loss: str, data_dir, discriminator, out_dir, state_dir, run_id=None, plots=None, featurenet=None,
        fd_plots=None, fd_reference=None, **loop_kwargs):
    """featurenet: score every checkpoint against fd_reference's (default data_dir's) evaluate.reference_split."""
    tcfg = METHODS[loss].training_config(cfg)
    inputs, tags = method_inputs(tcfg, discriminator if loss in NEEDS_DISCRIMINATOR else None)
    tracker = tracker_for(tcfg, "train", run_id=run_id)
    if featurenet is not None:
        loop_kwargs["on_checkpoint"] = checkpoint_fd(tcfg, fd_reference or data_dir, featurenet, tracker,
                                                     loop_kwargs.get("on_checkpoint"))
    ema = train(tcfg, data_dir, out_dir, state_dir, tracker=tracker, method_inputs=inputs, tags=tags, **loop_kwargs)
    write_curve(tracker, plots)
    write_curve(tracker, fd_plots, CURVE_METRIC)
    return ema


@click.command("train")
@PARAMS
@LOSS
@click.option("--data", type=path(exists=True), default="data/tiw/obs", show_default=True,
              help="data/tiw/obs, or data/tiw/ref for dsm_ref.")
@click.option("--discriminator", type=path(exists=True), default="models/tiw/discriminator", show_default=True)
@click.option("--out", type=output_folder(), required=True, help="Exported EMA model, e.g. models/tiw/tiw_dsm.")
@click.option("--state", type=output_folder(), required=True, help="Checkpoints, e.g. checkpoints/tiw/tiw_dsm.")
@click.option("--plots", type=output_file(), default=None, help="Loss against kimg for `dvc plots`.")
@click.option("--featurenet", type=path(exists=True), default=None,
              help="Score every checkpoint with this attribute net (fd_attrnet, evaluate.checkpoint_*).")
@click.option("--fd-reference", type=path(exists=True), default=None,
              help="Container whose evaluate.reference_split the checkpoints are scored against (default --data).")
@click.option("--fd-plots", type=output_file(), default=None, help="The checkpoints' fd_attrnet against kimg.")
@click.option("--seed", type=int, default=None, help="Overrides tiw_train.seed (one training seed of several).")
@click.option("--duration-kimg", type=float, default=None, help="Overrides tiw_train.duration_kimg (a longer budget).")
def command(params_path, loss, data, discriminator, out, state, plots, featurenet, fd_reference, fd_plots, seed,
            duration_kimg):
    """Train one loss of the comparison: method.name = LOSS with the tiw_train.* optimiser and budget.

    \b
    Example:  diffops tiw train --loss tiw_dsm --out models/tiw/tiw_dsm --state checkpoints/tiw/tiw_dsm
              diffops tiw train --loss tiw_dsm --seed 1 --out models/tiw/tiw_dsm-seed1 --state checkpoints/tiw/tiw_dsm-seed1
    """
    cfg = load_with(params_path, "tiw_train", {"seed": seed, "duration_kimg": duration_kimg})
    with one_line_errors(FileNotFoundError):
        run(cfg, loss, data, discriminator, out, state, plots=plots, featurenet=featurenet, fd_plots=fd_plots,
            fd_reference=fd_reference)

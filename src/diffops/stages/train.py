"""dvc stage `train`: the EDM baseline (or any method.name) through the one training loop, logged to MLflow
as `train-<method>`; resumes from the latest matching checkpoint in --state. With --featurenet, every
checkpoint's EMA model is scored (fd_attrnet of evaluate.checkpoint_num_images quick samples): the curve
against kimg in the run and in --fd-plots."""
from __future__ import annotations

from pathlib import Path

import click

from ..artifacts.discriminator import load_discriminator
from ..config import ConfigError
from ..evaluation.evaluate import attrnet_reference
from ..methods import METHODS
from ..sampling.sample_set import quick_samples
from ..tracking.mlflow_run import metric_curve
from ..tracking.tracker import MlflowTracker
from ..training.loop import train
from ..training.spaces import open_space
from ..utils.io import write_json_atomic
from .common import PARAMS, load, one_line_errors, path, output_folder, output_file


def tracker_for(cfg, stage: str, run_name: str | None = None, run_id: str | None = None) -> MlflowTracker:
    """The MLflow tracker of a training stage (run_id: log into that run, e.g. a sweep trial's)."""
    return MlflowTracker(cfg.tracking.experiment, run_name=run_name or f"train-{cfg.method.name}", stage=stage,
                           system_metrics=cfg.tracking.system_metrics, run_id=run_id)


def method_inputs(cfg, discriminator=None) -> tuple[dict | None, dict]:
    """The loaded inputs of methods that need another stage's output, and the tags that name them."""
    if discriminator is None:
        return None, {}
    return ({"discriminator": load_discriminator(discriminator, cfg.tiw.discriminator_step)},
            {"diffops.method_input.discriminator": str(discriminator)})


CURVE_METRIC = "fd_attrnet_checkpoint"


def run(cfg, data_dir, out_dir, state_dir, init_model=None, discriminator=None, run_id=None, plots=None,
        featurenet=None, fd_plots=None, **loop_kwargs):
    inputs, tags = method_inputs(cfg, discriminator)
    tracker = tracker_for(cfg, "train", run_id=run_id)
    if featurenet is not None:
        loop_kwargs["on_checkpoint"] = checkpoint_fd(cfg, data_dir, featurenet, tracker, loop_kwargs.get("on_checkpoint"))
    ema = train(cfg, data_dir, out_dir, state_dir, tracker=tracker, init_model_dir=init_model, method_inputs=inputs,
                space=open_space(data_dir, cfg), tags=tags, **loop_kwargs)
    write_curve(tracker, plots)
    write_curve(tracker, fd_plots, CURVE_METRIC)
    return ema


def checkpoint_fd(cfg, data_dir, featurenet_dir, tracker, then=None):
    """The loop's on_checkpoint that logs fd_attrnet of evaluate.checkpoint_num_images samples of the EMA
    denoiser (evaluate.checkpoint_steps sampler steps, seeds from sample.seed_start) against the reference
    split, with kimg, at the checkpoint's step; then calls `then` (e.g. a sweep's pruning report).
    None when evaluate.checkpoint_num_images is 0."""
    e = cfg.evaluate
    if e.checkpoint_num_images == 0:
        return then
    ref = attrnet_reference(featurenet_dir, data_dir, e.reference_split, e.batch_size)

    def on_checkpoint(cur_nimg: int, ema) -> None:
        images = quick_samples(ema.D, cfg.sample, cfg.data.resolution, e.checkpoint_num_images, e.checkpoint_steps)
        tracker.log_metrics({CURVE_METRIC: ref.fd(images), "kimg": cur_nimg / 1000},
                            step=cur_nimg // cfg.train.batch_size)
        if then is not None:
            then(cur_nimg, ema)
    return on_checkpoint


def write_curve(tracker: MlflowTracker, plots, metric: str = "loss") -> None:
    """The run's `metric` against kimg as a dvc plots file (main process only: the others have no run)."""
    if plots is not None and tracker.run_id is not None:
        write_json_atomic(Path(plots), metric_curve(tracker.run_id, y=metric))


@click.command("train")
@PARAMS
@click.option("--data", type=path(exists=True), default="data/prepared", show_default=True,
              help="Prepared container, or an edm2 folder/zip, diffae LMDB or encode output.")
@click.option("--out", type=output_folder(), default="models/edm", show_default=True, help="Exported EMA model.")
@click.option("--state", type=output_folder(), default="checkpoints/edm", show_default=True,
              help="Training-state checkpoints; a rerun resumes from the latest matching one.")
@click.option("--init-model", type=path(exists=True), default=None,
              help="Start the denoiser from this exported model (e.g. models/edm) instead of random init.")
@click.option("--discriminator", type=path(exists=True), default=None,
              help="Trained discriminator folder for iw_dsm / tiw_dsm / tiw_compat (models/tiw/discriminator).")
@click.option("--plots", type=output_file(), default=None,
              help="Write the loss against kimg here (JSON rows for `dvc plots`), e.g. plots/train/edm.json.")
@click.option("--featurenet", type=path(exists=True), default=None,
              help="Score every checkpoint with this attribute net (fd_attrnet vs --data's evaluate.reference_split).")
@click.option("--fd-plots", type=output_file(), default=None,
              help="With --featurenet: the checkpoints' fd_attrnet against kimg, e.g. plots/train/edm_fd.json.")
def command(params_path, data, out, state, init_model, discriminator, plots, featurenet, fd_plots):
    """Train the diffusion model (params: model.*, method.*, edm.*, train.*), logging to MLflow.

    Multi-process: `accelerate launch` or `torchrun --nproc_per_node N $(which diffops) train`.

    \b
    Example:  diffops train --data data/prepared --out models/edm --state checkpoints/edm \\
                --featurenet models/featurenet --fd-plots plots/train/edm_fd.json
    """
    cfg = load(params_path, methods=METHODS)
    with one_line_errors(ConfigError, FileNotFoundError):
        run(cfg, data, out, state, init_model, discriminator, plots=plots, featurenet=featurenet, fd_plots=fd_plots)

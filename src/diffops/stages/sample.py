"""dvc stage `sample`: sample.num_images PNGs (times sample.seed_ranges, EDM's protocol) of an exported
denoiser with the EDM sampler, one per seed; the grid goes into the training run."""
from __future__ import annotations

import click
import mlflow

from ..artifacts.denoiser import load_denoiser
from ..sampling.edm_sampler import generate_images
from ..sampling.sample_set import sampler_kwargs, write_sample_set
from ..tracking.mlflow_run import producing_run, producing_store
from ..utils.accelerator import make_accelerator
from .common import PARAMS, load, path, output_folder


def record(cfg, model_dir, out_dir) -> None:
    """The sample grid into the run that trained the model."""
    with producing_run(cfg.tracking.experiment, model_dir) as run:
        if run:
            mlflow.log_artifact(str(out_dir / "grid.png"), "samples")


def run(cfg, model_dir, out_dir, wrap_denoiser=None):
    """wrap_denoiser(D) -> D' replaces the loaded denoiser (e.g. sampling/guidance.py's GuidedDenoiser)."""
    producing_store(model_dir)          # the run the grid goes into answers: checked before sampling
    accelerator = make_accelerator()
    D, spec = load_denoiser(model_dir, accelerator.device)
    D = wrap_denoiser(D) if wrap_denoiser is not None else D
    s = cfg.sample
    seeds = list(range(s.seed_start, s.seed_start + s.num_images * s.seed_ranges))

    def generate(chunk, device):
        return generate_images(D, chunk, spec["unet"]["resolution"], device=device, **sampler_kwargs(s))
    if write_sample_set(out_dir, seeds, generate, s.batch_size, f"sample ({2 * s.steps - 1} NFE)", accelerator):
        record(cfg, model_dir, out_dir)
    return out_dir


@click.command("sample")
@PARAMS
@click.option("--model", "model_dir", type=path(exists=True), default="models/edm", show_default=True)
@click.option("--out", type=output_folder(), default="samples/edm", show_default=True)
def command(params_path, model_dir, out):
    """Generate sample.num_images images with the EDM Heun sampler, one PNG per seed.

    \b
    Example:  diffops sample --model models/edm --out samples/edm
    """
    run(load(params_path), model_dir, out)

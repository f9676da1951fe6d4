"""dvc stage `sample-latent`: latents from the EDM sampler (one generator per seed), decoded by the VAE,
one PNG per seed (the same sample set as `sample`)."""
from __future__ import annotations

import click

from ..artifacts.denoiser import load_denoiser
from ..data.encode import load_vae
from ..sampling.sample_set import sampler_kwargs, write_sample_set
from ..training.spaces import generate_latent_images
from ..utils.accelerator import make_accelerator
from .common import PARAMS, load, path, output_folder
from .sample import record


def latent_generator(spec: dict, vae, sampler: dict):
    """(D, seeds, device) -> decoded uint8 images of a latent model (model.json's `latent` entries)."""
    lat = spec["latent"]
    return lambda D, seeds, device="cpu": generate_latent_images(
        D, seeds, vae, lat["channels"], lat["resolution"], lat["input_range"], lat["scaling_factor"],
        lat["shift_factor"], device=device, **sampler)


def run(cfg, model_dir, out_dir, vae_dir=None):
    accelerator = make_accelerator()
    D, spec = load_denoiser(model_dir, accelerator.device)
    if "latent" not in spec:
        raise ValueError(f"{model_dir}: not a latent-space model (no 'latent' in model.json); use `diffops sample`")
    s = cfg.sample
    generate = latent_generator(spec, load_vae(vae_dir or spec["latent"]["vae"], accelerator.device), sampler_kwargs(s))
    seeds = list(range(s.seed_start, s.seed_start + s.num_images))
    if write_sample_set(out_dir, seeds, lambda chunk, device: generate(D, chunk, device), s.batch_size,
                        f"sample-latent ({2 * s.steps - 1} NFE)", accelerator):
        record(cfg, model_dir, out_dir)
    return out_dir


@click.command("sample-latent")
@PARAMS
@click.option("--model", "model_dir", type=path(exists=True), default="models/edm-latent", show_default=True)
@click.option("--out", type=output_folder(), default="samples/edm-latent", show_default=True)
@click.option("--vae", "vae_dir", type=path(exists=True), default=None, help="Decoder (default: from model.json).")
def command(params_path, model_dir, out, vae_dir):
    """Sample latents with the EDM sampler (params: sample.*) and decode them, one PNG per seed.

    \b
    Example:  diffops sample-latent --model models/edm-latent --out samples/edm-latent --vae models/vae
    """
    run(load(params_path), model_dir, out, vae_dir)

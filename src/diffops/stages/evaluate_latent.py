"""dvc stage `evaluate-latent`: the decoded samples scored as `evaluate` does, with two references that say
what the number means: the untrained latent denoiser (chance) and the VAE's own reconstructions of real
images (`fd_attrnet_vae`: the floor any latent model with this VAE can reach)."""
from __future__ import annotations

import click
import torch

from ..artifacts.denoiser import denoiser_spec
from ..data.encode import decode_latents, encode_moments, load_vae
from ..data.prepare import load_split
from ..evaluation.evaluate import real_subset
from ..sampling.sample_set import read_sample_set, sampler_kwargs
from .common import PARAMS, load, path, output_file
from .evaluate import check_inputs, echo, finish, reference, scores, untrained_images
from .sample_latent import latent_generator


def run(cfg, data_dir, featurenet_dir, samples_dir, model_dir, metrics_path, vae_dir=None,
        reference_dir="data/reference", plots=None) -> dict:
    check_inputs(cfg)
    torch.manual_seed(0)
    ref = reference(cfg, data_dir, featurenet_dir)
    spec = denoiser_spec(model_dir)
    lat, bs = spec["latent"], cfg.evaluate.batch_size
    vae = load_vae(vae_dir or lat["vae"])
    samples = torch.from_numpy(read_sample_set(samples_dir))
    n = len(samples)
    metrics, record, probs = scores(cfg, ref, samples, data_dir, reference_dir)

    # References: real train images (floor), their VAE reconstructions (the latent floor), chance.
    real = torch.from_numpy(real_subset(load_split(data_dir, "train")[0], n))
    metrics["fd_attrnet_data"] = ref.fd(real)
    recon = torch.cat([decode_latents(vae, encode_moments(vae, real[i:i + bs], lat["input_range"]).chunk(2, 1)[0]
                                      * lat["scaling_factor"], lat["input_range"], lat["scaling_factor"])
                       for i in range(0, n, bs)])
    metrics["fd_attrnet_vae"] = ref.fd(recon)
    if cfg.evaluate.untrained_baseline:
        metrics["fd_attrnet_untrained"] = ref.fd(untrained_images(
            cfg, spec, n, latent_generator(spec, vae, sampler_kwargs(cfg.sample))))
    rates, table = ref.rate_metrics(probs)
    return finish(cfg, model_dir, metrics | rates, table, metrics_path, record, plots)


@click.command("evaluate-latent")
@PARAMS
@click.option("--data", type=path(exists=True), default="data/prepared", show_default=True)
@click.option("--featurenet", "featurenet_dir", type=path(exists=True), default="models/featurenet", show_default=True)
@click.option("--samples", type=path(exists=True), default="samples/edm-latent", show_default=True)
@click.option("--model", "model_dir", type=path(exists=True), default="models/edm-latent", show_default=True)
@click.option("--vae", "vae_dir", type=path(exists=True), default=None, help="VAE (default: from model.json).")
@click.option("--reference", "reference_dir", type=path(), default="data/reference", show_default=True,
              help="Reference statistics (the root pipeline's reference stage); read when evaluate.inception_weights is set.")
@click.option("--metrics", type=output_file(), default="metrics/edm-latent.json", show_default=True)
@click.option("--plots", type=output_file(), default=None, help="Per-attribute rates for `dvc plots`.")
def command(params_path, data, featurenet_dir, samples, model_dir, vae_dir, reference_dir, metrics, plots):
    """Score decoded latent samples: fd_attrnet, plus the VAE-reconstruction floor and chance.

    \b
    Example:  diffops evaluate-latent --samples samples/edm-latent --metrics metrics/edm-latent.json
    """
    echo(run(load(params_path), data, featurenet_dir, samples, model_dir, metrics, vae_dir, reference_dir, plots))

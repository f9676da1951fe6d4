"""The EDM baseline in VAE latent space (LDM/REPA style): train-latent, sample-latent, evaluate-latent.

train-latent runs the one training loop with a LatentSpace (training/spaces.py): each step draws
z = (mean + std * eps - shift) * scaling_factor from the stored moments, the denoiser learns z, and
grids are decoded by the VAE. Architecture and length come from the `latent` params section (the
rest of train.* is shared with the pixel run), so both runs live in one params.yaml.
sample-latent samples latents with the EDM sampler (one generator per seed) and decodes them;
evaluate-latent scores the decoded images in the attribute net's space, with two references that
say what the number means: the untrained latent denoiser (chance) and the VAE's own reconstructions
of real images (`fd_attrnet_vae`: the floor any latent model with this VAE can reach).
"""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import replace
from pathlib import Path

import mlflow
import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from ..config import ConfigError, ModelConfig
from ..data.encode import decode_latents, encode_moments, load_vae
from ..data.prepare import load_split
from ..evaluation.grid import save_image_grid
from ..sampling.load import load_denoiser, untrained_denoiser
from ..sampling.sample_set import sampler_kwargs, seed_chunks
from .accelerator import make_accelerator
from .spaces import LatentSpace, generate_latent_images


def latent_config(cfg):
    """The Config the loop sees: latent.* replaces the UNet, sigma_data, length, batch and lr."""
    lat = cfg.latent
    return replace(cfg, model=ModelConfig(block_channels=lat.block_channels, attention=lat.attention,
                                          layers_per_block=lat.layers_per_block, norm_num_groups=lat.norm_num_groups,
                                          dropout=cfg.model.dropout),
                   edm=replace(cfg.edm, sigma_data=lat.sigma_data),
                   train=replace(cfg.train, duration_kimg=lat.duration_kimg, batch_size=lat.batch_size, lr=lat.lr,
                                 xflip=False))       # pixel flips do not apply; latent.xflip does


def train_latent(cfg, latent_dir, out_dir, state_dir, vae_dir=None, **loop_kwargs):
    from ..tracking.mlflow_run import tracked_run
    from . import checkpoint as ckpt
    from .loop import train
    space = LatentSpace(latent_dir, vae_dir, xflip=cfg.latent.xflip)
    halvings = len(cfg.latent.block_channels) - 1
    if space.unet["resolution"] % 2 ** halvings:
        raise ConfigError("latent.block_channels", f"{len(cfg.latent.block_channels)} levels cannot halve the "
                          f"{space.unet['resolution']}-wide latents of {latent_dir} {halvings} times")
    lcfg = latent_config(cfg)
    run_id = loop_kwargs.pop("mlflow_run_id", None)
    if run_id is None and not ckpt.list_checkpoints(state_dir) and int(os.environ.get("RANK", "0")) == 0:
        # Name the run; the loop reopens it (and on resume uses the id stored in the checkpoint).
        with tracked_run(cfg.tracking.experiment, run_name=f"train-{cfg.method.name}-latent", stage="train-latent") as run:
            run_id = run.info.run_id
            mlflow.set_tags({"diffops.vae": str(space.vae_dir), "diffops.scaling_factor": str(space.scale)})
    return train(lcfg, latent_dir, out_dir, state_dir, space=space, mlflow_run_id=run_id, **loop_kwargs)


def sample_latent(cfg, model_dir, out_dir, vae_dir=None) -> Path:
    """sample.num_images PNGs (images/{seed:06d}.png) + grid.png, decoded from sampled latents."""
    accelerator = make_accelerator()
    out_dir, device = Path(out_dir), accelerator.device
    D, spec = load_denoiser(model_dir, device)
    if "latent" not in spec:
        raise ValueError(f"{model_dir}: not a latent-space model (no 'latent' in model.json); use `diffops sample`")
    lat = spec["latent"]
    vae = load_vae(vae_dir or lat["vae"], device)
    s = cfg.sample
    seeds = list(range(s.seed_start, s.seed_start + s.num_images))
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
        (tmp / "images").mkdir(parents=True)
    accelerator.wait_for_everyone()
    chunks = seed_chunks(seeds, s.batch_size, accelerator.process_index, accelerator.num_processes)
    with tqdm(total=sum(map(len, chunks)), unit="img", desc=f"sample-latent ({2 * s.steps - 1} NFE)",
              disable=not accelerator.is_main_process) as pbar:
        for chunk in chunks:
            images = generate_latent_images(D, chunk, vae, lat["channels"], lat["resolution"], lat["input_range"],
                                            lat["scaling_factor"], lat["shift_factor"], device=device,
                                            **sampler_kwargs(s))
            for seed, img in zip(chunk, images.permute(0, 2, 3, 1).numpy()):
                Image.fromarray(img).save(tmp / "images" / f"{seed:06d}.png")
            pbar.update(len(chunk))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        grid = np.stack([np.asarray(Image.open(tmp / "images" / f"{seed:06d}.png")) for seed in seeds[:64]])
        save_image_grid(grid.transpose(0, 3, 1, 2), tmp / "grid.png", ncols=8)
        shutil.rmtree(out_dir, ignore_errors=True)
        os.replace(tmp, out_dir)
        if spec.get("mlflow_run_id"):
            from ..tracking.mlflow_run import tracked_run
            with tracked_run(cfg.tracking.experiment, run_id=spec["mlflow_run_id"]):
                mlflow.log_artifact(str(out_dir / "grid.png"), "samples")
    accelerator.wait_for_everyone()
    return out_dir


def evaluate_latent(cfg, data_dir, featurenet_dir, samples_dir, model_dir, metrics_path, vae_dir=None) -> dict:
    """fd_attrnet of the decoded samples, with chance (untrained), VAE-floor and data references."""
    from ..evaluation.evaluate import _fd, _log_to_training_run, _stats, _write_json_atomic
    from ..evaluation.featurenet import attribute_rates, extract
    from ..evaluation.featurenet_stage import load_featurenet
    from ..sampling.sample_set import read_sample_set
    torch.manual_seed(0)
    net, attributes = load_featurenet(featurenet_dir)
    spec = json.loads((Path(model_dir) / "model.json").read_text())
    lat, bs, s = spec["latent"], cfg.evaluate.batch_size, cfg.sample
    vae = load_vae(vae_dir or lat["vae"])
    ref_images, _ = load_split(data_dir, cfg.evaluate.reference_split)
    ref_feats, ref_probs = extract(net, torch.from_numpy(np.ascontiguousarray(ref_images)), bs)
    ref = _stats(ref_feats)
    samples = torch.from_numpy(read_sample_set(samples_dir))
    n = len(samples)
    feats, probs = extract(net, samples, bs)
    metrics = {"fd_attrnet": _fd(_stats(feats), ref), "num_samples": n, "num_reference": len(ref_images)}

    # References: real train images (floor), their VAE reconstructions (the latent floor), chance.
    train_images, _ = load_split(data_dir, "train")
    real = torch.from_numpy(train_images[np.sort(np.random.default_rng(0).permutation(len(train_images))[:n])])
    metrics["fd_attrnet_data"] = _fd(_stats(extract(net, real, bs)[0]), ref)
    recon = torch.cat([decode_latents(vae, encode_moments(vae, real[i:i + bs], lat["input_range"]).chunk(2, 1)[0]
                                      * lat["scaling_factor"], lat["input_range"], lat["scaling_factor"])
                       for i in range(0, n, bs)])
    metrics["fd_attrnet_vae"] = _fd(_stats(extract(net, recon, bs)[0]), ref)
    if cfg.evaluate.untrained_baseline:
        D0 = untrained_denoiser(spec, cfg.train.seed)
        seeds = list(range(s.seed_start, s.seed_start + n))
        base = torch.cat([generate_latent_images(D0, seeds[i:i + s.batch_size], vae, lat["channels"],
                                                 lat["resolution"], lat["input_range"], lat["scaling_factor"],
                                                 lat["shift_factor"], **sampler_kwargs(s))
                          for i in tqdm(range(0, n, s.batch_size), desc="untrained baseline", unit="batch")])
        metrics["fd_attrnet_untrained"] = _fd(_stats(extract(net, base, bs)[0]), ref)
    rates, ref_rates = attribute_rates(probs), attribute_rates(ref_probs)
    metrics["attr_rate_mae"] = float(np.abs(rates - ref_rates).mean())
    for name, r in zip(attributes, rates):
        metrics[f"attr_rate.{name}"] = float(r)
    result = {**metrics, "attributes": {a: {"samples": float(r), "reference": float(rr)}
                                        for a, r, rr in zip(attributes, rates, ref_rates)}}
    _write_json_atomic(Path(metrics_path), result)
    _log_to_training_run(cfg, model_dir, metrics, metrics_path)
    return result

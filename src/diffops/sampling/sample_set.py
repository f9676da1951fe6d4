"""The sample stage: a folder of PNGs, one per seed, from an exported denoiser.

Seeds are split as in edm generate.py: into ceil(n / (batch * W)) * W chunks, rank r takes every
W-th chunk. Each image depends only on its seed, so the set is the same for any batch size or W.
"""
from __future__ import annotations

import math
import os
import shutil
from pathlib import Path

import mlflow
import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from ..evaluation.grid import save_image_grid
from ..training.accelerator import make_accelerator
from .edm_sampler import generate_images
from .load import load_denoiser


def sampler_kwargs(s) -> dict:
    return dict(num_steps=s.steps, sigma_min=s.sigma_min, sigma_max=s.sigma_max, rho=s.rho,
                S_churn=s.S_churn, S_min=s.S_min, S_max=s.S_max, S_noise=s.S_noise)


def seed_chunks(seeds, batch_size: int, rank: int, world: int) -> list[list[int]]:
    num_batches = math.ceil(len(seeds) / (batch_size * world)) * world
    chunks = torch.as_tensor(list(seeds)).tensor_split(num_batches)
    return [c.tolist() for c in chunks[rank::world] if len(c)]


def sample_images(cfg, model_dir: Path, out_dir: Path, wrap_denoiser=None) -> Path:
    """wrap_denoiser(D) -> D' replaces the loaded denoiser (e.g. sampling/guidance.py's GuidedDenoiser)."""
    accelerator = make_accelerator()
    out_dir = Path(out_dir)
    D, spec = load_denoiser(model_dir, accelerator.device)
    if wrap_denoiser is not None:
        D = wrap_denoiser(D)
    s = cfg.sample
    seeds = list(range(s.seed_start, s.seed_start + s.num_images))
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
        (tmp / "images").mkdir(parents=True)
    accelerator.wait_for_everyone()

    chunks = seed_chunks(seeds, s.batch_size, accelerator.process_index, accelerator.num_processes)
    nfe = 2 * s.steps - 1
    with tqdm(total=sum(map(len, chunks)), unit="img", desc=f"sample ({nfe} NFE)",
              disable=not accelerator.is_main_process) as pbar:
        for chunk in chunks:
            images = generate_images(D, chunk, spec["unet"]["resolution"], device=accelerator.device,
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


def read_sample_set(samples_dir: Path) -> np.ndarray:
    """uint8 (N, 3, H, W) from samples_dir/images/*.png, in seed order."""
    files = sorted((Path(samples_dir) / "images").glob("*.png"))
    if not files:
        raise FileNotFoundError(f"{samples_dir}/images has no PNGs; run the sample stage first")
    return np.stack([np.asarray(Image.open(f).convert("RGB")) for f in files]).transpose(0, 3, 1, 2)

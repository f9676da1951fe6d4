"""A sample set: a folder of PNGs, one per seed (images/{seed:06d}.png), and grid.png of the first 64.

Seeds are split as in edm generate.py: into ceil(n / (batch * W)) * W chunks, rank r takes every
W-th chunk. Each image depends only on its seed, so the set is the same for any batch size or W.
"""
from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from ..utils.accelerator import make_accelerator
from ..utils.grid import save_image_grid
from ..utils.io import check_replaceable, replace_dir, tmp_path
from .edm_sampler import generate_images


def sampler_kwargs(s) -> dict:
    return dict(num_steps=s.steps, sigma_min=s.sigma_min, sigma_max=s.sigma_max, rho=s.rho,
                S_churn=s.S_churn, S_min=s.S_min, S_max=s.S_max, S_noise=s.S_noise)


def quick_samples(D, s, resolution: int, num_images: int, steps: int) -> torch.Tensor:
    """uint8 samples of D on its device with the sample.* settings `s` but `num_images` seeds from
    s.seed_start and `steps` steps: the cheap sets scored at checkpoints (sweeps, the ERD curves)."""
    seeds = list(range(s.seed_start, s.seed_start + num_images))
    kwargs = sampler_kwargs(s) | {"num_steps": steps}
    device = next(D.parameters()).device
    return torch.cat([generate_images(D, seeds[i:i + s.batch_size], resolution, device=device, **kwargs)
                      for i in range(0, num_images, s.batch_size)])


def seed_chunks(seeds, batch_size: int, rank: int, world: int) -> list[list[int]]:
    num_batches = math.ceil(len(seeds) / (batch_size * world)) * world
    chunks = torch.as_tensor(list(seeds)).tensor_split(num_batches)
    return [c.tolist() for c in chunks[rank::world] if len(c)]


def write_sample_set(out_dir: Path, seeds: list[int], generate, batch_size: int, desc: str = "sample",
                     accelerator=None) -> bool:
    """generate(seeds, device) -> uint8 (N, 3, H, W); every process takes its chunks. Writes out_dir
    atomically; returns True on the main process (which should then record the set)."""
    accelerator = accelerator or make_accelerator()
    out_dir = Path(out_dir)
    tmp = tmp_path(out_dir)
    check_replaceable(out_dir)                  # on every process, so none waits for a failed one
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
        (tmp / "images").mkdir(parents=True)
    accelerator.wait_for_everyone()

    chunks = seed_chunks(seeds, batch_size, accelerator.process_index, accelerator.num_processes)
    with tqdm(total=sum(map(len, chunks)), unit="img", desc=desc, disable=not accelerator.is_main_process) as pbar:
        for chunk in chunks:
            images = generate(chunk, accelerator.device)
            for seed, img in zip(chunk, images.permute(0, 2, 3, 1).numpy()):
                Image.fromarray(img).save(tmp / "images" / f"{seed:06d}.png")
            pbar.update(len(chunk))
    accelerator.wait_for_everyone()

    if accelerator.is_main_process:
        grid = np.stack([np.asarray(Image.open(tmp / "images" / f"{seed:06d}.png")) for seed in seeds[:64]])
        save_image_grid(grid.transpose(0, 3, 1, 2), tmp / "grid.png", ncols=8)
        replace_dir(tmp, out_dir)
    accelerator.wait_for_everyone()
    return accelerator.is_main_process


def read_sample_set(samples_dir: Path) -> np.ndarray:
    """uint8 (N, 3, H, W) from samples_dir/images/*.png, in seed order."""
    files = sorted((Path(samples_dir) / "images").glob("*.png"))
    if not files:
        raise FileNotFoundError(f"{samples_dir}/images has no PNGs; run the sample stage first")
    images = []
    for f in files:
        with Image.open(f) as img:
            if img.mode != "RGB" or (images and img.size != images[0].shape[1::-1]):
                first = f"{images[0].shape[1]}×{images[0].shape[0]} RGB" if images else "RGB"
                raise ValueError(f"{f}: a {img.size[0]}×{img.size[1]} {img.mode} image in a set of {first} "
                                 f"samples; write the set again with the sample stage")
            images.append(np.asarray(img))
    return np.stack(images).transpose(0, 3, 1, 2)

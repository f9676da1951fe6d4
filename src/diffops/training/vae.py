"""The vae stage: a small diffusers AutoencoderKL for the quickstart latent path.

No pretrained VAE can be downloaded here, so the quickstart trains its own on the prepared images;
everything downstream (encode, latent training, decoding) is the code that takes a real
sd-vae-ft-mse folder. Loss: LDM's first stage without its perceptual and adversarial terms,
    L = ||x - Dec(z)||^2 (mean over pixels) + kl_weight * KL(q(z|x) || N(0, I)) / pixels,  z ~ q(z|x),
on inputs in encode.input_range. Afterwards scaling_factor = 1 / std(z) over the training set (LDM's
rule, which gave SD's 0.18215) is written into the VAE config, so encode/decode read it exactly as they
read 0.18215 from sd-vae-ft-mse.

Output folder: config.json + diffusion_pytorch_model.safetensors (diffusers) + diffops_vae.json.
"""
from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ..config import flatten
from ..data.encode import decode_latents, encode_moments, to_vae_input
from ..artifacts.vae import save_vae
from ..data.prepare import load_split
from ..utils.grid import save_image_grid


def build_vae(resolution: int, block_channels, latent_channels: int = 4, layers_per_block: int = 1,
              norm_num_groups: int = 8):
    """AutoencoderKL with len(block_channels) levels: latents are resolution / 2^(levels - 1) wide."""
    from diffusers import AutoencoderKL
    n = len(block_channels)
    return AutoencoderKL(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * n,
                         up_block_types=("UpDecoderBlock2D",) * n, block_out_channels=tuple(block_channels),
                         layers_per_block=layers_per_block, latent_channels=latent_channels,
                         norm_num_groups=norm_num_groups, sample_size=resolution,
                         mid_block_add_attention=False)


def train_vae(cfg, data_dir, out_dir, tracker, progress: bool = True) -> dict:
    """Train, fit scaling_factor, validate; save the diffusers folder into out_dir (the stage's temporary
    folder); report through `tracker` (training/tracker.py). Returns diffops_vae.json's content."""
    v, input_range = cfg.vae, cfg.encode.input_range
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    train_images, _ = load_split(data_dir, "train")
    val_images, _ = load_split(data_dir, "val")
    meta = json.loads((data_dir / "meta.json").read_text())
    R = train_images.shape[-1]
    torch.manual_seed(v.seed)
    vae = build_vae(R, v.block_channels, v.latent_channels, v.layers_per_block, v.norm_num_groups).to(device)
    opt = torch.optim.Adam(vae.parameters(), lr=v.lr)
    g = torch.Generator().manual_seed(v.seed)
    total = int(v.duration_kimg * 1000)
    train_u8 = torch.from_numpy(np.ascontiguousarray(train_images))

    tracker.log_params({k: val for k, val in flatten(cfg).items() if k.startswith(("vae.", "data.", "encode.input"))}
                       | {"vae.num_params": sum(p.numel() for p in vae.parameters())})
    tracker.log_dataset("prepared-train", meta["content_sha256"], data_dir, "training")
    cur_nimg, step, t0 = 0, 0, time.perf_counter()
    perm, pos = torch.randperm(len(train_u8), generator=g), 0
    with tqdm(total=total, unit="img", desc="vae", disable=not progress) as pbar:
        while cur_nimg < total:
            if pos + v.batch_size > len(perm):                  # a new epoch
                perm, pos = torch.randperm(len(train_u8), generator=g), 0
            idx = perm[pos:pos + v.batch_size]
            pos += v.batch_size
            x = to_vae_input(train_u8[idx], input_range).to(device)
            post = vae.encode(x).latent_dist
            eps = torch.randn(post.mean.shape, generator=g).to(device)
            rec = vae.decode(post.mean + post.std * eps).sample
            mse = (rec - x).square().mean()
            kl = post.kl().sum() / x.numel()                     # per pixel, as the MSE
            loss = mse + v.kl_weight * kl
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            cur_nimg += len(idx)
            step += 1
            pbar.update(len(idx))
            if step % 10 == 0:
                tracker.log_metrics({"vae_mse": mse.item(), "vae_kl": kl.item(), "kimg": cur_nimg / 1000}, step=step)
    seconds = time.perf_counter() - t0

    # scaling_factor = 1 / std of z over the training set (LDM), then validation reconstructions.
    vae.eval().requires_grad_(False)
    zs = []
    for i in range(0, len(train_u8), 256):
        m = encode_moments(vae, train_u8[i:i + 256], input_range)
        mean, std = m.chunk(2, dim=1)
        zs.append((mean + std * torch.randn(mean.shape, generator=g).to(m.device)).flatten().cpu())
    scaling = float(1 / torch.cat(zs).std())
    vae.register_to_config(scaling_factor=scaling)
    val_u8 = torch.from_numpy(np.ascontiguousarray(val_images[:512]))
    rec = torch.cat([decode_latents(vae, encode_moments(vae, val_u8[i:i + 256], input_range).chunk(2, 1)[0] * scaling,
                                    input_range, scaling) for i in range(0, len(val_u8), 256)])
    val_mse = float(((rec.float() - val_u8.float()) / 255).square().mean())
    result = {"val_mse_01": val_mse, "val_psnr_db": float(10 * np.log10(1 / max(val_mse, 1e-12))),
              "scaling_factor": scaling, "train_seconds": round(seconds, 1),
              "images_per_sec": round(cur_nimg / seconds, 1)}
    tracker.log_metrics({k: float(val) for k, val in result.items()})

    # The diffusers folder + what diffops needs to use it correctly (artifacts/vae.py reads it).
    info = {"input_range": input_range, "resolution": R, "latent_shape": [v.latent_channels * 2, *
            _latent_hw(R, v.block_channels)], "mlflow_run_id": tracker.run_id, **result}
    save_vae(out_dir, vae, info)
    _log_reconstructions(tracker, val_u8[:32], rec[:32])
    return info


def _latent_hw(R: int, block_channels) -> list[int]:
    f = 2 ** (len(block_channels) - 1)
    return [R // f, R // f]


def _log_reconstructions(tracker, originals: torch.Tensor, recs: torch.Tensor) -> None:
    pairs = torch.stack([originals, recs], dim=1).flatten(0, 1)      # original, reconstruction, ...
    with tempfile.TemporaryDirectory() as d:
        tracker.log_artifact(save_image_grid(pairs, Path(d) / "reconstructions.png", ncols=8), "vae")

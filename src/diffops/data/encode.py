"""VAE latents: a diffusers AutoencoderKL from a LOCAL folder, moments stored as edm2 `.npy` files.

Per image, float32 mean || std of q(z|x) (2C x H/f x W/f) is stored, as edm2 does: the latent itself
is drawn at training time, z = (mean + std * eps - shift_factor) * scaling_factor (diffusers naming;
scaling_factor = 0.18215 for sd-vae-ft-mse, read from the VAE config), and decoding divides by it.
Input range per lineage (a param): [-1, 1] = x/127.5 - 1 (REPA, SD/DiT convention) or [0, 1] = x/255
(edm2). Output range on decode mirrors it (edm2: clamp(0, 1)*255; REPA: clamp(255*(x+1)/2)), truncated
to uint8 as both do.

Latent i belongs to image i of the source in its sorted order (REPA pairs by position in the sorted
lists, edm2 by enumeration), so counts and order always match. With xflip the moments of the
horizontally flipped images go into a sibling container `<dest>-xflip` with the same names and order,
never into the same listing (that would break the pairing; REPA-derived tools interleave 2N latents).
Batching changes bits: the first `check_images` images are also encoded one at a time and the maximum
absolute deviation is recorded in meta.json (with the TF32 flags).
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from .containers import Edm2Reader, Edm2Writer, LmdbReader, dest_kind, edm2_name, encode_npy
from .sources import DOWNLOAD_HINTS

FORMAT = "diffops-latents-v1"
INPUT_RANGES = ("-1,1", "0,1")


# ----------------------------------------------------------------------------
# The VAE.

def load_vae(vae_dir, device="cpu"):
    """AutoencoderKL from a local diffusers folder (or a pipeline folder with vae/); never from a hub."""
    from diffusers import AutoencoderKL
    vae_dir = Path(vae_dir)
    sub = "vae" if (vae_dir / "vae" / "config.json").is_file() else None
    if not (vae_dir / (sub or "") / "config.json").is_file():
        raise FileNotFoundError(
            f"{vae_dir}: no diffusers AutoencoderKL here (config.json + diffusion_pytorch_model.safetensors). "
            f"Put {DOWNLOAD_HINTS['sd-vae-ft-mse']} there, or train the quickstart VAE (`dvc repro vae`)")
    os.environ["HF_HUB_OFFLINE"] = "1"                    # belt and braces: no hub access at run time
    vae = AutoencoderKL.from_pretrained(vae_dir, subfolder=sub, local_files_only=True)
    return vae.to(device).eval().requires_grad_(False)


def vae_factors(vae) -> tuple[float, float]:
    """(scaling_factor, shift_factor) from the VAE config; 0.18215 and 0 where absent."""
    scale = getattr(vae.config, "scaling_factor", None) or 0.18215
    shift = getattr(vae.config, "shift_factor", None) or 0.0
    return float(scale), float(shift)


def to_vae_input(images_u8: torch.Tensor, input_range: str) -> torch.Tensor:
    x = images_u8.to(torch.float32)
    return x / 255 if input_range == "0,1" else x / 127.5 - 1


def from_vae_output(x: torch.Tensor, input_range: str) -> torch.Tensor:
    """VAE output -> uint8, truncating as edm2 (x.clamp(0,1)*255) and REPA (clamp(255*(x+1)/2))."""
    x = x.to(torch.float32)
    x = x.clamp(0, 1) * 255 if input_range == "0,1" else torch.clamp(255 * (x + 1) / 2, 0, 255)
    return x.to(torch.uint8)


@torch.no_grad()
def encode_moments(vae, images_u8: torch.Tensor, input_range: str) -> torch.Tensor:
    """uint8 (N, 3, H, W) -> float32 (N, 2C, H/f, W/f): mean || std of q(z|x)."""
    dist = vae.encode(to_vae_input(images_u8, input_range).to(vae.device)).latent_dist
    return torch.cat([dist.mean, dist.std], dim=1).to(torch.float32)


def sample_latents(moments: torch.Tensor, generator: torch.Generator, scale: float, shift: float = 0.0):
    """z = (mean + std * eps - shift) * scale, eps ~ N(0, I) from `generator` (training-time draw)."""
    mean, std = moments.to(torch.float32).chunk(2, dim=1)
    eps = torch.randn(mean.shape, generator=generator, device=mean.device)
    return (mean + std * eps - shift) * scale


@torch.no_grad()
def decode_latents(vae, z: torch.Tensor, input_range: str, scale: float, shift: float = 0.0) -> torch.Tensor:
    """Scaled latents -> uint8 (N, 3, H, W)."""
    x = vae.decode((z.to(torch.float32) / scale + shift).to(vae.device)).sample
    return from_vae_output(x, input_range).cpu()


# ----------------------------------------------------------------------------
# Sources of uint8 images for encoding: a diffops prepared container (one split), an edm2 folder/zip
# or a diffae LMDB. Rows are read lazily per DataLoader worker.

class ImageRows(torch.utils.data.Dataset):
    def __init__(self, source, split: str = "train"):
        self.source, self.split = Path(source), split
        if (self.source / "meta.json").is_file() and (self.source / f"{split}_images.npy").is_file():
            self.kind = "prepared"
            attrs = np.load(self.source / f"{split}_attrs.npy")
            files = (self.source / f"{split}_files.txt").read_text().split()
            self.names, self.labels = files, [row.astype(int).tolist() for row in attrs]
        elif (self.source / "data.mdb").is_file():
            self.kind, self._reader = "lmdb", LmdbReader(self.source)
            self.names, self.labels = [self._reader.key(i) for i in range(len(self._reader))], None
        else:
            self.kind, self._reader = "edm2", Edm2Reader(self.source)
            self.names, self.labels = self._reader.names, self._reader.labels
            if any(n.endswith(".npy") for n in self.names):
                raise ValueError(f"{source}: holds .npy latents, not images")
        if not self.names:
            raise ValueError(f"{source}: no images")
        self._images = None

    def __len__(self):
        return len(self.names)

    def __getitem__(self, i):
        if self.kind == "prepared":
            if self._images is None:              # one memory map per worker
                self._images = np.load(self.source / f"{self.split}_images.npy", mmap_mode="r")
            return i, torch.from_numpy(np.array(self._images[i]))
        return i, torch.from_numpy(np.ascontiguousarray(self._reader[i].transpose(2, 0, 1)))


def flip_dest(dest) -> Path:
    dest = Path(dest)
    return dest.with_name(dest.stem + "-xflip" + dest.suffix) if dest.suffix else dest.with_name(dest.name + "-xflip")


def encode_dataset(source, dest, vae_dir, *, input_range: str = "-1,1", batch_size: int = 64,
                   xflip: bool = False, split: str = "train", num_workers: int = 0, check_images: int = 16,
                   device: str | None = None, progress: bool = True) -> dict:
    """Encode every image of `source` into an edm2 latent container at `dest` (folder or .zip)."""
    if input_range not in INPUT_RANGES:
        raise ValueError(f"input_range: must be one of {', '.join(INPUT_RANGES)}, got {input_range!r}")
    if dest_kind(dest) == "lmdb":
        raise ValueError(f"{dest}: latents go into an edm2 folder or .zip, not an LMDB")
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    vae = load_vae(vae_dir, device)
    _check_vae_range(vae_dir, input_range)
    scale, shift = vae_factors(vae)
    rows = ImageRows(source, split)
    loader = torch.utils.data.DataLoader(rows, batch_size=batch_size, num_workers=num_workers, shuffle=False)
    writers = [Edm2Writer(dest)] + ([Edm2Writer(flip_dest(dest))] if xflip else [])
    sha, n, max_dev, shape, t0 = hashlib.sha256(), len(rows), None, None, time.perf_counter()
    try:
        with tqdm(total=n, unit="img", desc="encode", disable=not progress) as pbar:
            for idx, images in loader:
                variants = [images] + ([images.flip(3)] if xflip else [])
                for writer, imgs in zip(writers, variants):
                    moments = encode_moments(vae, imgs, input_range).cpu()
                    if max_dev is None and writer is writers[0] and check_images:
                        k = min(check_images, len(imgs))  # batched vs one at a time, same images
                        single = torch.cat([encode_moments(vae, imgs[j:j + 1], input_range).cpu() for j in range(k)])
                        max_dev = float((single - moments[:k]).abs().max())
                    shape = list(moments.shape[1:])
                    for i, m in zip(idx.tolist(), moments.numpy()):
                        data = encode_npy(m)
                        label = rows.labels[i] if rows.labels is not None else None
                        writer.add(edm2_name(i, latent=True), data, label)
                        if writer is writers[0]:
                            sha.update(data)
                pbar.update(len(idx))
        seconds = time.perf_counter() - t0
        meta = {
            "format": FORMAT, "source": str(source), "source_kind": rows.kind, "split": split, "count": n,
            "vae": str(vae_dir), "vae_config_sha256": _vae_config_sha(vae_dir), "input_range": input_range,
            "scaling_factor": scale, "shift_factor": shift, "latent_shape": shape,
            "image_resolution": list(rows[0][1].shape[1:]), "xflip": xflip,
            "xflip_dest": str(flip_dest(dest)) if xflip else None, "batch_size": batch_size,
            "check_images": check_images, "max_abs_dev_vs_batch1": max_dev, "device": device,
            "tf32": {"matmul": torch.backends.cuda.matmul.allow_tf32, "cudnn": torch.backends.cudnn.allow_tf32},
            "torch": torch.__version__, "seconds": round(seconds, 2), "images_per_sec": round(n / seconds, 1),
            "content_sha256": sha.hexdigest(),
        }
        extra = {"meta.json": json.dumps(meta, indent=2).encode()}
        for writer in writers[1:]:
            writer.commit(extra)
        writers[0].commit(extra)
    except BaseException:
        for writer in writers:
            writer.abort()
        raise
    dev = f"; max |batched - batch-1| over {check_images} images: {max_dev:.3g}" if max_dev is not None else ""
    print(f"encode: {n} images in {seconds:.1f} s ({n / seconds:.0f} images/s, batch {batch_size}, {device}) "
          f"-> {dest} (latents {'x'.join(map(str, shape))}, scaling_factor {scale:g}){dev}")
    return meta


def read_latent_meta(path) -> dict:
    data = Edm2Reader(path).read_file("meta.json")
    if data is None:
        raise FileNotFoundError(f"{path}: no meta.json; not a latent container written by `diffops encode`")
    meta = json.loads(data)
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path}: meta.json format {meta.get('format')!r}, expected {FORMAT}")
    return meta


def _vae_config_sha(vae_dir) -> str:
    vae_dir = Path(vae_dir)
    cfg = vae_dir / "config.json" if (vae_dir / "config.json").is_file() else vae_dir / "vae" / "config.json"
    return hashlib.sha256(cfg.read_bytes()).hexdigest()


def _check_vae_range(vae_dir, input_range: str) -> None:
    """A VAE trained by diffops records its input range; encoding with the other one is an error."""
    info = Path(vae_dir) / "diffops_vae.json"
    if info.is_file():
        trained = json.loads(info.read_text()).get("input_range")
        if trained and trained != input_range:
            raise ValueError(f"encode.input_range: {input_range!r}, but {vae_dir} was trained on "
                             f"{trained!r} inputs; use {trained!r}")

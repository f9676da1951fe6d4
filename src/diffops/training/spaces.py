"""What the training loop trains on when it is not diffops' prepared pixel container: `train(space=...)`.

A space tells the loop (training/loop.py) five things; None/{} means "as for prepared pixels":
    dataset()                       rows (dicts of tensors) of the training set
    meta                            {"name", "content_sha256"}: the dataset input logged to MLflow
    unet                            build_unet overrides, e.g. {"resolution": 8, "channels": 4}
    model_input(batch, generator)   batch["image"] := the float tensor the denoiser learns (or None)
    generate(D, seeds, device, **sampler_kwargs) -> uint8 (N, 3, H, W) images for grids (or None)
    spec                            extra model.json entries (e.g. the VAE that decodes the samples)

`open_space(path, cfg)` picks one from what is at `path`: a prepared container -> None (the loop's own
path), an encode output -> LatentSpace, an edm2 folder/zip or diffae LMDB -> ContainerImageSpace.
"""
from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import torch

from ..config import ConfigError
from ..data.datasets import ContainerImageDataset, LatentDataset
from ..data.encode import FORMAT as LATENT_FORMAT, decode_latents, flip_dest, load_vae, read_latent_meta, \
    sample_latents
from ..sampling.edm_sampler import StackedRandomGenerator, edm_sampler


class LatentSpace:
    """VAE latents: rows hold mean || std; each step draws z = (mean + std eps - shift) * scale."""

    def __init__(self, latent_dir, vae_dir=None, xflip: bool = False):
        self.dir = Path(latent_dir)
        m = read_latent_meta(self.dir)
        self.channels, h, w = m["latent_shape"][0] // 2, m["latent_shape"][1], m["latent_shape"][2]
        self.scale, self.shift, self.input_range = m["scaling_factor"], m["shift_factor"], m["input_range"]
        self.vae_dir = Path(vae_dir or m["vae"])
        self.flip_dir = flip_dest(self.dir) if xflip else None
        if xflip and not m.get("xflip"):
            raise ConfigError("latent.xflip", f"true, but {latent_dir} was encoded without encode.xflip")
        self.unet = {"resolution": h, "channels": self.channels}
        self.meta = {"name": "latents-train", "content_sha256": m["content_sha256"]}
        self.spec = {"latent": {"vae": str(self.vae_dir), "scaling_factor": self.scale, "shift_factor": self.shift,
                                "input_range": self.input_range, "channels": self.channels, "resolution": h,
                                "image_resolution": m["image_resolution"], "latents": str(self.dir)}}
        self._vae = None

    def dataset(self):
        return LatentDataset(self.dir, self.flip_dir)

    def model_input(self, batch: dict, generator: torch.Generator) -> dict:
        moments = batch.pop("moments")
        if "moments_xflip" in batch:                 # the flipped image's moments, half of the time
            flipped = batch.pop("moments_xflip")
            pick = torch.rand([moments.shape[0], 1, 1, 1], generator=generator, device=moments.device) < 0.5
            moments = torch.where(pick, flipped, moments)
        batch["image"] = sample_latents(moments, generator, self.scale, self.shift)
        return batch

    def vae(self, device="cpu"):
        if self._vae is None:
            self._vae = load_vae(self.vae_dir, device)
        return self._vae

    @torch.no_grad()
    def generate(self, D, seeds, device="cpu", **sampler_kwargs) -> torch.Tensor:
        return generate_latent_images(D, seeds, self.vae(device), self.channels, self.unet["resolution"],
                                      self.input_range, self.scale, self.shift, device=device, **sampler_kwargs)


@torch.no_grad()
def generate_latent_images(D, seeds, vae, channels, resolution, input_range, scale, shift=0.0, device="cpu",
                           **sampler_kwargs) -> torch.Tensor:
    """EDM sampler in latent space (one generator per seed), then the VAE decoder -> uint8 (N, 3, H, W)."""
    rnd = StackedRandomGenerator(device, seeds)
    latents = rnd.randn([len(seeds), channels, resolution, resolution], device=device)
    z = edm_sampler(D, latents, randn_like=rnd.randn_like, **sampler_kwargs)
    return decode_latents(vae, z, input_range, scale, shift)


class ContainerImageSpace:
    """uint8 pixels from an edm2 folder/zip or a diffae LMDB; the loop's own pixel path does the rest."""
    unet, spec, model_input, generate = {}, {}, None, None

    def __init__(self, path, resolution: int):
        self.path, self.resolution = Path(path), resolution
        self.meta = {"name": "container-train", "content_sha256": container_digest(self.path)}

    def dataset(self):
        return ContainerImageDataset(self.path, self.resolution)


def container_digest(path: Path) -> str:
    """The convert report's content digest if there is one; else zip CRCs, or the folder/LMDB listing."""
    report = path.with_name(path.name + ".report.json")
    if report.is_file() and json.loads(report.read_text()).get("content_sha256"):
        return json.loads(report.read_text())["content_sha256"]
    h = hashlib.sha256()
    if path.is_file():
        with zipfile.ZipFile(path) as z:
            for info in sorted(z.infolist(), key=lambda i: i.filename):
                h.update(f"{info.filename}\t{info.CRC}\t{info.file_size}\n".encode())
    else:
        for p in sorted(path.rglob("*")):
            if p.is_file():
                h.update(f"{p.relative_to(path)}\t{p.stat().st_size}\n".encode())
    return h.hexdigest()


def open_space(path, cfg):
    """None for a prepared container (the loop's default), else the space for what is at `path`."""
    path = Path(path)
    meta = path / "meta.json"
    if path.is_dir() and meta.is_file():
        fmt = json.loads(meta.read_text()).get("format")
        if fmt == LATENT_FORMAT:
            return LatentSpace(path)
        if fmt != "diffops-prepared-v1":
            raise ValueError(f"{path}: unknown container format {fmt!r}")
        return None
    if path.suffix == ".zip":
        try:
            read_latent_meta(path)
            return LatentSpace(path)
        except FileNotFoundError:
            return ContainerImageSpace(path, cfg.data.resolution)
    if (path / "data.mdb").is_file() or (path / "dataset.json").is_file():     # diffae LMDB, edm2 folder
        return ContainerImageSpace(path, cfg.data.resolution)
    return None                      # the loop's prepared path (and its "run prepare first" message)

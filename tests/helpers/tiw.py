"""Tiny TIW-DSM fixtures: a config with the method registry, a group container, an extractor folder, a
discriminator folder."""
import hashlib
import json
from pathlib import Path

import numpy as np
import torch
from torch import nn
from safetensors.torch import save_file

from diffops.artifacts.discriminator import save_extractor
from diffops.config import load_params
from diffops.diffusion import vp
from diffops.methods import METHODS
from diffops.nets.attrnet import AttrNet
from diffops.nets.discriminator import DiscriminatorHead
from diffops.nets.extractor import TimeAttrNet

ATTRIBUTES = ["Male", "Black_Hair", "Blond_Hair"]     # the attribute net's; the bias subgroups use the first two


def tiw_config(**overrides):
    """tests/conftest.py::tiny_config, validated against the full method registry, with a 1-step discriminator."""
    raw = {
        "data": {"resolution": 8, "crop": 8},
        "model": {"block_channels": [8, 8], "attention": [False, False], "norm_num_groups": 4},
        "train": {"duration_kimg": 0.04, "batch_size": 4, "checkpoint_every_kimg": 0.02,
                  "grid_every_kimg": 1.0, "log_every_steps": 2, "num_workers": 0, "lr_rampup_kimg": 0.01},
        "sample": {"steps": 2, "num_images": 8, "batch_size": 4},
        "tracking": {"experiment": "test-tiw", "system_metrics": False, "log_checkpoints": "last"},
        "featurenet": {"attributes": ATTRIBUTES, "width": 8, "feature_dim": 16},
        "bias_split": {"attributes": ATTRIBUTES[:2]},
        "tiw_extractor": {"width": 8, "feature_dim": 16, "time_dim": 8, "steps": 4, "batch_size": 4,
                          "log_every_steps": 2},
        "discriminator": {"steps": 4, "checkpoint_every_steps": 2, "batch_size": 4, "hidden": 8, "time_dim": 8,
                          "log_every_steps": 2},
        "tiw": {"discriminator_step": 2},
    }
    raw["tiw_train"] = dict(raw["train"])
    for dotted, value in overrides.items():
        section, key = dotted.split(".")
        raw.setdefault(section, {})[key] = value
    return load_params(raw, methods=METHODS)


def write_featurenet(root: Path, width=8, feature_dim=16, seed=0) -> Path:
    torch.manual_seed(seed)
    net = AttrNet(len(ATTRIBUTES), width=width, feature_dim=feature_dim)
    root.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, root / "attrnet.safetensors")
    (root / "featurenet.json").write_text(json.dumps({"attributes": ATTRIBUTES, "width": width,
                                                      "feature_dim": feature_dim, "resolution": 8}))
    return root


def write_extractor(root: Path, width=8, feature_dim=16, time_dim=8, resolution=8, seed=0) -> Path:
    """A tiw_extractor folder (artifacts/discriminator.py format) with a random TimeAttrNet."""
    torch.manual_seed(seed)
    net = TimeAttrNet(len(ATTRIBUTES), width=width, feature_dim=feature_dim, time_dim=time_dim)
    root.mkdir(parents=True, exist_ok=True)
    save_extractor(root, net, {"attributes": ATTRIBUTES, "width": width, "feature_dim": feature_dim,
                               "time_dim": time_dim, "resolution": resolution, "beta_min": vp.BETA_MIN,
                               "beta_max": vp.BETA_MAX, "tau_eps": vp.TAU_EPS})
    return root


def write_discriminator(root: Path, steps=(2, 4), seed=0, hidden=8, time_dim=8) -> Path:
    """A discriminator folder in the format of training/discriminator.py, with random heads."""
    write_extractor(root)
    spec = {"hidden": hidden, "time_dim": time_dim, "beta_min": vp.BETA_MIN, "beta_max": vp.BETA_MAX,
            "tau_eps": vp.TAU_EPS, "checkpoints": {}}
    for i, step in enumerate(steps):
        torch.manual_seed(seed * 100 + i)
        head = DiscriminatorHead(16, hidden, time_dim)
        path = root / f"head-{step:06d}.safetensors"
        save_file({k: v.contiguous() for k, v in head.state_dict().items()}, path)
        spec["checkpoints"][str(step)] = {"file": path.name, "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    (root / "discriminator.json").write_text(json.dumps(spec))
    return root


def write_group_container(root: Path, n_ref=16, n_bias=32, resolution=8, seed=0, separable=True) -> Path:
    """An obs container: reference images bright, biased images dark (if separable), group column."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True)
    sha = hashlib.sha256()
    for split, scale in (("train", 1), ("val", 1), ("test", 1)):
        group = np.r_[np.ones(n_ref * scale, np.uint8), np.zeros(n_bias * scale, np.uint8)]
        # Reference images are bright on top, biased ones bright below (GroupNorm would erase a plain offset).
        top = np.zeros((1, 1, resolution, 1))
        top[:, :, : resolution // 2] = 1
        layout = np.where(group[:, None, None, None] == 1, top, 1 - top) if separable else top
        images = (layout * 192 + rng.integers(0, 64, (len(group), 3, resolution, resolution))).astype(np.uint8)
        attrs = rng.integers(0, 2, (len(group), 40), dtype=np.uint8)
        np.save(root / f"{split}_images.npy", images)
        np.save(root / f"{split}_attrs.npy", attrs)
        np.save(root / f"{split}_group.npy", group)
        sha.update(images.tobytes() + attrs.tobytes() + group.tobytes())
    (root / "meta.json").write_text(json.dumps({"format": "diffops-prepared-v1", "resolution": resolution,
                                                "extra_columns": ["group"], "content_sha256": sha.hexdigest()}))
    return root


class LinearLogit(nn.Module):
    """logit(x_vp, tau) = <a, x_vp> + c tau, so grad_x logit(alpha x) = alpha a."""

    def __init__(self, shape=(3, 8, 8), seed=0, scale=0.05):
        super().__init__()
        self.a = nn.Parameter(torch.randn(shape, generator=torch.Generator().manual_seed(seed)) * scale,
                              requires_grad=False)

    def forward(self, x, tau):
        return (self.a * x).flatten(1).sum(1) + 0.3 * tau


class Shrink(nn.Module):
    """A deterministic denoiser D(x; sigma) = x / (1 + sigma^2) (the optimum for N(0, 1) data)."""

    def forward(self, x, sigma):
        return x / (1 + sigma.reshape(-1, 1, 1, 1) ** 2)

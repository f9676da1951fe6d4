"""The TIW-DSM discriminator's two stage outputs.

tiw_extractor: the noise-aware extractor, extractor.safetensors + extractor.json (attributes, architecture,
resolution, VP time convention, validation scores).
tiw_discriminator: a copy of that extractor (the folder is self-contained), head-<step, 6 digits>.safetensors
per checkpoint, and discriminator.json (architecture, VP time convention, per-checkpoint validation scores,
gates and sha256).
"""
from __future__ import annotations

import json
from pathlib import Path

from safetensors.torch import save_file

from ..config import ConfigError
from ..diffusion import vp
from ..nets.discriminator import TimeDiscriminator
from ..nets.extractor import TimeAttrNet
from ..utils.io import file_sha256
from . import load_weights, read_spec

EXTRACTOR_WEIGHTS, EXTRACTOR_SPEC = "extractor.safetensors", "extractor.json"


def _check_betas(folder: Path, spec: dict) -> None:
    if (spec["beta_min"], spec["beta_max"]) != (vp.BETA_MIN, vp.BETA_MAX):
        raise ValueError(f"{folder}: trained with VP betas {spec['beta_min']}, {spec['beta_max']}, "
                         f"this code uses {vp.BETA_MIN}, {vp.BETA_MAX}")


def save_extractor(out_dir: Path, net: TimeAttrNet, spec: dict) -> None:
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, Path(out_dir) / EXTRACTOR_WEIGHTS)
    (Path(out_dir) / EXTRACTOR_SPEC).write_text(json.dumps(spec, indent=2))


def load_extractor(extractor_dir: Path) -> tuple[TimeAttrNet, dict]:
    """The frozen extractor (eval mode, requires_grad off) of a tiw_extractor output (or of a discriminator
    folder's copy) and its spec."""
    extractor_dir = Path(extractor_dir)
    spec = read_spec(extractor_dir / EXTRACTOR_SPEC, "the tiw_extractor stage")
    _check_betas(extractor_dir, spec)
    net = TimeAttrNet(len(spec["attributes"]), width=spec["width"], feature_dim=spec["feature_dim"],
                      time_dim=spec["time_dim"])
    load_weights(net, extractor_dir / EXTRACTOR_WEIGHTS, extractor_dir / EXTRACTOR_SPEC)
    return net.eval().requires_grad_(False), spec


def load_discriminator(disc_dir: Path, step: int) -> tuple[TimeDiscriminator, dict]:
    """The discriminator with the head of checkpoint `step`, frozen; and that checkpoint's spec entry,
    with `extractor_sha256` added (what a method fingerprints)."""
    disc_dir = Path(disc_dir)
    spec = read_spec(disc_dir / "discriminator.json", "the tiw_discriminator stage")
    _check_betas(disc_dir, spec)
    if str(step) not in spec["checkpoints"]:
        raise ConfigError("tiw.discriminator_step", f"{disc_dir} has no checkpoint at step {step} "
                          f"(has {', '.join(spec['checkpoints'])})")
    extractor, extractor_spec = load_extractor(disc_dir)
    net = TimeDiscriminator(extractor, hidden=spec["hidden"], time_dim=spec["time_dim"],
                            resolution=extractor_spec["resolution"])
    entry = spec["checkpoints"][str(step)]
    load_weights(net.head, disc_dir / entry["file"], disc_dir / "discriminator.json")
    return net.eval().requires_grad_(False), {**entry, "extractor_sha256": file_sha256(disc_dir / EXTRACTOR_WEIGHTS)}

"""The tiw_discriminator output: a copy of the frozen extractor (attrnet.safetensors, featurenet.json),
head-<step, 6 digits>.safetensors per checkpoint, and discriminator.json (architecture, VP time convention,
per-checkpoint validation scores and sha256)."""
from __future__ import annotations

from pathlib import Path


from ..config import ConfigError
from ..diffusion import vp
from ..nets.discriminator import TimeDiscriminator
from ..utils.io import file_sha256
from . import load_weights, read_spec
from .featurenet import load_featurenet


def load_discriminator(disc_dir: Path, step: int) -> tuple[TimeDiscriminator, dict]:
    """The discriminator with the head of checkpoint `step`, frozen; and that checkpoint's spec entry,
    with `extractor_sha256` added (what a method fingerprints)."""
    disc_dir = Path(disc_dir)
    spec = read_spec(disc_dir / "discriminator.json", "the tiw_discriminator stage")
    if (spec["beta_min"], spec["beta_max"]) != (vp.BETA_MIN, vp.BETA_MAX):
        raise ValueError(f"{disc_dir}: trained with VP betas {spec['beta_min']}, {spec['beta_max']}, "
                         f"this code uses {vp.BETA_MIN}, {vp.BETA_MAX}")
    if str(step) not in spec["checkpoints"]:
        raise ConfigError("tiw.discriminator_step", f"{disc_dir} has no checkpoint at step {step} "
                          f"(has {', '.join(spec['checkpoints'])})")
    extractor, _ = load_featurenet(disc_dir)
    net = TimeDiscriminator(extractor, hidden=spec["hidden"], time_dim=spec["time_dim"],
                            resolution=spec.get("extractor_resolution"))
    entry = spec["checkpoints"][str(step)]
    load_weights(net.head, disc_dir / entry["file"], disc_dir / "discriminator.json")
    return net.eval().requires_grad_(False), {**entry, "extractor_sha256": file_sha256(disc_dir / "attrnet.safetensors")}

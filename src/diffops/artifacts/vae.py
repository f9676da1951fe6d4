"""The VAE output: a diffusers AutoencoderKL folder plus diffops_vae.json (input range, latent shape,
validation scores, the MLflow run). Loaded by `load_vae` (a local folder only, never a hub), which also
reads a downloaded sd-vae-ft-mse."""
from __future__ import annotations

import json
from pathlib import Path

from ..data.encode import load_vae  # noqa: F401  (the loader lives beside the encoder that reads VAEs)


def save_vae(out_dir: Path, vae, info: dict) -> None:
    vae.save_pretrained(out_dir, safe_serialization=True)
    (Path(out_dir) / "diffops_vae.json").write_text(json.dumps(info, indent=2))

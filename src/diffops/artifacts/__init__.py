"""On-disk formats of stage outputs: one writer and one loader each.

    denoiser.py        exported EMA denoiser: ema.safetensors + model.json (train, tiw_train, train_latent)
    featurenet.py      attribute net: attrnet.safetensors + featurenet.json (featurenet)
    discriminator.py   time-dependent discriminator: extractor copy + head-<step> files (tiw_discriminator)
    representation.py  DiTi/PDAE encoder + shift branch: diti.json (train_diti, train_pdae)
    vae.py             diffusers AutoencoderKL folder + diffops_vae.json (vae), or a local sd-vae-ft-mse
Every spec records the MLflow run that produced it (`mlflow_run_id`), so later stages log into it.
"""
import json
from pathlib import Path


def producing_run_id(output_dir: Path, spec_name: str = "model.json") -> str | None:
    """The MLflow run that wrote a stage output (None if it was made without tracking)."""
    spec = Path(output_dir) / spec_name
    return json.loads(spec.read_text()).get("mlflow_run_id") if spec.is_file() else None

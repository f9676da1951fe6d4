"""On-disk formats of stage outputs: one writer and one loader each.

    denoiser.py        exported EMA denoiser: ema.safetensors + model.json (train, tiw_train, train_latent)
    featurenet.py      attribute net: attrnet.safetensors + featurenet.json (featurenet)
    discriminator.py   noise-aware extractor: extractor.safetensors + extractor.json (tiw_extractor);
                       time-dependent discriminator: extractor copy + head-<step> files (tiw_discriminator)
    representation.py  DiTi/PDAE encoder + shift branch: diti.json (train_diti, train_pdae)
    vae.py             diffusers AutoencoderKL folder + diffops_vae.json (vae), or a local sd-vae-ft-mse
Every spec records the MLflow run that produced it (`mlflow_run_id`), so later stages log into it.
"""
import json
from pathlib import Path


def read_spec(path: Path, made_by: str) -> dict:
    """A stage output's JSON spec; one-line errors naming the file and the stage that writes it."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not found; is {path.parent} an output of {made_by}?")
    try:
        return json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: not valid JSON ({e}); rerun {made_by} to write it again") from None


def load_weights(module, path: Path, spec_path: Path) -> None:
    """Load a safetensors state dict into `module`, or say in one line why the two do not fit."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file
    try:
        state = load_file(path)
    except (SafetensorError, OSError) as e:
        raise ValueError(f"{path}: unreadable weights ({str(e).splitlines()[0]}); the file is truncated or "
                         f"not a safetensors file, write it again") from None
    try:
        module.load_state_dict(state)
    except RuntimeError as e:
        detail = next((ln.strip() for ln in str(e).splitlines()[1:] if ln.strip()), str(e))
        raise ValueError(f"{path}: these weights are of another architecture than {spec_path} describes "
                         f"({detail[:160]}); use the weights and spec written together") from None

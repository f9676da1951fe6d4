"""The trained EMA denoiser as an MLflow pyfunc model that generates images.

    model = mlflow.pyfunc.load_model("models:/<id>")      # or runs:/<run_id>/ema_model
    images = model.predict(pd.DataFrame({"seed": [0, 1, 2]}), params={"steps": 18})
    # -> uint8 array (N, H, W, 3); image i depends only on seed i.
"""
from __future__ import annotations

import json
from pathlib import Path

import mlflow
import numpy as np


class EDMImageGenerator(mlflow.pyfunc.PythonModel):
    def load_context(self, context):
        from ..artifacts.denoiser import load_denoiser
        self.D, self.spec = load_denoiser(Path(context.artifacts["model_dir"]))

    def predict(self, context, model_input, params=None):
        from ..sampling.edm_sampler import generate_images
        params = params or {}
        seeds = [int(s) for s in np.asarray(model_input["seed"])]
        images = generate_images(self.D, seeds, self.spec["unet"]["resolution"],
                                 num_steps=int(params.get("steps", 18)),
                                 sigma_min=float(params.get("sigma_min", 0.002)),
                                 sigma_max=float(params.get("sigma_max", 80.0)),
                                 rho=float(params.get("rho", 7.0)))
        return images.permute(0, 2, 3, 1).numpy()


def log_generator_model(model_dir: Path, cfg) -> None:
    """Log model_dir (ema.safetensors + model.json) as the run's `ema_model` pyfunc model."""
    import torch
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema, TensorSpec

    R = json.loads((Path(model_dir) / "model.json").read_text())["unet"]["resolution"]
    signature = ModelSignature(
        inputs=Schema([ColSpec("long", "seed")]),
        outputs=Schema([TensorSpec(np.dtype("uint8"), (-1, R, R, 3))]),
        params=ParamSchema([ParamSpec("steps", "long", cfg.sample.steps),
                            ParamSpec("sigma_min", "double", cfg.sample.sigma_min),
                            ParamSpec("sigma_max", "double", cfg.sample.sigma_max),
                            ParamSpec("rho", "double", cfg.sample.rho)]))
    from importlib.metadata import version
    mlflow.pyfunc.log_model(
        name="ema_model", python_model=str(Path(__file__).with_name("generator_model_code.py")),
        artifacts={"model_dir": str(model_dir)}, signature=signature,
        pip_requirements=[f"diffops=={version('diffops')}", f"torch=={torch.__version__.split('+')[0]}",
                          f"diffusers=={version('diffusers')}"])

"""dvc stage `encode`: images -> VAE latents (float32 mean || std moments, edm2 layout), as the MLflow run
`encode`."""
from __future__ import annotations

import click
import mlflow

from ..data.encode import encode_dataset
from ..tracking.mlflow_run import tracked_run
from .common import PARAMS, load_with, one_line_errors, path, output_container


def run(cfg, source, dest, vae_dir, use_mlflow: bool = True) -> dict:
    e = cfg.encode
    kwargs = dict(input_range=e.input_range, batch_size=e.batch_size, xflip=e.xflip, split=e.split,
                  num_workers=e.num_workers, check_images=e.check_images)
    if not use_mlflow:
        return encode_dataset(source, dest, vae_dir, **kwargs)
    with tracked_run(cfg.tracking.experiment, run_name="encode", stage="encode"):
        mlflow.log_params({**{f"encode.{k}": v for k, v in kwargs.items()}, "encode.source": str(source),
                           "encode.dest": str(dest), "encode.vae": str(vae_dir)})
        meta = encode_dataset(source, dest, vae_dir, **kwargs)
        mlflow.log_metrics({k: float(meta[k]) for k in ("images_per_sec", "seconds", "scaling_factor", "count")}
                           | ({"max_abs_dev_vs_batch1": meta["max_abs_dev_vs_batch1"]}
                              if meta["max_abs_dev_vs_batch1"] is not None else {}))
        mlflow.log_dict(meta, "encode/meta.json")
    return meta


@click.command("encode")
@PARAMS
@click.option("--source", type=path(exists=True), required=True,
              help="Prepared container (encodes encode.split), edm2 image folder/.zip, or diffae LMDB.")
@click.option("--dest", type=output_container(), required=True, help="Latent container: an edm2 folder or .zip.")
@click.option("--vae", "vae_dir", type=path(), required=True,
              help="Local diffusers AutoencoderKL folder (e.g. models/vae or a downloaded sd-vae-ft-mse).")
@click.option("--input-range", default=None, help="-1,1 (REPA) or 0,1 (edm2) (default: encode.input_range).")
@click.option("--batch-size", type=int, default=None)
@click.option("--xflip/--no-xflip", default=None, help="Also encode flipped images into <dest>-xflip.")
@click.option("--mlflow/--no-mlflow", "use_mlflow", default=True, show_default=True, help="Log an `encode` run.")
def command(params_path, source, dest, vae_dir, input_range, batch_size, xflip, use_mlflow):
    """Encode images into VAE latents (float32 mean||std moments, edm2 layout) (params: encode.*).

    \b
    Example:  diffops encode --source data/prepared --dest data/latents --vae models/vae
    """
    cfg = load_with(params_path, "encode", {"input_range": input_range, "batch_size": batch_size,
                                            "xflip": None if xflip is None else str(xflip).lower()})
    with one_line_errors(FileNotFoundError, FileExistsError, ValueError):
        run(cfg, source, dest, vae_dir, use_mlflow)

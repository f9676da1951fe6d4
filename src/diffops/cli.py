"""diffops command line: one command per pipeline stage. Options carry paths and modes only;
every hyperparameter comes from params.yaml (change it there or with `dvc exp run -S key=value`)."""
from __future__ import annotations

import sys
from pathlib import Path

import click

PARAMS = click.option("--params", "params_path", type=click.Path(dir_okay=False, path_type=Path),
                      default="params.yaml", show_default=True, metavar="YAML",
                      help="Params file (validated before any compute).")


def _load(params_path: Path):
    from .config import ConfigError, load_params
    from .methods import METHODS
    try:
        return load_params(params_path, methods=METHODS)
    except (ConfigError, FileNotFoundError) as e:
        raise click.ClickException(str(e)) from None


def _path(**kw):
    return click.Path(path_type=Path, **kw)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="diffops")
def main():
    """Reproducible diffusion-model research: DVC stages, Accelerate training, MLflow tracking.

    \b
    Run the whole quickstart pipeline:   dvc repro
    Open the results:                    diffops ui
    """


@main.command()
@PARAMS
def check(params_path):
    """Validate a params file and print the resolved values.

    \b
    Example:  diffops check --params pipelines/celeba64/params.yaml
    """
    from .config import flatten
    cfg = _load(params_path)
    for k, v in flatten(cfg).items():
        click.echo(f"{k} = {v}")


@main.command()
@PARAMS
@click.option("--out", type=_path(), default="data/raw/celeba", show_default=True, help="Raw dataset root to write.")
@click.option("--num-workers", type=click.IntRange(min=1), default=2, show_default=True)
def generate(params_path, out, num_workers):
    """Write the synthetic faces dataset in CelebA's on-disk layout (params: generate.*).

    \b
    Example:  diffops generate --out data/raw/celeba
    """
    cfg = _load(params_path)
    from .data.synthetic_celeba import generate_celeba_like
    generate_celeba_like(out, cfg.generate.num_images, cfg.generate.seed, num_workers=num_workers)


@main.command()
@PARAMS
@click.option("--raw", type=_path(), default="data/raw/celeba", show_default=True,
              help="CelebA root: img_align_celeba/, list_attr_celeba.txt, list_eval_partition.txt.")
@click.option("--out", type=_path(), default="data/prepared", show_default=True)
def prepare(params_path, raw, out):
    """Crop and resize CelebA into the training container (params: data.*).

    \b
    Example (real CelebA):  diffops prepare --raw ~/datasets/celeba --out data/prepared
    """
    cfg = _load(params_path)
    from .data.prepare import prepare_celeba
    try:
        prepare_celeba(raw, out, crop=cfg.data.crop, resolution=cfg.data.resolution,
                       on_error=cfg.data.on_error, num_workers=cfg.data.num_workers)
    except FileNotFoundError as e:
        raise click.ClickException(str(e)) from None


@main.command()
@PARAMS
@click.option("--data", type=_path(exists=True), default="data/prepared", show_default=True)
@click.option("--out", type=_path(), default="models/featurenet", show_default=True)
def featurenet(params_path, data, out):
    """Train the attribute classifier that defines fd_attrnet (params: featurenet.*).

    \b
    Example:  diffops featurenet --data data/prepared --out models/featurenet
    """
    cfg = _load(params_path)
    from .evaluation.featurenet_stage import train_featurenet
    spec = train_featurenet(cfg, data, out)
    click.echo(f"featurenet: validation mean accuracy {spec['validation']['val_acc_mean']:.3f}")


@main.command()
@PARAMS
@click.option("--data", type=_path(exists=True), default="data/prepared", show_default=True)
@click.option("--out", type=_path(), default="models/edm", show_default=True, help="Exported EMA model.")
@click.option("--state", type=_path(), default="checkpoints/edm", show_default=True,
              help="Training-state checkpoints; a rerun resumes from the latest matching one.")
@click.option("--init-model", type=_path(exists=True), default=None,
              help="Start the denoiser from this exported model (e.g. models/edm) instead of random init.")
def train(params_path, data, out, state, init_model):
    """Train the diffusion model (params: model.*, method.*, edm.*, train.*), logging to MLflow.

    Multi-process: `accelerate launch` or `torchrun --nproc_per_node N $(which diffops) train`.

    \b
    Example:  diffops train --data data/prepared --out models/edm --state checkpoints/edm
    """
    cfg = _load(params_path)
    from .training.loop import train as train_loop
    train_loop(cfg, data, out, state, init_model_dir=init_model)


@main.command()
@PARAMS
@click.option("--model", "model_dir", type=_path(exists=True), default="models/edm", show_default=True)
@click.option("--out", type=_path(), default="samples/edm", show_default=True)
def sample(params_path, model_dir, out):
    """Generate sample.num_images images with the EDM Heun sampler, one PNG per seed.

    \b
    Example:  diffops sample --model models/edm --out samples/edm
    """
    cfg = _load(params_path)
    from .sampling.sample_set import sample_images
    sample_images(cfg, model_dir, out)


@main.command()
@PARAMS
@click.option("--data", type=_path(exists=True), default="data/prepared", show_default=True)
@click.option("--featurenet", "featurenet_dir", type=_path(exists=True), default="models/featurenet", show_default=True)
@click.option("--samples", type=_path(exists=True), default="samples/edm", show_default=True)
@click.option("--model", "model_dir", type=_path(exists=True), default="models/edm", show_default=True)
@click.option("--metrics", type=_path(), default="metrics/edm.json", show_default=True)
def evaluate(params_path, data, featurenet_dir, samples, model_dir, metrics):
    """Score samples: fd_attrnet and attribute rates; logged into the training run.

    \b
    Example:  diffops evaluate --samples samples/edm --metrics metrics/edm.json
    """
    cfg = _load(params_path)
    from .evaluation.evaluate import evaluate as run_evaluate
    result = run_evaluate(cfg, data, featurenet_dir, samples, model_dir, metrics)
    for k in ("fd_attrnet", "fd_attrnet_untrained", "fd_attrnet_data", "attr_rate_mae"):
        if k in result:
            click.echo(f"{k:>22} = {result[k]:.4f}")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Bind address (loopback by default).")
@click.option("--port", type=click.IntRange(1, 65535), default=5000, show_default=True)
def ui(host, port):
    """Open the MLflow UI on the project's local store.

    \b
    Example:  diffops ui   # then browse http://127.0.0.1:5000
    """
    import os
    from .tracking.mlflow_run import project_root, tracking_uri
    root = project_root()
    uri = tracking_uri(root)
    click.echo(f"MLflow UI for {uri} on http://{host}:{port}")
    os.execvp(sys.executable, [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri,
                               "--default-artifact-root", (root / "mlruns" / "artifacts").resolve().as_uri(),
                               "--host", host, "--port", str(port)])


if __name__ == "__main__":
    main()

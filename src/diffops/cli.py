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
                       on_error=cfg.data.on_error, num_workers=cfg.data.num_workers, transform=cfg.data.transform)
    except (FileNotFoundError, ValueError) as e:
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
@click.option("--discriminator", type=_path(exists=True), default=None,
              help="Trained discriminator folder for iw_dsm / tiw_dsm / tiw_compat (models/tiw/discriminator).")
def train(params_path, data, out, state, init_model, discriminator):
    """Train the diffusion model (params: model.*, method.*, edm.*, train.*), logging to MLflow.

    Multi-process: `accelerate launch` or `torchrun --nproc_per_node N $(which diffops) train`.

    \b
    Example:  diffops train --data data/prepared --out models/edm --state checkpoints/edm
    """
    cfg = _load(params_path)
    from .training.loop import train as train_loop
    inputs = {"discriminator": discriminator} if discriminator is not None else None
    from .training.spaces import open_space     # --data may also be an edm2 folder/zip or diffae LMDB
    train_loop(cfg, data, out, state, init_model_dir=init_model, method_inputs=inputs, space=open_space(data, cfg))


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


@main.command()
@PARAMS
@click.argument("study_file", required=False, type=_path(exists=True, dir_okay=False))
@click.option("--study", "study_name", default=None, metavar="NAME",
              help="Study name in the storage (default: sweep.study). Workers with one name share the study.")
@click.option("--n-trials", type=click.IntRange(min=0), default=None,
              help="Run at most this many trials in this worker (default: until the study has sweep.n_trials; "
                   "0: only export the best params and plots).")
@click.option("--storage", default=None, metavar="URL",
              help="Optuna storage (default: sweep.storage): a journal file path, or postgresql://... for many machines.")
@click.option("--data", type=_path(exists=True), default=None,
              help="Training data (default: data/prepared; data/tiw/obs for sweep.objective tiw).")
@click.option("--featurenet", "featurenet_dir", type=_path(exists=True), default="models/featurenet", show_default=True)
@click.option("--edm", "edm_dir", type=_path(), default="models/edm", show_default=True,
              help="sweep.objective diti: the frozen EDM model.")
@click.option("--discriminator", "discriminator_dir", type=_path(), default="models/tiw/discriminator",
              show_default=True, help="sweep.objective tiw: the time-dependent discriminator.")
@click.option("--out", type=_path(), default=None, help="Best params and plots (default: sweeps/<study>).")
def sweep(params_path, study_file, study_name, n_trials, storage, data, featurenet_dir, edm_dir, discriminator_dir,
          out):
    """Run an Optuna study: each trial runs a stage chain on a short budget and is scored.

    The study is the `sweep:` block of the params file, or of STUDY_FILE (a YAML file of params sections
    that update the params file's, e.g. studies/diti-k.yaml). sweep.objective picks what a trial runs:
    edm (train, sample, evaluate), diti (train_diti on models/edm, linear probe) or tiw (TIW-DSM on
    models/tiw/discriminator, bias evaluation). Every trial is a nested MLflow run under the study's run;
    trials report a cheap intermediate score at each checkpoint and are pruned early. Start several
    workers on one study to run trials in parallel. The best params are written as params.yaml keys, with
    the `dvc exp run -S ...` command that applies them.

    \b
    Example:  diffops sweep --n-trials 2            # one worker, two trials of the study edm-baseline
              diffops sweep & diffops sweep & wait  # two workers on one machine
              diffops sweep studies/diti-k.yaml     # DiTi's k against the probe (after dvc repro train)
              diffops sweep studies/tiw-weighting.yaml   # TIW-DSM's knobs (after dvc repro tiw_discriminator)
              diffops dashboard                     # optuna-dashboard on http://127.0.0.1:8080
    """
    from .config import ConfigError
    from .sweeps.study import StudyMismatch
    from .sweeps.worker import read_raw, run_sweep
    try:
        objective = (read_raw(params_path, study_file).get("sweep") or {}).get("objective", "edm")
        data = data or Path("data/tiw/obs" if objective == "tiw" else "data/prepared")
        if not data.exists():
            raise click.ClickException(f"{data}: no such folder; run `dvc repro "
                                       f"{'tiw_split' if objective == 'tiw' else 'prepare'}` first (or pass --data)")
        run_sweep(params_path, data, featurenet_dir, study_file=study_file,
                  inputs={"edm": edm_dir, "discriminator": discriminator_dir}, study_name=study_name,
                  n_trials=n_trials, storage=storage, out_dir=out, echo=click.echo)
    except (ConfigError, StudyMismatch, FileNotFoundError) as e:
        raise click.ClickException(str(e)) from None


@main.command()
@PARAMS
@click.option("--storage", default=None, metavar="URL", help="Optuna storage (default: sweep.storage).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Bind address (loopback by default).")
@click.option("--port", type=click.IntRange(1, 65535), default=8080, show_default=True)
def dashboard(params_path, storage, host, port):
    """Open optuna-dashboard on the sweeps' Optuna storage (the MLflow side: diffops ui).

    \b
    Example:  diffops dashboard   # then browse http://127.0.0.1:8080
    """
    import os
    from .tracking.mlflow_run import project_root
    url = storage or _load(params_path).sweep.storage
    if "://" not in url:
        path = Path(url) if Path(url).is_absolute() else project_root() / url
        if not path.exists():
            raise click.ClickException(f"{path}: no Optuna journal yet; run `diffops sweep` first")
        url = str(path)
    click.echo(f"optuna-dashboard for {url} on http://{host}:{port}")
    exe = Path(sys.executable).with_name("optuna-dashboard")     # the console script of this environment
    exe = str(exe) if exe.exists() else "optuna-dashboard"
    os.execvp(exe, [exe, url, "--host", host, "--port", str(port)])


# ----------------------------------------------------------------------------
# TIW-DSM: biased/reference split -> discriminator -> four losses -> samples -> bias evaluation -> table.

@main.group()
def tiw():
    """TIW-DSM on a biased dataset (dvc stages tiw_*): split, discriminator, losses, bias table.

    \b
    Run the whole comparison:  dvc repro tiw_table
    Look at the table:         cat metrics/tiw.md
    """


@tiw.command("split")
@PARAMS
@click.option("--data", type=_path(exists=True), default="data/prepared", show_default=True)
@click.option("--out", type=_path(), default="data/tiw", show_default=True,
              help="Writes OUT/obs (biased + reference, group column), OUT/ref, OUT/split.json.")
def tiw_split(params_path, data, out):
    """Biased set + unbiased reference set from a prepared container (params: bias_split.*).

    \b
    Example:  diffops tiw split --data data/prepared --out data/tiw
    """
    cfg = _load(params_path)
    from .data.bias_split import bias_split_stage
    report = bias_split_stage(cfg, data, out)
    s = report["splits"]["train"]
    click.echo(f"tiw split: {s['num_biased']} biased + {s['num_reference']} reference; subgroups "
               f"{report['subgroups']}: all {_pct(s['proportions_all'])}, biased {_pct(s['proportions_biased'])}")


def _pct(p):
    return "/".join(f"{100 * v:.1f}" for v in p)


@tiw.command("discriminator")
@PARAMS
@click.option("--data", type=_path(exists=True), default="data/tiw/obs", show_default=True)
@click.option("--featurenet", "featurenet_dir", type=_path(exists=True), default="models/featurenet", show_default=True)
@click.option("--out", type=_path(), default="models/tiw/discriminator", show_default=True)
def tiw_discriminator(params_path, data, featurenet_dir, out):
    """Train the time-dependent discriminator reference-vs-biased (params: discriminator.*).

    \b
    Example:  diffops tiw discriminator --data data/tiw/obs --out models/tiw/discriminator
    """
    cfg = _load(params_path)
    from .training.discriminator import train_discriminator
    spec = train_discriminator(cfg, data, featurenet_dir, out)
    for step, c in spec["checkpoints"].items():
        click.echo(f"step {step:>6}: val_bce {c.get('val_bce', float('nan')):.4f}  "
                   f"val_acc {c.get('val_acc', float('nan')):.3f}  val_bce_clean {c.get('val_bce_clean', float('nan')):.4f}")


LOSS = click.option("--loss", type=click.Choice(["dsm_ref", "dsm_obs", "iw_dsm", "tiw_dsm", "tiw_compat"]),
                    required=True, help="Which loss (a mode of methods/tiw_dsm.py).")


@tiw.command("train")
@PARAMS
@LOSS
@click.option("--data", type=_path(exists=True), default="data/tiw/obs", show_default=True,
              help="data/tiw/obs, or data/tiw/ref for dsm_ref.")
@click.option("--discriminator", type=_path(exists=True), default="models/tiw/discriminator", show_default=True)
@click.option("--out", type=_path(), required=True, help="Exported EMA model, e.g. models/tiw/tiw_dsm.")
@click.option("--state", type=_path(), required=True, help="Checkpoints, e.g. checkpoints/tiw/tiw_dsm.")
def tiw_train(params_path, loss, data, discriminator, out, state):
    """Train one loss of the comparison: `diffops train` with method.name = LOSS and the tiw.* budget.

    \b
    Example:  diffops tiw train --loss tiw_dsm --out models/tiw/tiw_dsm --state checkpoints/tiw/tiw_dsm
    """
    from .methods.tiw_dsm import NEEDS_DISCRIMINATOR, comparison_config
    cfg = comparison_config(_load(params_path), loss)
    from .training.loop import train as train_loop
    inputs = {"discriminator": discriminator} if loss in NEEDS_DISCRIMINATOR else None
    train_loop(cfg, data, out, state, method_inputs=inputs)


@tiw.command("sample")
@PARAMS
@LOSS
@click.option("--model", "model_dir", type=_path(exists=True), required=True)
@click.option("--out", type=_path(), required=True)
@click.option("--guidance", "guidance_dir", type=_path(exists=True), default=None,
              help="Discriminator folder: sample with discriminator guidance (params tiw.guidance_*).")
def tiw_sample(params_path, loss, model_dir, out, guidance_dir):
    """Sample one loss's model with tiw.sample_num_images / tiw.sample_steps (other sample.* shared).

    \b
    Example:  diffops tiw sample --loss tiw_dsm --model models/tiw/tiw_dsm --out samples/tiw/tiw_dsm
              diffops tiw sample --loss dsm_obs --model models/tiw/dsm_obs --out samples/tiw/dsm_obs_dg \\
                --guidance models/tiw/discriminator      # DSM(obs) + discriminator guidance
    """
    from .methods.tiw_dsm import comparison_config
    cfg = comparison_config(_load(params_path), loss)
    from .sampling.sample_set import sample_images

    def guided(D):
        from .sampling.guidance import GuidedDenoiser
        from .training.discriminator import load_discriminator
        t = cfg.tiw
        disc, _ = load_discriminator(guidance_dir, t.discriminator_step)
        return GuidedDenoiser(D, disc.to(next(D.parameters()).device), t.guidance_weight,
                              t.guidance_tau_min, t.guidance_tau_max)
    sample_images(cfg, model_dir, out, wrap_denoiser=guided if guidance_dir is not None else None)


@tiw.command("evaluate")
@PARAMS
@LOSS
@click.option("--data", type=_path(exists=True), default="data/tiw/obs", show_default=True,
              help="Its test split is the unbiased distribution.")
@click.option("--featurenet", "featurenet_dir", type=_path(exists=True), default="models/featurenet", show_default=True)
@click.option("--samples", type=_path(exists=True), required=True)
@click.option("--model", "model_dir", type=_path(exists=True), required=True)
@click.option("--metrics", type=_path(), required=True)
def tiw_evaluate(params_path, loss, data, featurenet_dir, samples, model_dir, metrics):
    """fd_attrnet and subgroup proportions of one loss's samples vs the unbiased test split.

    \b
    Example:  diffops tiw evaluate --loss tiw_dsm --samples samples/tiw/tiw_dsm --model models/tiw/tiw_dsm \\
                --metrics metrics/tiw/tiw_dsm.json
    """
    cfg = _load(params_path)
    from .evaluation.bias import evaluate_bias
    m = evaluate_bias(cfg, data, featurenet_dir, samples, model_dir, metrics, loss)
    click.echo(f"{loss}: fd_attrnet {m['fd_attrnet']:.4f}  subgroup_tv {m['subgroup_tv']:.4f}")


@tiw.command("table")
@PARAMS
@click.option("--data", type=_path(exists=True), default="data/tiw/obs", show_default=True)
@click.option("--prepared", type=_path(exists=True), default="data/prepared", show_default=True,
              help="Unsplit container: the FD floor of as many unbiased real images as samples.")
@click.option("--featurenet", "featurenet_dir", type=_path(exists=True), default="models/featurenet", show_default=True)
@click.option("--samples-dir", type=_path(exists=True), default="samples/tiw", show_default=True,
              help="Holds <loss>/ sample sets of dsm_ref, dsm_obs, iw_dsm, tiw_dsm (those present are scored).")
@click.option("--models-dir", type=_path(exists=True), default="models/tiw", show_default=True,
              help="Holds <loss>/ exported models (their MLflow runs receive the scores).")
@click.option("--metrics-dir", type=_path(), default="metrics/tiw", show_default=True,
              help="Per-loss scores are written here as <loss>.json.")
@click.option("--out", type=_path(), default="metrics/tiw.json", show_default=True,
              help="DVC metrics file; a markdown table is written beside it (.md).")
def tiw_table(params_path, data, prepared, featurenet_dir, samples_dir, models_dir, metrics_dir, out):
    """Score every loss's samples and write the table in the paper's shape (fd_attrnet, bias, subgroup %).

    \b
    Example:  diffops tiw table --samples-dir samples/tiw --models-dir models/tiw --out metrics/tiw.json
              cat metrics/tiw.md
    """
    cfg = _load(params_path)
    from .evaluation.bias import LOSSES, markdown_table, results_table
    runs = {loss: (samples_dir / loss, models_dir / loss) for loss in LOSSES if (samples_dir / loss).is_dir()}
    table = results_table(cfg, data, featurenet_dir, runs, metrics_dir, out, out.with_suffix(".md"),
                          prepared_dir=prepared)
    click.echo(markdown_table(table))
    for k, v in table["checks"].items():
        click.echo(f"{k}: {v}")


# ----------------------------------------------------------------------------
# Data platform: convert, encode, raw-data checks, the quickstart VAE and the latent-space EDM run.

def _load_with(params_path: Path, section: str, options: dict):
    """Params with command-line options as `section.key` overrides, validated like the file itself.
    A missing params file means the defaults (convert/encode also run outside a project)."""
    from .config import ConfigError, apply_overrides, load_params
    from .config.load import _parse_yaml
    from .methods import METHODS
    raw = _parse_yaml(params_path.read_text(), str(params_path)) if params_path.exists() else {}
    overrides = [f"{section}.{k}={v}" for k, v in options.items() if v is not None]
    try:
        return load_params(apply_overrides(raw, overrides), methods=METHODS)
    except ConfigError as e:
        raise click.ClickException(str(e) + (" (from the command line)" if overrides else "")) from None


@main.command()
@PARAMS
@click.option("--source", type=_path(exists=True), required=True,
              help="Image folder (e.g. ImageNet class/xxx.JPEG tree), edm2 folder or .zip, diffae LMDB folder, or CelebA root.")
@click.option("--dest", type=_path(), required=True, help="By suffix: .zip (edm2 zip), .lmdb (diffae LMDB), else an edm2 folder.")
@click.option("--transform", default=None, help="none, center-crop, center-crop-wide, center-crop-dhariwal, squash, "
              "celeba-crop, d2c-crop (default: convert.transform).")
@click.option("--resolution", default=None, metavar="R|WxH", help="Output side, or WxH for center-crop-wide.")
@click.option("--filter", "resample", default=None, help="Resampling filter (default: convert.filter).")
@click.option("--num-workers", type=int, default=None)
@click.option("--batch-size", type=int, default=None, help="Images per worker task.")
@click.option("--on-error", type=click.Choice(["skip", "fail"]), default=None)
@click.option("--max-images", type=int, default=None)
@click.option("--report", type=_path(), default=None, help="Report file (default: <dest>.report.json).")
@click.option("--mlflow/--no-mlflow", "use_mlflow", default=True, show_default=True, help="Log a `convert` run.")
def convert(params_path, source, dest, transform, resolution, resample, num_workers, batch_size, on_error,
            max_images, report, use_mlflow):
    """Convert images into an edm2 folder/zip or a diffae LMDB, in parallel (params: convert.*; options override).

    Decode, transform and encode run in --num-workers processes; the output is written in index order
    into <dest>.tmp and renamed when complete. Unreadable or too-small inputs are listed in the report.

    \b
    Example:  diffops convert --source ~/imagenet/train --dest data/img64.zip --transform center-crop-dhariwal --resolution 64
              diffops convert --source ~/celeba --dest data/celeba.lmdb --transform none --resolution 0
    """
    height = None
    if resolution is not None and "x" in str(resolution):
        resolution, height = str(resolution).split("x", 1)
        height = None if height == resolution else height
    cfg = _load_with(params_path, "convert", {"transform": transform, "resolution": resolution, "height": height,
                                              "filter": resample, "num_workers": num_workers, "batch_size": batch_size,
                                              "on_error": on_error, "max_images": max_images})
    from .data.convert import ConvertError, convert_logged
    try:
        convert_logged(cfg, source, dest, report, use_mlflow)
    except (ConvertError, FileNotFoundError, FileExistsError, ValueError) as e:
        raise click.ClickException(str(e)) from None


@main.command()
@PARAMS
@click.option("--source", type=_path(exists=True), required=True,
              help="Prepared container (encodes encode.split), edm2 image folder/.zip, or diffae LMDB.")
@click.option("--dest", type=_path(), required=True, help="Latent container: an edm2 folder or .zip.")
@click.option("--vae", "vae_dir", type=_path(), required=True,
              help="Local diffusers AutoencoderKL folder (e.g. models/vae or a downloaded sd-vae-ft-mse).")
@click.option("--input-range", default=None, help="-1,1 (REPA) or 0,1 (edm2) (default: encode.input_range).")
@click.option("--batch-size", type=int, default=None)
@click.option("--xflip/--no-xflip", default=None, help="Also encode flipped images into <dest>-xflip.")
@click.option("--mlflow/--no-mlflow", "use_mlflow", default=True, show_default=True, help="Log an `encode` run.")
def encode(params_path, source, dest, vae_dir, input_range, batch_size, xflip, use_mlflow):
    """Encode images into VAE latents (float32 mean||std moments, edm2 layout) (params: encode.*).

    \b
    Example:  diffops encode --source data/prepared --dest data/latents --vae models/vae
    """
    cfg = _load_with(params_path, "encode", {"input_range": input_range, "batch_size": batch_size,
                                             "xflip": None if xflip is None else str(xflip).lower()})
    from .data.encode import encode_logged
    try:
        encode_logged(cfg, source, dest, vae_dir, use_mlflow)
    except (FileNotFoundError, FileExistsError, ValueError) as e:
        raise click.ClickException(str(e)) from None


@main.command("check-raw")
@click.option("--path", "raw", type=_path(), required=True, help="Where the raw data must be.")
@click.option("--dataset", required=True, type=click.Choice(["celeba", "imagenet", "ffhq", "sd-vae-ft-mse"]),
              help="Which download instructions to give if it is missing.")
@click.option("--out", type=_path(), default=None, help="Listing manifest (names, sizes, mtimes) that stages depend on.")
def check_raw(raw, dataset, out):
    """Stop with what to download and where if raw data is missing; else write its listing manifest.

    \b
    Example:  diffops check-raw --path data/raw/imagenet/train --dataset imagenet --out data/raw-imagenet.json
    """
    from .data.sources import check_raw as run_check
    try:
        m = run_check(raw, dataset, out)
    except FileNotFoundError as e:
        raise click.ClickException(str(e)) from None
    click.echo(f"{raw}: {m['files']} files (listing {m['listing_sha256'][:12]})")


@main.command()
@PARAMS
@click.option("--data", type=_path(exists=True), default="data/prepared", show_default=True)
@click.option("--out", type=_path(), default="models/vae", show_default=True)
def vae(params_path, data, out):
    """Train the quickstart's small AutoencoderKL on the prepared images (params: vae.*, encode.input_range).

    \b
    Example:  diffops vae --data data/prepared --out models/vae
    """
    cfg = _load(params_path)
    from .training.vae import train_vae
    train_vae(cfg, data, out)


@main.command("train-latent")
@PARAMS
@click.option("--data", type=_path(exists=True), default="data/latents", show_default=True, help="encode output.")
@click.option("--out", type=_path(), default="models/edm-latent", show_default=True)
@click.option("--state", type=_path(), default="checkpoints/edm-latent", show_default=True)
@click.option("--vae", "vae_dir", type=_path(exists=True), default=None, help="VAE for grids (default: the one that encoded).")
def train_latent(params_path, data, out, state, vae_dir):
    """Train the EDM baseline on VAE latents (params: latent.*, other train.*, edm.P_*), logging to MLflow.

    \b
    Example:  diffops train-latent --data data/latents --out models/edm-latent --state checkpoints/edm-latent
    """
    cfg = _load(params_path)
    from .config import ConfigError
    from .training.latent import train_latent as run
    try:
        run(cfg, data, out, state, vae_dir)
    except ConfigError as e:
        raise click.ClickException(str(e)) from None


@main.command("sample-latent")
@PARAMS
@click.option("--model", "model_dir", type=_path(exists=True), default="models/edm-latent", show_default=True)
@click.option("--out", type=_path(), default="samples/edm-latent", show_default=True)
@click.option("--vae", "vae_dir", type=_path(exists=True), default=None, help="Decoder (default: from model.json).")
def sample_latent(params_path, model_dir, out, vae_dir):
    """Sample latents with the EDM sampler (params: sample.*) and decode them, one PNG per seed.

    \b
    Example:  diffops sample-latent --model models/edm-latent --out samples/edm-latent --vae models/vae
    """
    cfg = _load(params_path)
    from .training.latent import sample_latent as run
    run(cfg, model_dir, out, vae_dir)


@main.command("evaluate-latent")
@PARAMS
@click.option("--data", type=_path(exists=True), default="data/prepared", show_default=True)
@click.option("--featurenet", "featurenet_dir", type=_path(exists=True), default="models/featurenet", show_default=True)
@click.option("--samples", type=_path(exists=True), default="samples/edm-latent", show_default=True)
@click.option("--model", "model_dir", type=_path(exists=True), default="models/edm-latent", show_default=True)
@click.option("--vae", "vae_dir", type=_path(exists=True), default=None, help="VAE (default: from model.json).")
@click.option("--metrics", type=_path(), default="metrics/edm-latent.json", show_default=True)
def evaluate_latent(params_path, data, featurenet_dir, samples, model_dir, vae_dir, metrics):
    """Score decoded latent samples: fd_attrnet, plus the VAE-reconstruction floor and chance.

    \b
    Example:  diffops evaluate-latent --samples samples/edm-latent --metrics metrics/edm-latent.json
    """
    cfg = _load(params_path)
    from .training.latent import evaluate_latent as run
    result = run(cfg, data, featurenet_dir, samples, model_dir, metrics, vae_dir)
    for k in ("fd_attrnet", "fd_attrnet_vae", "fd_attrnet_untrained", "fd_attrnet_data", "attr_rate_mae"):
        if k in result:
            click.echo(f"{k:>22} = {result[k]:.4f}")



@main.group()
def diti():
    """DiTi / PDAE representation learning on the frozen EDM model (params: diti.*).

    \b
    Example:  diffops diti train --method diti && diffops diti train --method pdae
              diffops diti probe && diffops diti counterfactual && diffops diti manipulate
    """


@diti.command("train")
@PARAMS
@click.option("--method", type=click.Choice(["diti", "pdae"]), default="diti", show_default=True,
              help="diti: z in diti.k time-step chunks; pdae: the same with k = 1.")
@click.option("--data", type=_path(exists=True), default="data/prepared", show_default=True)
@click.option("--edm", "edm_dir", type=_path(exists=True), default="models/edm", show_default=True,
              help="The frozen pre-trained DPM (an exported EDM model).")
@click.option("--out", type=_path(), default=None, help="EMA encoder + shift branch [default: models/<method>].")
@click.option("--state", type=_path(), default=None, help="Resumable checkpoints [default: checkpoints/<method>].")
def diti_train(params_path, method, data, edm_dir, out, state):
    """Train the encoder and shift branch around the frozen EDM model, logging to MLflow.

    Multi-process: `torchrun --nproc_per_node N $(which diffops) diti train`; diti.batch_size is global
    and diti.lr is used as is (the reference scales lr by local batch / 32).

    \b
    Example:  diffops diti train --method diti --data data/prepared --edm models/edm
    """
    cfg = _load(params_path)
    from .training.representation import train_representation
    train_representation(cfg, method, data, edm_dir, out or Path("models") / method,
                         state or Path("checkpoints") / method)


@diti.command("probe")
@PARAMS
@click.option("--data", type=_path(exists=True), default="data/prepared", show_default=True)
@click.option("--model", "models", type=_path(exists=True), multiple=True, default=["models/diti", "models/pdae"],
              show_default=True, help="Trained representations (repeat); the first run receives the comparison.")
@click.option("--metrics", type=_path(), default="metrics/diti_probe.json", show_default=True)
@click.option("--no-baselines", is_flag=True, help="Skip the random-encoder and pixel baselines.")
def diti_probe(params_path, data, models, metrics, no_baselines):
    """Linear probe (mean AP over the 40 attributes) of DiTi, PDAE, a random encoder and the pixels.

    \b
    Example:  diffops diti probe --model models/diti --model models/pdae --metrics metrics/diti_probe.json
    """
    cfg = _load(params_path)
    from .evaluation.probe import run_probe
    named = {Path(m).name: m for m in models}
    run_probe(cfg, data, named, metrics, baselines=not no_baselines)


@diti.command("counterfactual")
@PARAMS
@click.option("--data", type=_path(exists=True), default="data/prepared", show_default=True)
@click.option("--model", "model_dir", type=_path(exists=True), default="models/diti", show_default=True)
@click.option("--out", type=_path(), default="samples/diti/counterfactual", show_default=True)
def diti_counterfactual(params_path, data, model_dir, out):
    """Interpolate chunks of z between test images and decode with masked DDIM; a grid into the DiTi run.

    \b
    Example:  diffops diti counterfactual --model models/diti --out samples/diti/counterfactual
    """
    cfg = _load(params_path)
    from .evaluation.counterfactual import run_counterfactual
    layout = run_counterfactual(cfg, data, model_dir, out)
    click.echo(f"{out}/grid.png: {len(layout['rows'])} rows x {len(layout['columns'])} columns")


@diti.command("manipulate")
@PARAMS
@click.option("--data", type=_path(exists=True), default="data/prepared", show_default=True)
@click.option("--model", "model_dir", type=_path(exists=True), default="models/diti", show_default=True)
@click.option("--featurenet", "featurenet_dir", type=_path(exists=True), default="models/featurenet", show_default=True)
@click.option("--out", type=_path(), default="samples/diti/manipulation", show_default=True)
@click.option("--metrics", type=_path(), default="metrics/diti_manipulation.json", show_default=True)
def diti_manipulate(params_path, data, model_dir, featurenet_dir, out, metrics):
    """ProbMask edit of diti.manip_attribute with diti.manip_dims dims; the attribute net's change rate.

    \b
    Example:  diffops diti manipulate --model models/diti --featurenet models/featurenet
    """
    cfg = _load(params_path)
    from .evaluation.counterfactual import run_manipulation
    m = run_manipulation(cfg, data, model_dir, featurenet_dir, out, metrics)
    click.echo(f"{m['manip_attribute']}: attribute-net change rate {m['manip_change_rate']:.3f} "
               f"(random direction {m['manip_change_rate_random']:.3f}); rate recon {m['manip_rate_recon']:.3f} "
               f"-> edited {m['manip_rate_edited']:.3f}")


if __name__ == "__main__":
    main()

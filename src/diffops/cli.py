"""diffops command line: one command per pipeline stage (generated from diffops.stages), plus check, ui,
dashboard and sweep. Options carry paths and modes only; every hyperparameter comes from params.yaml
(change it there or with `dvc exp run -S key=value`)."""
from __future__ import annotations

import ast
import errno
import importlib
import os
import sys
from pathlib import Path

import click

from .stages import GROUPS, ROOT
from .stages.options import PARAMS


class StageGroup(click.Group):
    """Commands of diffops.stages modules, imported only when used (the CLI starts fast)."""

    def __init__(self, *args, stage_modules: dict[str, str] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.stage_modules = stage_modules or {}

    def list_commands(self, ctx):
        return sorted(set(super().list_commands(ctx)) | set(self.stage_modules))

    def get_command(self, ctx, name):
        if name in self.stage_modules:
            return importlib.import_module(f"diffops.stages.{self.stage_modules[name]}").command
        return super().get_command(ctx, name)

    def format_commands(self, ctx, formatter):
        """The command list of `--help`, with stage commands' one-line help read from their source
        (importing them would load torch and take seconds)."""
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(map(len, names), default=0)       # as click.Group does
        rows = []
        for name in names:
            if name in self.stage_modules:
                rows.append((name, stage_short_help(self.stage_modules[name], limit)))
            else:
                rows.append((name, super().get_command(ctx, name).get_short_help_str(limit)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


def stage_short_help(module: str, limit: int) -> str:
    """First sentence of the docstring of `command` in diffops/stages/<module>.py, without importing it."""
    tree = ast.parse((Path(__file__).parent / "stages" / f"{module}.py").read_text())
    doc = next((ast.get_docstring(n) or "" for n in tree.body
                if isinstance(n, ast.FunctionDef) and n.name == "command"), "")
    return click.utils.make_default_short_help(doc, limit)


class RootGroup(StageGroup):
    """Every failure of every command becomes one line on stderr; `diffops --debug ...` (or DIFFOPS_DEBUG=1)
    shows the traceback instead."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as e:
            if ctx.params.get("debug") or os.environ.get("DIFFOPS_DEBUG") == "1":
                raise
            raise click.ClickException(one_line(e)) from None


DISK_ERRORS = {errno.ENOSPC: "free some space or write elsewhere",
               errno.EDQUOT: "free some space or write elsewhere",
               errno.EROFS: "choose a writable output path",
               errno.EACCES: "choose a writable output path or fix its permissions",
               errno.EPERM: "choose a writable output path or fix its permissions"}


def one_line(e: Exception) -> str:
    """A failure as one line that names what failed and what to do."""
    from .utils.io import DISK_ERRNO_TEXT
    text = str(e).strip()
    code = e.errno if isinstance(e, OSError) and e.errno in DISK_ERRORS else \
        next((c for t, c in DISK_ERRNO_TEXT.items() if t in text), None)   # e.g. torch.save's RuntimeError
    if code is not None:
        where = getattr(e, "filename", None)
        what = e.strerror if isinstance(e, OSError) and e.strerror else os.strerror(code)
        head = f"{where}: {what}" if where else text.splitlines()[0]
        return f"{head}; {DISK_ERRORS[code]} (no finished output was replaced)"
    if isinstance(e, OSError) and e.filename and e.strerror:
        return f"{e.filename}: {e.strerror}"
    first = text.splitlines()[0] if text else type(e).__name__
    from .config import ConfigError
    if isinstance(e, (ConfigError, ValueError, LookupError, OSError)):
        return first
    return f"{type(e).__name__}: {first} (an internal error: rerun as `diffops --debug ...` for the traceback)"


CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@click.group(cls=RootGroup, stage_modules=ROOT, context_settings=CONTEXT)
@click.version_option(package_name="diffops")
@click.option("--debug", is_flag=True, help="Show the full traceback of a failure (also: DIFFOPS_DEBUG=1).")
def main(debug):
    """Reproducible diffusion-model research: DVC stages, Accelerate training, MLflow tracking.

    \b
    Run the whole quickstart pipeline:   dvc repro
    Open the results:                    diffops ui
    """


for _name, (_help, _modules) in GROUPS.items():
    main.add_command(StageGroup(_name, help=_help, stage_modules=_modules))


@main.command()
@PARAMS
def check(params_path):
    """Validate a params file and print the resolved values.

    \b
    Example:  diffops check --params pipelines/celeba64/params.yaml
    """
    from .config import flatten
    from .methods import METHODS
    from .stages.common import load
    from .utils.redact import redact
    for k, v in flatten(load(params_path, methods=METHODS)).items():
        click.echo(f"{k} = {redact(v)}")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Bind address (loopback by default).")
@click.option("--port", type=click.IntRange(1, 65535), default=5000, show_default=True)
def ui(host, port):
    """Open the MLflow UI on the project's local store.

    \b
    Example:  diffops ui   # then browse http://127.0.0.1:5000
    """
    from .tracking.mlflow_run import project_root, tracking_uri
    from .utils.redact import redact
    root = project_root()
    uri = tracking_uri(root)
    if uri.startswith(("http://", "https://")):        # a tracking server serves its own UI
        raise click.ClickException(f"MLFLOW_TRACKING_URI is the tracking server {redact(uri)}: open it in a "
                                   f"browser (unset MLFLOW_TRACKING_URI for the local store's UI)")
    click.echo(f"MLflow UI for {redact(uri)} on http://{host}:{port}")
    os.execvp(sys.executable, [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri,
                               "--default-artifact-root", (root / "mlruns" / "artifacts").resolve().as_uri(),
                               "--host", host, "--port", str(port)])


@main.command()
@PARAMS
@click.argument("study_file", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--study", "study_name", default=None, metavar="NAME",
              help="Study name in the storage (default: sweep.study). Workers with one name share the study.")
@click.option("--n-trials", type=click.IntRange(min=0), default=None,
              help="Run at most this many trials in this worker (default: until the study has sweep.n_trials; "
                   "0: only export the best params and plots).")
@click.option("--storage", default=None, metavar="URL",
              help="Optuna storage (default: sweep.storage): a journal file path, or postgresql://... for many machines.")
@click.option("--data", type=click.Path(exists=True, path_type=Path), default=None,
              help="Training data (default: the objective's, e.g. data/prepared; data/tiw/obs for tiw).")
@click.option("--featurenet", "featurenet_dir", type=click.Path(exists=True, path_type=Path),
              default="models/featurenet", show_default=True)
@click.option("--edm", "edm_dir", type=click.Path(path_type=Path), default="models/edm", show_default=True,
              help="sweep.objective diti: the frozen EDM model.")
@click.option("--discriminator", "discriminator_dir", type=click.Path(path_type=Path),
              default="models/tiw/discriminator", show_default=True,
              help="sweep.objective tiw: the time-dependent discriminator.")
@click.option("--reference", "reference_dir", type=click.Path(path_type=Path), default="data/reference",
              show_default=True, help="sweep.metric fid/kid_mean/precision/recall: the reference stage's statistics.")
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Best params and plots (default: sweeps/<study>).")
def sweep(params_path, study_file, study_name, n_trials, storage, data, featurenet_dir, edm_dir, discriminator_dir,
          reference_dir, out):
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
    from .sweeps.objective import OBJECTIVES
    from .sweeps.study import StudyMismatch
    from .sweeps.worker import read_raw, run_sweep
    try:
        objective = OBJECTIVES[(read_raw(params_path, study_file).get("sweep") or {}).get("objective", "edm")]
        data = data or Path(objective.data)
        if not data.exists():
            raise click.ClickException(f"{data}: no such folder; run `dvc repro {objective.data_stage}` first "
                                       f"(or pass --data)")
        run_sweep(params_path, data, featurenet_dir, study_file=study_file,
                  inputs={"edm": edm_dir, "discriminator": discriminator_dir, "reference": reference_dir},
                  study_name=study_name,
                  n_trials=n_trials, storage=storage, out_dir=out, echo=click.echo)
    except (ConfigError, StudyMismatch, FileNotFoundError, KeyError) as e:
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
    from .stages.common import load
    from .tracking.mlflow_run import project_root
    url = storage or load(params_path).sweep.storage
    if "://" not in url:
        path = Path(url) if Path(url).is_absolute() else project_root() / url
        if not path.exists():
            raise click.ClickException(f"{path}: no Optuna journal yet; run `diffops sweep` first")
        url = str(path)
    from .utils.redact import redact
    click.echo(f"optuna-dashboard for {redact(url)} on http://{host}:{port}")
    exe = Path(sys.executable).with_name("optuna-dashboard")     # the console script of this environment
    exe = str(exe) if exe.exists() else "optuna-dashboard"
    os.execvp(exe, [exe, url, "--host", host, "--port", str(port)])


if __name__ == "__main__":
    main()

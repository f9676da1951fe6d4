"""What every stage command shares: the params option, loading params with one-line errors, and
turning the library's user-facing errors into one line (tracebacks are for `--debug`)."""
from __future__ import annotations

import contextlib
from pathlib import Path

import click

from ..config import ConfigError, apply_overrides, load_params, read_params
from .options import PARAMS, output_container, output_folder, output_file, path  # noqa: F401  (re-exported)

USER_ERRORS = (ConfigError, FileNotFoundError, FileExistsError, ValueError)


def load(params_path: Path, methods=None):
    """params.yaml, validated. A stage that reads method.name passes the method registry as `methods`;
    the others leave that key to the stages that use it (and to `diffops check`)."""
    try:
        return load_params(params_path, methods=methods)
    except (ConfigError, FileNotFoundError) as e:
        raise click.ClickException(str(e)) from None


def load_with(params_path: Path, section: str, options: dict):
    """Params with command-line options as `section.key` overrides, validated like the file itself.
    A missing params file means the defaults (convert/encode also run outside a project)."""
    raw = read_params(params_path) if params_path.exists() else {}
    overrides = [f"{section}.{k}={v}" for k, v in options.items() if v is not None]
    try:
        return load_params(apply_overrides(raw, overrides), methods=None)
    except ConfigError as e:
        raise click.ClickException(str(e) + (" (from the command line)" if overrides else "")) from None


@contextlib.contextmanager
def one_line_errors(*errors: type[BaseException]):
    """Errors a user can act on (bad params, missing inputs) become one line, not a traceback."""
    try:
        yield
    except errors or USER_ERRORS as e:
        raise click.ClickException(str(e)) from None

"""Click options shared by the stage commands and cli.py (no heavy imports: the CLI starts fast)."""
from __future__ import annotations

from pathlib import Path

import click

PARAMS = click.option("--params", "params_path", type=click.Path(dir_okay=False, path_type=Path),
                      default="params.yaml", show_default=True, metavar="YAML",
                      help="Params file (validated before any compute).")


def path(**kw) -> click.Path:
    return click.Path(path_type=Path, **kw)

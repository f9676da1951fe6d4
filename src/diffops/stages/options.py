"""Click options shared by the stage commands and cli.py (no heavy imports: the CLI starts fast)."""
from __future__ import annotations

from pathlib import Path

import click

PARAMS = click.option("--params", "params_path", type=click.Path(dir_okay=False, path_type=Path),
                      default="params.yaml", show_default=True, metavar="YAML",
                      help="Params file (validated before any compute).")


def path(**kw) -> click.Path:
    return click.Path(path_type=Path, **kw)


class Output(click.Path):
    """A path the command writes, checked when the command line is read (before any compute): its folder
    must be writable, and a folder output that exists must be one diffops wrote (utils.io.MARKER).
    kind: "dir", "file", or "any" (a container: folder or archive by suffix, which must not exist)."""

    def __init__(self, kind: str):
        super().__init__(path_type=Path, file_okay=kind != "dir", dir_okay=kind != "file")
        self.kind = kind

    def convert(self, value, param, ctx):
        out = Path(super().convert(value, param, ctx))
        from ..utils.io import check_replaceable, check_writable
        try:
            check_writable(out)
            if self.kind == "dir":
                check_replaceable(out)
        except OSError as e:            # one line, not click's usage block: the path is the problem
            raise click.ClickException(f"{param.opts[0]} {e.filename}: {e.strerror}" if e.filename
                                       else f"{param.opts[0]} {e}") from None
        return out


def output_folder() -> Output:
    return Output("dir")


def output_file() -> Output:
    return Output("file")


def output_container() -> Output:
    return Output("any")

"""dvc stage `raw` of the pipelines/: stop with download instructions if raw data is missing, else write
the listing manifest that later stages depend on (instead of hashing the raw images)."""
from __future__ import annotations

import click

from ..data.sources import check_raw
from .common import one_line_errors, path, output_file


@click.command("check-raw")
@click.option("--path", "raw", type=path(), required=True, help="Where the raw data must be.")
@click.option("--dataset", required=True, type=click.Choice(["celeba", "imagenet", "ffhq", "sd-vae-ft-mse"]),
              help="Which download instructions to give if it is missing.")
@click.option("--out", type=output_file(), default=None, help="Listing manifest (names, sizes, mtimes) that stages depend on.")
def command(raw, dataset, out):
    """Stop with what to download and where if raw data is missing; else write its listing manifest.

    \b
    Example:  diffops check-raw --path data/raw/imagenet/train --dataset imagenet --out data/raw-imagenet.json
    """
    with one_line_errors(FileNotFoundError):
        m = check_raw(raw, dataset, out)
    click.echo(f"{raw}: {m['files']} files (listing {m['listing_sha256'][:12]})")

"""dvc stage `tiw_seeds` (pipelines/tiw-seeds): the TIW-DSM comparison over training seeds, from tiw_table's
per-seed tables (evaluation/bias.py seeds_table): bias and rates with standard errors over the seeds, the
validity gate and the dsm_obs - tiw_dsm gap; metrics/tiw.json + metrics/tiw.md, MLflow run `tiw-seeds`."""
from __future__ import annotations

import json
from pathlib import Path

import click
import mlflow

from ..evaluation.bias import seeds_markdown, seeds_table
from ..tracking.mlflow_run import tracked_run
from ..utils.io import write_json_atomic, write_text_atomic
from .common import PARAMS, load, path, output_file


def run(cfg, tables, out_json) -> dict:
    table = seeds_table([json.loads(Path(t).read_text()) for t in tables])
    out_json, out_md = Path(out_json), Path(out_json).with_suffix(".md")
    write_json_atomic(out_json, table)
    write_text_atomic(out_md, seeds_markdown(table))
    with tracked_run(cfg.tracking.experiment, run_name="tiw-seeds", stage="tiw_seeds"):
        mlflow.log_metrics({f"{loss}.{k}": float(v) for loss, r in table["losses"].items() for k, v in r.items()
                            if isinstance(v, (int, float)) and not isinstance(v, bool)})
        mlflow.log_artifact(str(out_json), "results")
        mlflow.log_artifact(str(out_md), "results")
    return table


@click.command("seeds")
@PARAMS
@click.option("--table", "tables", type=path(exists=True, dir_okay=False), multiple=True, required=True,
              help="A per-seed metrics/tiw.json of `diffops tiw table` (repeat, one per training seed).")
@click.option("--out", type=output_file(), default="metrics/tiw.json", show_default=True,
              help="DVC metrics file; a markdown table is written beside it (.md).")
def command(params_path, tables, out):
    """The comparison over training seeds: bias = |rate - unbiased rate| ± its standard error over the seeds.

    \b
    Example:  diffops tiw seeds --table metrics/seed0/tiw.json --table metrics/seed1/tiw.json --out metrics/tiw.json
    """
    if len(tables) < 2:
        raise click.UsageError("--table: give at least two per-seed tables (the standard error needs >= 2 seeds)")
    table = run(load(params_path), tables, out)
    click.echo(seeds_markdown(table))
    for k, v in table["checks"].items():
        click.echo(f"{k}: {v}")

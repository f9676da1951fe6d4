"""dvc stage `tiw_table`: every loss's samples scored against the unbiased test split (into its training
run and metrics/tiw/<loss>.json), and the table in the paper's shape (metrics/tiw.json, metrics/tiw.md),
also logged as the MLflow run `tiw-results`."""
from __future__ import annotations

from pathlib import Path

import click
import mlflow

from ..evaluation.bias import GUIDED, LOSSES, BiasScorer, markdown_table, results_table, score_loss
from ..tracking.mlflow_run import producing_run, tracked_run
from ..utils.io import write_json_atomic, write_text_atomic
from .common import PARAMS, load, path, output_file


def record_loss(cfg, metrics: dict, model_dir, metrics_path) -> None:
    """The scores into metrics_path and, unless model_dir is None, into the run that trained the model."""
    write_json_atomic(Path(metrics_path), metrics)
    if model_dir is None:
        return
    with producing_run(cfg.tracking.experiment, model_dir) as run:
        if run:
            mlflow.log_metrics({k: float(v) for k, v in metrics.items() if k != "loss"})
            mlflow.log_artifact(str(metrics_path), "evaluation")


def headline(table: dict) -> dict:
    """The table without its subgroup proportions (those are the plots file's): what `dvc metrics show` shows."""
    strip = lambda rows: {name: {k: v for k, v in row.items() if not k.startswith("subgroup.g")}
                          for name, row in rows.items()}
    return {**table, "losses": strip(table["losses"]), "data": strip(table.get("data", {}))}


def subgroup_rows(table: dict) -> list[dict]:
    """One row per subgroup: its proportion in every loss's samples and in the data (dvc plots)."""
    rows = {**table["losses"], **table.get("data", {})}
    return [{"subgroup": name, **{loss: row[f"subgroup.g{g}"] for loss, row in rows.items() if f"subgroup.g{g}" in row}}
            for g, name in enumerate(table["subgroups"])]


def run(cfg, data_dir, featurenet_dir, runs: dict, metrics_dir, out_json, prepared_dir=None, plots=None) -> dict:
    """runs: loss -> (samples_dir, model_dir or None: a row whose scores go to no training run)."""
    scorer = BiasScorer(cfg, data_dir, featurenet_dir)
    losses = {}
    for loss, (samples, model) in runs.items():
        losses[loss] = score_loss(scorer, samples, loss)
        record_loss(cfg, losses[loss], model, Path(metrics_dir) / f"{loss}.json")
    table = results_table(cfg, scorer, data_dir, losses, prepared_dir)
    out_json, out_md = Path(out_json), Path(out_json).with_suffix(".md")
    write_json_atomic(out_json, headline(table))
    write_text_atomic(out_md, markdown_table(table))
    if plots is not None:
        write_json_atomic(Path(plots), subgroup_rows(table))
    with tracked_run(cfg.tracking.experiment, run_name="tiw-results", stage="tiw_table"):
        mlflow.log_metrics({f"{loss}.{k}": float(v) for loss, r in table["losses"].items() for k, v in r.items()})
        mlflow.log_artifact(str(out_json), "results")
        mlflow.log_artifact(str(out_md), "results")
    return table


@click.command("table")
@PARAMS
@click.option("--data", type=path(exists=True), default="data/tiw/obs", show_default=True)
@click.option("--prepared", type=path(exists=True), default="data/prepared", show_default=True,
              help="Unsplit container: the FD floor of as many unbiased real images as samples.")
@click.option("--featurenet", "featurenet_dir", type=path(exists=True), default="models/featurenet", show_default=True)
@click.option("--samples-dir", type=path(exists=True), default="samples/tiw", show_default=True,
              help=f"Holds <loss>/ sample sets of {', '.join(LOSSES)} and {GUIDED} (dsm_obs with discriminator "
                   "guidance): those present are scored.")
@click.option("--models-dir", type=path(exists=True), default="models/tiw", show_default=True,
              help="Holds <loss>/ exported models (their MLflow runs receive the scores).")
@click.option("--metrics-dir", type=path(), default="metrics/tiw", show_default=True,
              help="Per-loss scores are written here as <loss>.json.")
@click.option("--out", type=output_file(), default="metrics/tiw.json", show_default=True,
              help="DVC metrics file; a markdown table is written beside it (.md).")
@click.option("--plots", type=output_file(), default=None,
              help="Write the subgroup proportions here (JSON rows for `dvc plots`), e.g. plots/tiw/subgroups.json.")
def command(params_path, data, prepared, featurenet_dir, samples_dir, models_dir, metrics_dir, out, plots):
    """Score every loss's samples and write the table in the paper's shape (fd_attrnet, bias, subgroup %).

    \b
    Example:  diffops tiw table --samples-dir samples/tiw --models-dir models/tiw --out metrics/tiw.json
              cat metrics/tiw.md
    """
    runs = {loss: (samples_dir / loss, models_dir / loss) for loss in LOSSES if (samples_dir / loss).is_dir()}
    if (samples_dir / GUIDED).is_dir():             # dsm_obs's model: its training run keeps its own scores
        runs[GUIDED] = (samples_dir / GUIDED, None)
    table = run(load(params_path), data, featurenet_dir, runs, metrics_dir, out, prepared, plots)
    click.echo(markdown_table(table))
    for k, v in table["checks"].items():
        click.echo(f"{k}: {v}")

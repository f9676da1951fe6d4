"""dvc stage `tiw_split`: the TIW-DSM setting from a prepared container: a biased set (the positives of
bias_split.attributes kept 1 : factor to their negatives) plus a small uniform reference set, as the MLflow
run `bias_split`."""
from __future__ import annotations

import json
from pathlib import Path

import click
import mlflow

from ..config import flatten
from ..data.bias_split import bias_split
from ..tracking.mlflow_run import log_dataset_input, log_flat_params, tracked_run
from .common import PARAMS, load, path, output_folder


def run(cfg, prepared_dir, out_dir) -> dict:
    b = cfg.bias_split
    with tracked_run(cfg.tracking.experiment, run_name="bias_split", stage="tiw_split"):
        log_flat_params({k: v for k, v in flatten(cfg).items() if k.startswith("bias_split.")})
        source = json.loads((Path(prepared_dir) / "meta.json").read_text())
        log_dataset_input("prepared", source["content_sha256"], prepared_dir, "source")
        report = bias_split(prepared_dir, out_dir, b.attributes, b.factor, b.reference_fraction, b.seed,
                            b.downsample)
        log_dataset_input("tiw-obs", report["obs_content_sha256"], Path(out_dir) / "obs", "output")
        log_dataset_input("tiw-ref", report["ref_content_sha256"], Path(out_dir) / "ref", "output")
        metrics = {}
        for split, r in report["splits"].items():
            for key, value in r.items():
                if key.startswith("proportions_"):
                    metrics.update({f"{split}.{key}.g{g}": p for g, p in enumerate(value)})
                else:
                    metrics[f"{split}.{key}"] = value
        mlflow.log_metrics(metrics)
        mlflow.log_dict(report, "split.json")
    return report


def _pct(p):
    return "/".join(f"{100 * v:.1f}" for v in p)


@click.command("split")
@PARAMS
@click.option("--data", type=path(exists=True), default="data/prepared", show_default=True)
@click.option("--out", type=output_folder(), default="data/tiw", show_default=True,
              help="Writes OUT/obs (biased + reference, group column), OUT/ref, OUT/split.json.")
def command(params_path, data, out):
    """Biased set + unbiased reference set from a prepared container (params: bias_split.*).

    \b
    Example:  diffops tiw split --data data/prepared --out data/tiw
    """
    report = run(load(params_path), data, out)
    s = report["splits"]["train"]
    click.echo(f"tiw split: {s['num_biased']} biased + {s['num_reference']} reference; subgroups "
               f"{report['subgroups']}: all {_pct(s['proportions_all'])}, biased {_pct(s['proportions_biased'])}")

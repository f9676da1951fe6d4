"""dvc stage `diti_probe`: a linear probe (mean AP over the 40 attributes) of each trained representation,
a random encoder and the pixels (evaluation/probe.py); each representation's numbers go into its training
run, the baselines and the per-attribute table into the first one's (DiTi's)."""
from __future__ import annotations

from pathlib import Path

import click
import mlflow
import torch

from ..artifacts.representation import Representation
from ..data.celeba import ATTRIBUTE_NAMES
from ..data.prepare import load_split
from ..data.synthetic_celeba import DRAWN_ATTRIBUTES
from ..evaluation.probe import probe_encoder
from ..tracking.mlflow_run import tracked_run
from ..training.loop import build_trainable
from ..utils.io import write_json_atomic
from .common import PARAMS, load, path, output_file

LOGGED = ("probe_map", "probe_map_drawn", "probe_map_undrawn", "best_epoch")


def run(cfg, data_dir: Path, model_dirs: dict[str, Path], metrics_path: Path, baselines: bool = True,
        progress: bool = True, plots=None) -> dict:
    """Writes metrics_path (per representation probe_map / _drawn / _undrawn / best epoch, and the
    per-attribute test AP) and logs into the representations' runs."""
    splits = {s: load_split(data_dir, s) for s in ("train", "val", "test")}
    encoders, runs, reps = {}, {}, []
    for name, model_dir in model_dirs.items():
        reps.append(Representation(model_dir))
        encoders[name], runs[name] = reps[-1].encoder, reps[-1].run_id
    if baselines:   # the first representation's encoder as its training initialised it, and raw pixels
        with torch.random.fork_rng(devices=[]):
            encoders["random"] = build_trainable(reps[0].cfg).extra["encoder"].eval().requires_grad_(False)
        encoders["pixels"] = None

    results = {name: probe_encoder(cfg, splits, enc, name, progress) for name, enc in encoders.items()}
    positive_rate = {a: float(r) for a, r in zip(ATTRIBUTE_NAMES, splits["test"][1].mean(0))}
    report = {"split_sizes": {s: int(len(v[1])) for s, v in splits.items()}, "test_positive_rate": positive_rate,
              "drawn_attributes": list(DRAWN_ATTRIBUTES), "representations": results}
    # The metrics file holds the mAPs; the per-attribute APs are the plots file's (and the MLflow artifact's).
    write_json_atomic(Path(metrics_path), {"split_sizes": report["split_sizes"], "representations": {
        name: {k: v for k, v in r.items() if k != "test_ap"} for name, r in results.items()}})
    if plots is not None:
        write_json_atomic(Path(plots), [{"attribute": a, "test_positive_rate": positive_rate[a],
                                         **{name: r["test_ap"][a] for name, r in results.items()}}
                                        for a in ATTRIBUTE_NAMES])
    _log(cfg, results, runs, Path(metrics_path), report)
    return report


def _log(cfg, results: dict, runs: dict, metrics_path: Path, report: dict) -> None:
    probe_params = {f"diti.{k}": getattr(cfg.diti, k) for k in
                    ("probe_epochs", "probe_lr", "probe_batch_size", "probe_standardize", "probe_seed")}
    for i, name in enumerate(runs):
        if not runs[name]:
            continue
        with tracked_run(cfg.tracking.experiment, run_id=runs[name]):
            shown = list(results) if i == 0 else [name]      # the first (DiTi) run holds the whole comparison
            for n in shown:
                suffix = "" if n == name else f".{n}"
                mlflow.log_metrics({f"{k}{suffix}": float(v) for k, v in results[n].items() if k in LOGGED})
            mlflow.set_tags({f"probed_with.{k}": str(v) for k, v in probe_params.items()})
            if i == 0:
                mlflow.log_artifact(str(metrics_path), "probe")
                mlflow.log_dict(report, "probe/report.json")             # with the per-attribute APs


@click.command("probe")
@PARAMS
@click.option("--data", type=path(exists=True), default="data/prepared", show_default=True)
@click.option("--model", "models", type=path(exists=True), multiple=True, default=["models/diti", "models/pdae"],
              show_default=True, help="Trained representations (repeat); the first run receives the comparison.")
@click.option("--metrics", type=output_file(), default="metrics/diti_probe.json", show_default=True)
@click.option("--no-baselines", is_flag=True, help="Skip the random-encoder and pixel baselines.")
@click.option("--plots", type=output_file(), default=None,
              help="Write the per-attribute test APs here (JSON rows for `dvc plots`), e.g. plots/diti/probe_ap.json.")
def command(params_path, data, models, metrics, no_baselines, plots):
    """Linear probe (mean AP over the 40 attributes) of DiTi, PDAE, a random encoder and the pixels.

    \b
    Example:  diffops diti probe --model models/diti --model models/pdae --metrics metrics/diti_probe.json
    """
    run(load(params_path), data, {Path(m).name: m for m in models}, metrics, baselines=not no_baselines, plots=plots)

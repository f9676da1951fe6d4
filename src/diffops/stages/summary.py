"""dvc stage `summary`: the headline number of each method in one small metrics file, the only one the root
dvc.yaml declares as `metrics`, so that `dvc metrics show` and `dvc exp show` fit a terminal. The full
metrics files stay beside it (`dvc metrics show metrics/tiw.json`), and MLflow holds every number."""
from __future__ import annotations

import json
from pathlib import Path

import click

from ..utils.io import write_json_atomic
from .options import path, output_file

# summary key -> (metrics file, key path inside it). Keys missing from a file (e.g. fid without
# Inception weights, a method whose stage has not run) are left out, never invented.
HEADLINE = {
    "edm.fd_attrnet": ("edm", "fd_attrnet"),
    "edm.fd_untrained": ("edm", "fd_attrnet_untrained"),
    "edm.fd_data": ("edm", "fd_attrnet_data"),
    "edm.fid": ("edm", "fid"),
    "tiw.bias.dsm_obs": ("tiw", "losses.dsm_obs.bias"),
    "tiw.bias.tiw_dsm": ("tiw", "losses.tiw_dsm.bias"),
    "tiw.bias_se.tiw_dsm": ("tiw", "losses.tiw_dsm.bias_se"),
    "tiw.gap_in_se": ("tiw", "checks.tiw_dsm_bias_gap_in_se"),
    "diti.map_drawn": ("diti_probe", "representations.diti.probe_map_drawn"),
    "pdae.map_drawn": ("diti_probe", "representations.pdae.probe_map_drawn"),
    "random.map_drawn": ("diti_probe", "representations.random.probe_map_drawn"),
    "pca_pixels.map_drawn": ("diti_probe", "representations.pca_pixels.probe_map_drawn"),
    "diti.minus_random_in_sd": ("diti_probe", "effects.diti_minus_random.in_pooled_sd"),
    "diti.manip": ("diti_manipulation", "manip_change_rate"),
}


def lookup(doc: dict, dotted: str):
    for part in dotted.split("."):
        if not isinstance(doc, dict) or part not in doc:
            return None
        doc = doc[part]
    return doc


def run(metrics_dir, out) -> dict:
    files = {}
    for name in {f for f, _ in HEADLINE.values()}:
        p = Path(metrics_dir) / f"{name}.json"
        files[name] = json.loads(p.read_text()) if p.is_file() else {}
    summary = {key: v for key, (name, dotted) in HEADLINE.items()
               if isinstance(v := lookup(files[name], dotted), (int, float)) and not isinstance(v, bool)}
    if not summary:
        raise click.ClickException(f"{metrics_dir}: no metrics files to summarise; run the evaluation stages first")
    write_json_atomic(Path(out), summary)
    return summary


@click.command("summary")
@click.option("--metrics-dir", type=path(exists=True, file_okay=False), default="metrics", show_default=True)
@click.option("--out", type=output_file(), default="metrics/summary.json", show_default=True)
def command(metrics_dir, out):
    """Headline numbers of every method in one metrics file (what `dvc metrics show` prints).

    \b
    Example:  diffops summary --metrics-dir metrics --out metrics/summary.json
    """
    for k, v in run(metrics_dir, out).items():
        click.echo(f"{k:>20} = {v}")

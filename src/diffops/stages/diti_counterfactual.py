"""dvc stage `diti_counterfactual`: chunks of z interpolated between test images and decoded by masked DDIM
(evaluation/counterfactual.py); the grid goes into the DiTi run."""
from __future__ import annotations

import json
from pathlib import Path

import click
import numpy as np
import torch

from ..artifacts.representation import Representation
from ..data.prepare import load_split
from ..evaluation.counterfactual import counterfactual_grid
from ..utils.grid import save_image_grid
from ..utils.io import atomic_dir
from .common import PARAMS, load, path, output_folder
from .diti_common import log_into_representation_run


def run(cfg, data_dir, model_dir, out_dir, progress: bool = True) -> dict:
    """Grid of chunk interpolations between consecutive test images -> out_dir/{grid.png, grid.json}."""
    d = cfg.diti
    rep = Representation(model_dir)
    rep.load_dpm()
    images, _ = load_split(data_dir, "test")
    x = torch.from_numpy(np.ascontiguousarray(images[:2 * d.cf_pairs])).to(torch.float32) / 127.5 - 1
    t_ranges = list(zip(d.cf_t_from, d.cf_t_to))
    grid, labels = counterfactual_grid(rep, x[0::2], x[1::2], t_ranges, d.cf_alphas, d.cf_encode_steps,
                                       d.cf_decode_steps, slerp_xT=d.cf_slerp_xT, progress=progress)
    layout = {"columns": ["original"] + [f"alpha={a}" for a in d.cf_alphas], "rows": labels, "slerp_xT": d.cf_slerp_xT,
              "encode_steps": d.cf_encode_steps, "decode_steps": d.cf_decode_steps,
              "test_indices": list(range(2 * d.cf_pairs))}
    with atomic_dir(out_dir) as tmp:
        save_image_grid(grid, tmp / "grid.png", ncols=1 + len(d.cf_alphas))
        (tmp / "grid.json").write_text(json.dumps(layout, indent=2))
    log_into_representation_run(cfg, model_dir, Path(out_dir), "counterfactual", {}, prefix="diti.cf_")
    return layout


@click.command("counterfactual")
@PARAMS
@click.option("--data", type=path(exists=True), default="data/prepared", show_default=True)
@click.option("--model", "model_dir", type=path(exists=True), default="models/diti", show_default=True)
@click.option("--out", type=output_folder(), default="samples/diti/counterfactual", show_default=True)
def command(params_path, data, model_dir, out):
    """Interpolate chunks of z between test images and decode with masked DDIM; a grid into the DiTi run.

    \b
    Example:  diffops diti counterfactual --model models/diti --out samples/diti/counterfactual
    """
    layout = run(load(params_path), data, model_dir, out)
    click.echo(f"{out}/grid.png: {len(layout['rows'])} rows x {len(layout['columns'])} columns")

"""dvc stage `diti_manipulation`: a ProbMask edit of one attribute with diti.manip_dims dims of z, and the
attribute net's change rate against a random edit of the same norm (evaluation/counterfactual.py)."""
from __future__ import annotations

import json
from pathlib import Path

import click
import torch

from ..artifacts.featurenet import load_featurenet
from ..artifacts.representation import Representation
from ..data.celeba import ATTRIBUTE_NAMES
from ..data.prepare import load_split
from ..evaluation.counterfactual import manipulate
from ..utils.grid import save_image_grid
from ..utils.io import atomic_dir, write_json_atomic
from .common import PARAMS, load, one_line_errors, path, output_folder, output_file
from .diti_common import log_into_representation_run


def run(cfg, data_dir, model_dir, featurenet_dir, out_dir, metrics_path, progress: bool = True) -> dict:
    """ProbMask edit of diti.manip_attribute -> out_dir/grid.png and metrics_path."""
    d = cfg.diti
    rep = Representation(model_dir)
    rep.load_dpm()
    attrnet, attributes = load_featurenet(featurenet_dir)
    if d.manip_attribute not in attributes:
        raise ValueError(f"diti.manip_attribute: {d.manip_attribute} is not predicted by {featurenet_dir} ({attributes})")
    col = ATTRIBUTE_NAMES.index(d.manip_attribute)
    (tr_x, tr_a), (te_x, te_a) = load_split(data_dir, "train"), load_split(data_dir, "test")
    metrics, grid, cols = manipulate(
        rep, attrnet, attributes.index(d.manip_attribute), torch.from_numpy(tr_x), torch.from_numpy(tr_a[:, col]),
        torch.from_numpy(te_x), torch.from_numpy(te_a[:, col]), keep=d.manip_dims, epochs=d.manip_epochs,
        lr=d.manip_lr, scale=d.manip_scale, num_images=d.manip_images, encode_steps=d.manip_encode_steps,
        decode_steps=d.manip_decode_steps, seed=d.seed, progress=progress)
    metrics = {"manip_attribute": d.manip_attribute, **metrics}
    with atomic_dir(out_dir) as tmp:
        save_image_grid(grid, tmp / "grid.png", ncols=cols)
        (tmp / "grid.json").write_text(json.dumps({"rows": ["original", "reconstruction",
                                                            f"+{d.manip_attribute} (ProbMask)",
                                                            "random direction, same norm"]}, indent=2))
    write_json_atomic(Path(metrics_path), metrics)
    log_into_representation_run(cfg, model_dir, Path(out_dir), "manipulation",
                                {k: v for k, v in metrics.items() if isinstance(v, (int, float))},
                                prefix="diti.manip_", extra_file=Path(metrics_path))
    return metrics


@click.command("manipulate")
@PARAMS
@click.option("--data", type=path(exists=True), default="data/prepared", show_default=True)
@click.option("--model", "model_dir", type=path(exists=True), default="models/diti", show_default=True)
@click.option("--featurenet", "featurenet_dir", type=path(exists=True), default="models/featurenet", show_default=True)
@click.option("--out", type=output_folder(), default="samples/diti/manipulation", show_default=True)
@click.option("--metrics", type=output_file(), default="metrics/diti_manipulation.json", show_default=True)
def command(params_path, data, model_dir, featurenet_dir, out, metrics):
    """ProbMask edit of diti.manip_attribute with diti.manip_dims dims; the attribute net's change rate.

    \b
    Example:  diffops diti manipulate --model models/diti --featurenet models/featurenet
    """
    cfg = load(params_path)
    with one_line_errors(ValueError):
        m = run(cfg, data, model_dir, featurenet_dir, out, metrics)
    click.echo(f"{m['manip_attribute']}: attribute-net change rate {m['manip_change_rate']:.3f} "
               f"(random direction {m['manip_change_rate_random']:.3f}); rate recon {m['manip_rate_recon']:.3f} "
               f"-> edited {m['manip_rate_edited']:.3f}")

"""`diffops score`: fid, kid, precision/recall and fd_attrnet of any image set against any reference,
outside the pipeline: folders, zips, LMDBs, prepared containers, sample sets, ADM/EDM reference batches
and statistics files. Reads evaluate.* (KID subsets, k, batch size) from --params when it exists."""
from __future__ import annotations

import pickle
from pathlib import Path

import click
import numpy as np

from ..artifacts.featurenet import load_featurenet
from ..data.image_sets import image_batches, load_images
from ..evaluation.evaluate import AttrNetReference
from ..evaluation.frechet import FrechetReference
from ..evaluation.inception import InceptionFeatures, check_weights_file, feature_metrics
from ..utils.io import write_json_atomic
from .common import PARAMS, load_with, one_line_errors, path, output_file
from .evaluate import inception_features

METRICS = ("fid", "kid", "pr", "fd_attrnet")


def reference_statistics(path: Path, trust_pickle: bool) -> FrechetReference | None:
    """Inception statistics stored at `path` (EDM .npz {mu, sigma}; EDM2 .pkl {'fid': {mu, sigma}} only
    with trust_pickle), or None when `path` holds images."""
    if path.suffix == ".pkl":
        if not trust_pickle:
            raise click.ClickException(f"{path}: a pickle can run code when loaded; pass --trust-pickle if you "
                                       "trust its origin, or convert it to .npz {mu, sigma}")
        with open(path, "rb") as f:
            stats = pickle.load(f)["fid"]                              # the user said they trust it
    elif path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as data:
            if "arr_0" in data or "mu" not in data:
                return None     # images (ADM's batches also hold TF-Inception mu/sigma; ours are recomputed)
            stats = {"mu": data["mu"], "sigma": data["sigma"]}
    else:
        return None
    return FrechetReference(stats["mu"], stats["sigma"])


def run(cfg, images_path, reference_path, metrics=("fid", "kid", "pr"), inception_path=None, featurenet_dir=None,
        split="test", trust_pickle=False) -> dict:
    e = cfg.evaluate
    unknown = sorted(set(metrics) - set(METRICS))
    if unknown:
        raise click.ClickException(f"--metrics: unknown {', '.join(unknown)} (choose from {', '.join(METRICS)})")
    inception_metrics = [m for m in metrics if m in ("fid", "kid", "pr")]
    weights = inception_path or e.inception_weights
    if inception_metrics:
        check_weights_file(weights)                                     # before any compute
    if "fd_attrnet" in metrics and featurenet_dir is None:
        raise click.ClickException("--metrics fd_attrnet needs --featurenet DIR (e.g. models/featurenet)")
    stats = reference_statistics(Path(reference_path), trust_pickle)
    if stats is not None and (set(metrics) - {"fid"}):
        raise click.ClickException(f"{reference_path} holds statistics, which give fid only; "
                                   "kid, pr and fd_attrnet need reference images")
    out = {"images": str(images_path), "reference": str(reference_path)}
    if inception_metrics:
        inception = InceptionFeatures(weights, batch_size=min(e.batch_size, 64))
        generated = inception_features(inception, image_batches(images_path, split), str(images_path))
        real = inception_features(inception, image_batches(reference_path, split), str(reference_path)) \
            if stats is None else None
        out |= {"num_images": len(generated), "num_reference": len(real) if real is not None else None}
        out |= feature_metrics(generated, real, stats, metrics=inception_metrics, kid_subsets=e.kid_subsets,
                               kid_subset_size=e.kid_subset_size, k=e.pr_k)
        out |= {"inception": str(weights), **inception.record}
    if "fd_attrnet" in metrics:                     # the attribute net's small images fit in memory
        images, reference = load_images(images_path, split), load_images(reference_path, split)
        net, attributes = load_featurenet(featurenet_dir)
        ref = AttrNetReference(net, attributes, reference, e.batch_size)
        ref.check_shape(images, str(images_path))
        feats, _ = ref.features(images)
        out |= {"num_images": len(images), "num_reference": len(reference),
                "fd_attrnet": ref.fd_of(feats), **ref.precision_recall(feats, e.pr_k)}
    return out


@click.command("score")
@PARAMS
@click.option("--images", type=path(exists=True), required=True,
              help="Images to score: folder, .zip, LMDB, prepared container (--split), sample set, .npz (arr_0).")
@click.option("--reference", type=path(exists=True), required=True,
              help="Reference images (as --images) or Inception statistics (.npz {mu, sigma}; .pkl needs --trust-pickle).")
@click.option("--metrics", default="fid,kid,pr", show_default=True, help=f"Comma-separated: {', '.join(METRICS)}.")
@click.option("--inception", "inception_path", type=path(exists=True, dir_okay=False), default=None,
              help="Inception-v3 weights file (default: evaluate.inception_weights).")
@click.option("--featurenet", "featurenet_dir", type=path(exists=True, file_okay=False), default=None,
              help="Attribute net for fd_attrnet.")
@click.option("--split", default="test", show_default=True, help="Split of a prepared container.")
@click.option("--trust-pickle", is_flag=True, help="Allow a .pkl reference (unpickling can run code).")
@click.option("--out", type=output_file(), default=None, help="Also write the scores to this JSON file.")
def command(params_path, images, reference, metrics, inception_path, featurenet_dir, split, trust_pickle, out):
    """Score any image set against a reference: fid, kid, precision/recall, fd_attrnet.

    \b
    Example:  diffops score --images samples/edm --reference data/prepared --metrics fd_attrnet \\
                  --featurenet models/featurenet
    \b
    With Inception weights on disk:
              diffops score --images samples/edm/images --reference data/prepared \\
                  --inception ~/weights/pt_inception-2015-12-05-6726825d.pth --out scores.json
    """
    cfg = load_with(params_path, "evaluate", {})
    with one_line_errors():
        result = run(cfg, images, reference, tuple(m.strip() for m in metrics.split(",") if m.strip()),
                     inception_path, featurenet_dir, split, trust_pickle)
    if out:
        write_json_atomic(out, result)
    for k, v in result.items():
        click.echo(f"{k:>22} = {v:.6g}" if isinstance(v, float) else f"{k:>22} = {v}")

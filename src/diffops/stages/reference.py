"""dvc stage `reference`: statistics of the reference split in each feature space (the attribute net's;
Inception-v3's when `evaluate.inception_weights` is set), as EDM-format .npz with a JSON sidecar saying
which dataset and which extractor file they belong to. `evaluate` reads the Inception features from
here instead of recomputing them for every model; `diffops score --reference` and sweeps read them too."""
from __future__ import annotations

from pathlib import Path

import click
import torch

from ..artifacts.featurenet import load_featurenet
from ..artifacts.reference_stats import save_reference
from ..data.prepare import load_split
from ..evaluation.featurenet import extract
from ..evaluation.frechet import FeatureStats
from ..evaluation.inception import InceptionFeatures
from ..utils.io import atomic_dir, file_sha256
from .common import PARAMS, load, path, output_folder
from .evaluate import check_inputs, dataset_sha256, inception_features


def run(cfg, data_dir, featurenet_dir, out_dir) -> dict:
    e = cfg.evaluate
    check_inputs(cfg)
    images = load_split(data_dir, e.reference_split)[0]
    base = {"dataset_sha256": dataset_sha256(data_dir), "dataset": str(data_dir)}
    net, _ = load_featurenet(featurenet_dir)
    feats, _ = extract(net, torch.from_numpy(images), e.batch_size)
    spaces = {"attrnet": (feats, {**base, "extractor_sha256": file_sha256(Path(featurenet_dir) / "attrnet.safetensors")})}
    if e.inception_weights is not None:
        inception = InceptionFeatures(e.inception_weights, batch_size=min(e.batch_size, 64))
        spaces["inception"] = (inception_features(inception, images, "reference"),
                               {**base, "extractor_sha256": inception.sha256, "inception_standard": inception.standard})
    with atomic_dir(out_dir) as tmp:
        for space, (f, record) in spaces.items():
            stats = FeatureStats().update(f)
            save_reference(tmp, e.reference_split, space, stats.mu, stats.sigma, f, record)
    return {space: len(f) for space, (f, _) in spaces.items()}


@click.command("reference")
@PARAMS
@click.option("--data", type=path(exists=True), default="data/prepared", show_default=True)
@click.option("--featurenet", "featurenet_dir", type=path(exists=True), default="models/featurenet", show_default=True)
@click.option("--out", type=output_folder(), default="data/reference", show_default=True)
def command(params_path, data, featurenet_dir, out):
    """Reference statistics of evaluate.reference_split per feature space (attrnet; inception if set).

    \b
    Example:  diffops reference --data data/prepared --featurenet models/featurenet --out data/reference
    """
    counts = run(load(params_path), data, featurenet_dir, out)
    click.echo("reference: " + ", ".join(f"{space} {n} images" for space, n in counts.items()))

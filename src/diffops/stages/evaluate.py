"""dvc stage `evaluate`: fd_attrnet of the samples (vs the untrained network and real data), precision and
recall in the attribute net's space, attribute rates, and, when `evaluate.inception_weights` names a local
Inception-v3 file, fid, kid, precision and recall in Inception space; written to the metrics file and into
the training run, so one MLflow row holds params and results."""
from __future__ import annotations

import json
from pathlib import Path

import click
import mlflow
import numpy as np
import torch
from tqdm import tqdm

from ..artifacts.denoiser import denoiser_spec, untrained_denoiser
from ..artifacts.reference_stats import load_reference
from ..config import flatten
from ..data.prepare import load_split
from ..evaluation.evaluate import AttrNetReference, attrnet_reference, real_subset
from ..evaluation.frechet import FrechetReference
from ..evaluation.inception import InceptionFeatures, check_weights_file, feature_metrics
from ..sampling.edm_sampler import generate_images
from ..sampling.sample_set import read_sample_set, sampler_kwargs
from ..tracking.mlflow_run import producing_run, producing_store
from ..utils.io import write_json_atomic
from .common import PARAMS, load, path, output_file

SHOWN = ("fid", "kid_mean", "precision", "recall", "fd_attrnet", "fd_attrnet_vae", "fd_attrnet_untrained",
         "fd_attrnet_data", "attrnet_precision", "attrnet_recall", "attr_rate_mae")


def reference(cfg, data_dir, featurenet_dir) -> AttrNetReference:
    return attrnet_reference(featurenet_dir, data_dir, cfg.evaluate.reference_split, cfg.evaluate.batch_size)


def untrained_images(cfg, spec: dict, n: int, generate) -> torch.Tensor:
    """Samples of the network as initialised (same seeds and sampler): generate(D0, seeds) -> uint8."""
    D0 = untrained_denoiser(spec, cfg.train.seed)
    s = cfg.sample
    seeds = list(range(s.seed_start, s.seed_start + n))
    return torch.cat([generate(D0, seeds[i:i + s.batch_size])
                      for i in tqdm(range(0, n, s.batch_size), desc="untrained baseline", unit="batch")])


def check_inputs(cfg) -> None:
    """Before any compute: a configured Inception file must exist."""
    if cfg.evaluate.inception_weights is not None:
        check_weights_file(cfg.evaluate.inception_weights)


def scores(cfg, ref: AttrNetReference, samples: torch.Tensor, data_dir, reference_dir,
           seed_start: int | None = None) -> tuple[dict, dict, np.ndarray]:
    """The scores every evaluate stage reports for a sample set: fd_attrnet and attribute-net precision
    / recall, Inception fid / kid / precision / recall when configured (against the reference stage's
    Inception features). Returns (metrics, the protocol record: reference, seeds, weights hash;
    the samples' attribute probabilities). seed_start: the first sample's seed (sample.seed_start)."""
    e, n = cfg.evaluate, len(samples)
    ref.check_shape(samples, "the sample set")
    seed_start = cfg.sample.seed_start if seed_start is None else seed_start
    feats, probs = ref.features(samples)
    metrics = {"fd_attrnet": ref.fd_of(feats), "num_samples": n, "num_reference": ref.num,
               **ref.precision_recall(feats, e.pr_k)}
    record = {"reference": f"{data_dir}:{e.reference_split}", "seeds": f"{seed_start}-{seed_start + n - 1}",
              "inception": "none"}                      # evaluate.inception_weights is null: no fid
    if e.inception_weights is not None:
        inception = InceptionFeatures(e.inception_weights, batch_size=min(e.batch_size, 64))
        stored = load_reference(reference_dir, e.reference_split, "inception",
                                {"dataset_sha256": dataset_sha256(data_dir), "extractor_sha256": inception.sha256})
        generated = inception_features(inception, samples, "samples")
        metrics |= feature_metrics(generated, stored["features"], FrechetReference(stored["mu"], stored["sigma"]),
                                   kid_subsets=e.kid_subsets, kid_subset_size=e.kid_subset_size, k=e.pr_k)
        record |= {"inception": e.inception_weights, "reference_stats": stored["path"], **inception.record}
    return metrics, record, probs


def best_range(cfg, ref: AttrNetReference, samples: torch.Tensor, data_dir, reference_dir):
    """scores() of the sample set, or with sample.seed_ranges > 1 (EDM: "the minimum over three random seed
    ranges"), of its best range of sample.num_images seeds by fid (fd_attrnet without Inception), with every
    range's value as <metric>_range<r> and the ranges in the record."""
    s = cfg.sample
    if s.seed_ranges == 1:
        return scores(cfg, ref, samples, data_dir, reference_dir)
    n = s.num_images
    if len(samples) != n * s.seed_ranges:
        raise ValueError(f"the sample set holds {len(samples)} images, not sample.num_images x sample.seed_ranges "
                         f"= {n * s.seed_ranges}: rerun the sample stage")
    ranges = [scores(cfg, ref, samples[r * n:(r + 1) * n], data_dir, reference_dir, s.seed_start + r * n)
              for r in range(s.seed_ranges)]
    key = "fid" if "fid" in ranges[0][0] else "fd_attrnet"
    best = min(range(s.seed_ranges), key=lambda r: ranges[r][0][key])
    metrics, record, probs = ranges[best]
    metrics = metrics | {f"{key}_range{r}": m[key] for r, (m, _, _) in enumerate(ranges)}
    record = record | {"selection": f"min {key} over {s.seed_ranges} seed ranges",
                       "seed_ranges": ", ".join(rec["seeds"] for _, rec, _ in ranges)}
    return metrics, record, probs


def dataset_sha256(data_dir) -> str:
    return json.loads((Path(data_dir) / "meta.json").read_text())["content_sha256"]


def inception_features(inception: InceptionFeatures, images, what: str) -> np.ndarray:
    """Inception features of uint8 images (an array or tensor, or an iterable of such chunks), with progress."""
    chunks = (images[i:i + 256] for i in range(0, len(images), 256)) if hasattr(images, "shape") else images
    return np.concatenate([inception(torch.as_tensor(np.ascontiguousarray(c)))
                           for c in tqdm(chunks, desc=f"inception: {what}", unit="chunk")])


def finish(cfg, model_dir, metrics: dict, table: dict, metrics_path, record: dict, plots=None) -> dict:
    """Write the metrics file (headline numbers and the protocol record, short enough for `dvc metrics
    show`), the per-attribute rates as a dvc plots file, and log all of it into the training run, with
    the sampler/eval settings used."""
    result = {**{k: v for k, v in metrics.items() if not k.startswith("attr_rate.")}, "protocol": record}
    write_json_atomic(Path(metrics_path), result)
    if plots is not None:
        write_json_atomic(Path(plots), [{"attribute": a, **rates} for a, rates in table.items()])
    with producing_run(cfg.tracking.experiment, model_dir) as run:
        if run:
            mlflow.log_metrics({k: float(v) for k, v in metrics.items()})
            # Sampler/eval settings may differ from those logged at training time: record what was used.
            mlflow.set_tags({f"evaluated_with.{k}": str(v) for k, v in flatten(cfg).items()
                             if k.startswith(("sample.", "evaluate."))})
            mlflow.set_tags({f"evaluation.{k}": str(v) for k, v in record.items()})
            mlflow.log_artifact(str(metrics_path), "evaluation")
            mlflow.log_dict(table, "evaluation/attributes.json")
    return result | {"attributes": table}


def run(cfg, data_dir, featurenet_dir, samples_dir, model_dir, metrics_path, reference_dir="data/reference",
        plots=None) -> dict:
    producing_store(model_dir)          # the run the metrics go into answers: checked before scoring
    check_inputs(cfg)
    torch.manual_seed(0)
    ref = reference(cfg, data_dir, featurenet_dir)
    samples = torch.from_numpy(read_sample_set(samples_dir))
    metrics, record, probs = best_range(cfg, ref, samples, data_dir, reference_dir)
    n = metrics["num_samples"]
    if cfg.evaluate.untrained_baseline:
        res = cfg.data.resolution
        metrics["fd_attrnet_untrained"] = ref.fd(untrained_images(
            cfg, denoiser_spec(model_dir), n,
            lambda D, seeds: generate_images(D, seeds, res, **sampler_kwargs(cfg.sample))))
    metrics["fd_attrnet_data"] = ref.fd(real_subset(load_split(data_dir, "train")[0], n))
    rates, table = ref.rate_metrics(probs)
    return finish(cfg, model_dir, metrics | rates, table, metrics_path, record, plots)


@click.command("evaluate")
@PARAMS
@click.option("--data", type=path(exists=True), default="data/prepared", show_default=True)
@click.option("--featurenet", "featurenet_dir", type=path(exists=True), default="models/featurenet", show_default=True)
@click.option("--samples", type=path(exists=True), default="samples/edm", show_default=True)
@click.option("--model", "model_dir", type=path(exists=True), default="models/edm", show_default=True)
@click.option("--reference", "reference_dir", type=path(), default="data/reference", show_default=True,
              help="Reference statistics (the reference stage); read when evaluate.inception_weights is set.")
@click.option("--metrics", type=output_file(), default="metrics/edm.json", show_default=True)
@click.option("--plots", type=output_file(), default=None,
              help="Write the per-attribute rates here (JSON rows for `dvc plots`), e.g. plots/edm/attributes.json.")
def command(params_path, data, featurenet_dir, samples, model_dir, reference_dir, metrics, plots):
    """Score samples: fd_attrnet and attribute rates; logged into the training run.

    \b
    Example:  diffops evaluate --samples samples/edm --metrics metrics/edm.json
    """
    echo(run(load(params_path), data, featurenet_dir, samples, model_dir, metrics, reference_dir, plots))


def echo(result: dict) -> None:
    for k in SHOWN:
        if k in result:
            click.echo(f"{k:>22} = {result[k]:.4f}")

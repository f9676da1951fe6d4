"""The evaluate stage: Fréchet distance in the attribute net's feature space and attribute rates.

`fd_attrnet` is a Fréchet distance between Gaussian fits of AttrNet penultimate features (not FID,
which is reserved for Inception-v3). For scale, the same metric is reported for
  - `fd_attrnet_untrained`: samples of the network as initialised (same seeds and sampler): chance;
  - `fd_attrnet_data`: an equally large set of real train-split images: the floor at this sample count.
Attribute rates are the fractions of images the attribute net calls positive; the samples' rates are
compared with the net's rates on the reference split (`attr_rate_mae`, mean absolute difference).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import mlflow
import numpy as np
import torch
from tqdm import tqdm

from ..config import flatten
from ..data.prepare import load_split
from ..sampling.edm_sampler import generate_images
from ..sampling.load import untrained_denoiser
from ..sampling.sample_set import read_sample_set, sampler_kwargs
from .featurenet import attribute_rates, extract
from .featurenet_stage import load_featurenet
from .frechet import FeatureStats, frechet_distance


def _stats(features: np.ndarray) -> FeatureStats:
    stats = FeatureStats()
    stats.update(features)
    return stats


def _fd(a: FeatureStats, b: FeatureStats) -> float:
    return frechet_distance(a.mu, a.sigma, b.mu, b.sigma)


def evaluate(cfg, data_dir: Path, featurenet_dir: Path, samples_dir: Path, model_dir: Path,
             metrics_path: Path) -> dict:
    torch.manual_seed(0)
    net, attributes = load_featurenet(featurenet_dir)
    bs = cfg.evaluate.batch_size
    ref_images, ref_attrs = load_split(data_dir, cfg.evaluate.reference_split)
    ref_feats, ref_probs = extract(net, torch.from_numpy(np.ascontiguousarray(ref_images)), bs)
    ref = _stats(ref_feats)

    samples = torch.from_numpy(read_sample_set(samples_dir))
    n = len(samples)
    feats, probs = extract(net, samples, bs)
    metrics = {"fd_attrnet": _fd(_stats(feats), ref), "num_samples": n,
               "num_reference": len(ref_images)}

    # Scale: chance (untrained network, same seeds and sampler) and floor (real images, same count).
    if cfg.evaluate.untrained_baseline:
        spec = json.loads((Path(model_dir) / "model.json").read_text())
        D0 = untrained_denoiser(spec, cfg.train.seed)
        seeds = list(range(cfg.sample.seed_start, cfg.sample.seed_start + n))
        bs_s = cfg.sample.batch_size
        base = torch.cat([generate_images(D0, seeds[i:i + bs_s], cfg.data.resolution, **sampler_kwargs(cfg.sample))
                          for i in tqdm(range(0, n, bs_s), desc="untrained baseline", unit="batch")])
        metrics["fd_attrnet_untrained"] = _fd(_stats(extract(net, base, bs)[0]), ref)
    train_images, _ = load_split(data_dir, "train")
    pick = np.random.default_rng(0).permutation(len(train_images))[:n]
    metrics["fd_attrnet_data"] = _fd(_stats(extract(net, torch.from_numpy(train_images[np.sort(pick)]), bs)[0]), ref)

    # Attribute rates: samples vs the reference split as the same classifier sees it.
    rates, ref_rates = attribute_rates(probs), attribute_rates(ref_probs)
    metrics["attr_rate_mae"] = float(np.abs(rates - ref_rates).mean())
    per_attr = {name: {"samples": float(r), "reference": float(rr)}
                for name, r, rr in zip(attributes, rates, ref_rates)}
    for name, r in zip(attributes, rates):
        metrics[f"attr_rate.{name}"] = float(r)
    result = {**metrics, "attributes": per_attr}
    _write_json_atomic(Path(metrics_path), result)
    _log_to_training_run(cfg, model_dir, metrics, metrics_path)
    return result


def _write_json_atomic(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2) + "\n")
    os.replace(tmp, path)


def _log_to_training_run(cfg, model_dir: Path, metrics: dict, metrics_path: Path) -> None:
    """Evaluation lands in the training run, so one MLflow row holds params and results."""
    run_id = json.loads((Path(model_dir) / "model.json").read_text()).get("mlflow_run_id")
    if not run_id:
        return
    from ..tracking.mlflow_run import tracked_run
    with tracked_run(cfg.tracking.experiment, run_id=run_id):
        mlflow.log_metrics({k: float(v) for k, v in metrics.items()})
        # Sampler/eval settings may differ from those logged at training time: record what was used.
        mlflow.set_tags({f"evaluated_with.{k}": str(v) for k, v in flatten(cfg).items()
                         if k.startswith(("sample.", "evaluate."))})
        mlflow.log_artifact(str(metrics_path), "evaluation")

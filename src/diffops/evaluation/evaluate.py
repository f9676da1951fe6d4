"""Scores of a sample set in the attribute net's feature space (what the evaluate stages report).

`fd_attrnet` is a Fréchet distance between Gaussian fits of AttrNet penultimate features (not FID,
which is reserved for Inception-v3). For scale, the stages add
  - `fd_attrnet_untrained`: samples of the network as initialised (same seeds and sampler): chance;
  - `fd_attrnet_data`: an equally large set of real train-split images: the floor at this sample count.
Attribute rates are the fractions of images the attribute net calls positive; the samples' rates are
compared with the net's rates on the reference split (`attr_rate_mae`, mean absolute difference).
"""
from __future__ import annotations

import numpy as np
import torch

from ..artifacts.featurenet import featurenet_spec, load_featurenet
from ..data.prepare import load_split
from .featurenet import attribute_rates, extract, to_resolution
from .frechet import FeatureStats, FrechetReference, fd_features
from .inception import precision_recall


class AttrNetReference:
    """The attribute net and the reference images' feature statistics and attribute rates, computed once."""

    def __init__(self, net, attributes, reference_images: np.ndarray, batch_size: int, resolution: int | None = None):
        """resolution: the net's input side; images of another size are resized to it (to_resolution)."""
        self.net, self.attributes, self.batch_size, self.resolution = net, list(attributes), batch_size, resolution
        self.image_shape = tuple(reference_images.shape[1:])        # (C, H, W) of the reference split
        feats, probs = self.features(reference_images)
        self.reference_features, self.rates, self.num = feats, attribute_rates(probs), len(reference_images)
        stats = FeatureStats().update(feats)
        self.frechet = FrechetReference(stats.mu, stats.sigma)                # its factor, computed once

    def check_shape(self, images, what: str) -> None:
        """Samples must have the reference split's channels and size (a resized set is not comparable)."""
        if tuple(images.shape[1:]) != self.image_shape:
            c, h, w = images.shape[1:]
            rc, rh, rw = self.image_shape
            raise ValueError(f"{what}: {c}×{h}×{w} images, but the reference split is {rc}×{rh}×{rw}; "
                             f"sample at data.resolution or evaluate against data of this size")

    def fd(self, images) -> float:
        """fd_attrnet of uint8 images (N, 3, H, W), a tensor or an array."""
        return self.fd_of(self.features(images)[0])

    def fd_of(self, features: np.ndarray) -> float:
        return fd_features(features, self.frechet)

    def precision_recall(self, features: np.ndarray, k: int) -> dict:
        """Improved precision and recall (k-NN balls) in the attribute net's feature space."""
        precision, recall = precision_recall(features, self.reference_features, k)
        return {"attrnet_precision": precision, "attrnet_recall": recall}

    def features(self, images):
        # A tensor keeps its memory layout (a sample set is a channels-last view): the convolutions' round-off
        # depends on it, and the metrics stay those of the layout they were first computed with.
        x = images if isinstance(images, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(images))
        return extract(self.net, to_resolution(x, self.resolution), self.batch_size)

    def attr_rate_mae(self, probs: np.ndarray) -> float:
        return float(np.abs(attribute_rates(probs) - self.rates).mean())

    def rate_metrics(self, probs: np.ndarray) -> tuple[dict, dict]:
        """(attr_rate_mae and attr_rate.<name> metrics, per-attribute {samples, reference} table)."""
        rates = attribute_rates(probs)
        metrics = {"attr_rate_mae": float(np.abs(rates - self.rates).mean()),
                   **{f"attr_rate.{a}": float(r) for a, r in zip(self.attributes, rates)}}
        table = {a: {"samples": float(r), "reference": float(rr)} for a, r, rr in zip(self.attributes, rates, self.rates)}
        return metrics, table


def attrnet_reference(featurenet_dir, data_dir, split: str, batch_size: int) -> AttrNetReference:
    """The attribute net of featurenet_dir against the `split` images of the prepared container data_dir."""
    net, attributes = load_featurenet(featurenet_dir)
    images, _ = load_split(data_dir, split)
    return AttrNetReference(net, attributes, images, batch_size, featurenet_spec(featurenet_dir).get("resolution"))


def real_subset(train_images: np.ndarray, n: int) -> np.ndarray:
    """n train images, the same ones for every evaluation (a fixed permutation): the data floor's set."""
    return train_images[np.sort(np.random.default_rng(0).permutation(len(train_images))[:n])]

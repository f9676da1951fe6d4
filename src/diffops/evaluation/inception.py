"""Inception-v3 pool features, FID, KID and precision/recall in the standard way, through torch-fidelity.

The network is torch-fidelity's FeatureExtractorInceptionV3: the 2015-12-05 TensorFlow graph ported to
PyTorch, uint8 input, its TF1-exact bilinear resize to 299 x 299 and (x - 128) / 128 inside. Weights
come from a local file only (`evaluate.inception_weights`), never a download: the state dict in the
layout of `pt_inception-2015-12-05-6726825d.pth`, which pytorch-fid and torch-fidelity share. Its
sha256 is recorded with every metric; torch.hub names such files after the first 8 hex digits of their
sha256, so the standard file's digest begins with 6726825d. Any other file is accepted with a warning
and its metrics are marked non-standard.

FID is this package's frechet_distance on float64 statistics with the N - 1 normaliser (Heusel et al.
2017, Eq. 6); KID (Binkowski et al. 2018: unbiased MMD^2, cubic polynomial kernel, mean and std over
random subsets) and precision/recall (Kynkaanniemi et al. 2019, k-NN balls, k = 3) are torch-fidelity's.
"""
from __future__ import annotations

import contextlib
import os
import warnings
from pathlib import Path

import numpy as np
import torch

from ..utils.io import file_sha256
from .frechet import FeatureStats, FrechetReference

STANDARD_SHA256_PREFIX = "6726825d"          # pt_inception-2015-12-05-6726825d.pth (torch.hub naming)
FEATURE = "2048"                             # pool3 features, the FID layer
METRICS = ("fid", "kid", "pr")


@contextlib.contextmanager
def _weights_only_loads():
    """torch-fidelity reads its weights with torch.load(weights_only=False), which would run any pickled
    code in the file. TORCH_FORCE_WEIGHTS_ONLY_LOAD makes that call refuse everything but tensors."""
    before = os.environ.get("TORCH_FORCE_WEIGHTS_ONLY_LOAD")
    os.environ["TORCH_FORCE_WEIGHTS_ONLY_LOAD"] = "1"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("TORCH_FORCE_WEIGHTS_ONLY_LOAD", None)
        else:
            os.environ["TORCH_FORCE_WEIGHTS_ONLY_LOAD"] = before


def check_weights_file(path: str | os.PathLike | None) -> Path:
    """The weights file, or FileNotFoundError saying where to put it (before any compute)."""
    if path is None or not Path(path).is_file():
        raise FileNotFoundError(
            f"Inception weights not found at {path}: put the 2015-12-05 Inception-v3 state dict "
            "(pt_inception-2015-12-05-6726825d.pth, as pytorch-fid and torch-fidelity download it) there, "
            "or set evaluate.inception_weights to its path (null: no FID, fd_attrnet only)")
    return Path(path)


class InceptionFeatures:
    """Callable uint8 images (N, 3, H, W) -> float64 pool features (N, 2048), batched, on `device`."""

    def __init__(self, weights: str | os.PathLike, device: str | torch.device = "cpu", batch_size: int = 64):
        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
        path = check_weights_file(weights)
        self.sha256 = file_sha256(path)
        self.standard = self.sha256.startswith(STANDARD_SHA256_PREFIX)
        if not self.standard:
            warnings.warn(f"{path} is not the standard 2015-12-05 Inception-v3 file (sha256 {self.sha256[:16]}..., "
                          f"expected {STANDARD_SHA256_PREFIX}...): its FID is not comparable with published numbers",
                          RuntimeWarning, stacklevel=2)
        try:
            with _weights_only_loads():
                net = FeatureExtractorInceptionV3("inception-v3-compat", [FEATURE],
                                                  feature_extractor_weights_path=str(path))
        except (RuntimeError, KeyError) as e:
            raise ValueError(f"{path} is not an Inception-v3 state dict in the pt_inception-2015-12-05 layout: "
                             f"{str(e).splitlines()[0]}") from None
        self.net, self.device, self.batch_size = net.to(device), torch.device(device), batch_size

    @torch.no_grad()
    def __call__(self, images: torch.Tensor | np.ndarray) -> np.ndarray:
        images = torch.as_tensor(images)
        if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"Inception features need uint8 images (N, 3, H, W), got {images.dtype} {tuple(images.shape)}")
        out = [self.net(batch.to(self.device))[0].to("cpu", torch.float64)
               for batch in images.split(self.batch_size)]
        return torch.cat(out).numpy() if out else np.zeros([0, 2048])

    @property
    def record(self) -> dict:
        """What every Inception metric is recorded with."""
        return {"inception_sha256": self.sha256, "inception_standard": self.standard}


def kid(features: np.ndarray, reference: np.ndarray, subsets: int = 100, subset_size: int = 1000,
        seed: int = 2020) -> tuple[float, float]:
    """KID mean and std over `subsets` random subsets of min(subset_size, N) rows of each set."""
    from torch_fidelity.metric_kid import KEY_METRIC_KID_MEAN, KEY_METRIC_KID_STD, kid_features_to_metric
    size = min(subset_size, len(features), len(reference))
    # Features are float32 network outputs; torch-fidelity's kernels run in float32, and so do these, so
    # that KID is torch-fidelity's to the last digit (float64 kernels move it by ~1e-5 relative).
    f32 = lambda a: torch.as_tensor(np.asarray(a, dtype=np.float32))
    out = kid_features_to_metric(f32(features), f32(reference), kid_subsets=subsets,
                                 kid_subset_size=size, rng_seed=seed, verbose=False)
    return out[KEY_METRIC_KID_MEAN], out[KEY_METRIC_KID_STD]


def precision_recall(features: np.ndarray, reference: np.ndarray, k: int = 3) -> tuple[float, float]:
    """Kynkaanniemi et al.'s improved precision (generated in the reference's k-NN balls) and recall."""
    from torch_fidelity.metric_prc import KEY_METRIC_PRECISION, KEY_METRIC_RECALL, prc_features_to_metric
    out = prc_features_to_metric(torch.as_tensor(features, dtype=torch.float32),
                                 torch.as_tensor(reference, dtype=torch.float32),
                                 prc_neighborhood=k, prc_batch_size=10000, save_cpu_ram=False, verbose=False)
    return out[KEY_METRIC_PRECISION], out[KEY_METRIC_RECALL]


def feature_metrics(features: np.ndarray, reference: np.ndarray | None, reference_stats=None, *,
                    metrics=METRICS, kid_subsets: int = 100, kid_subset_size: int = 1000, seed: int = 2020,
                    k: int = 3) -> dict:
    """fid, kid_mean and kid_std, precision and recall of generated Inception `features` against the
    reference's features; for fid alone the reference's FeatureStats or FrechetReference will do."""
    if reference is None and set(metrics) - {"fid"}:
        raise ValueError("kid and precision/recall need the reference images' features, not only their statistics")
    out = {}
    if "fid" in metrics:
        ref = reference_stats if reference_stats is not None else FeatureStats().update(reference)
        ref = ref if isinstance(ref, FrechetReference) else FrechetReference(ref.mu, ref.sigma)
        stats = FeatureStats().update(features)
        out["fid"] = ref.distance(stats.mu, stats.sigma)
    if "kid" in metrics:
        out["kid_mean"], out["kid_std"] = kid(features, reference, kid_subsets, kid_subset_size, seed)
    if "pr" in metrics:
        out["precision"], out["recall"] = precision_recall(features, reference, k)
    return out

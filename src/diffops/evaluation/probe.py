"""Linear probe of frozen representations: mean average precision over the dataset's 40 attributes.

Protocol. The reference (yue-zhongqi/diti `eval/multitask_classification.py`) trains one linear layer
d -> 40 with BCE and Adam for 15 epochs and keeps the best validation epoch. On the quickstart's codes that
probe is not converged (its best epoch is always the last) and it is unfair between representations: the
trained codes are ill-conditioned (a few directions hold most of the variance) and Adam on standardised
features reaches them far more slowly than a well-spread random code. So the probe here is the convex
problem solved to convergence:

    features  -> PCA-whitened with the training features' mean and covariance (x - mu) V diag(lambda)^-1/2,
                 keeping the eigen-directions above 1e-6 of the largest (or the top `dims`: PCA reduction)
    head      -> logistic regression per attribute, 1/N sum_n BCE(W^T x_n + b, y_n) + l2/2 |W|^2,
                 full batch, L-BFGS with a strong-Wolfe line search, from zero, in float64
    l2        -> each value of the grid is fitted (largest first, warm-started); the one with the best
                 validation mAP is kept, and its test AP per attribute is reported

The flip augmentation of the reference is kept exactly: the training set is every training image and
its mirror image (the encoder is frozen, so both feature sets are computed once).
AP = sklearn's average_precision_score (non-interpolated).

The probe stage compares the DiTi and PDAE encoders with baselines on the same splits: the same encoder
architecture as initialised (`random`, one per init seed), the pixels reduced by PCA to the code's
dimension (`pca_pixels`) and, as an upper reference, all pixels (`pixels`). On the synthetic quickstart
data only DRAWN_ATTRIBUTES are visible; the others are independent noise, so their AP stays at the
positive rate: `probe_map_drawn` is the signal, `probe_map_undrawn` a control.
"""
from __future__ import annotations

import numpy as np
import torch

from ..data.celeba import ATTRIBUTE_NAMES
from ..data.synthetic_celeba import COARSE_ATTRIBUTES, DRAWN_ATTRIBUTES, FINE_ATTRIBUTES
from ..utils.logistic import fit_logistic


def average_precision(y_true: np.ndarray, score: np.ndarray) -> float:
    """sklearn.metrics.average_precision_score for one binary label: sum_n (R_n - R_{n-1}) P_n over the
    distinct score thresholds (ties share a threshold). NaN when there is no positive."""
    y_true, score = np.asarray(y_true).astype(bool), np.asarray(score, dtype=np.float64)
    if not y_true.any():
        return float("nan")
    order = np.argsort(-score, kind="mergesort")
    y, s = y_true[order], score[order]
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]        # last index of each distinct score
    tps = np.cumsum(y)[last]
    precision = tps / (last + 1)
    recall = tps / tps[-1]
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def ap_per_attribute(y_true: np.ndarray, scores: np.ndarray) -> np.ndarray:
    return np.array([average_precision(y_true[:, a], scores[:, a]) for a in range(y_true.shape[1])])


def pca_whitening(x: torch.Tensor, dims: int | None = None, rel_eps: float = 1e-6):
    """(mu, P) such that (x - mu) @ P has identity covariance on x: the top `dims` (default: every
    non-degenerate) principal directions, each divided by its standard deviation."""
    x = x.to(torch.float64)
    mu = x.mean(0)
    eigval, eigvec = torch.linalg.eigh(torch.cov((x - mu).T).reshape(x.shape[1], x.shape[1]))
    eigval, eigvec = eigval.flip(0), eigvec.flip(1)                  # descending
    keep = int((eigval > rel_eps * eigval[0].clamp_min(1e-300)).sum())
    keep = min(keep, dims) if dims else keep
    return mu, eigvec[:, :keep] / eigval[:keep].sqrt()


def participation_ratio(x: torch.Tensor) -> float:
    """(sum lambda)^2 / sum lambda^2 of the covariance eigenvalues: how many directions the variance spreads over."""
    eigval = torch.linalg.eigvalsh(torch.cov(x.to(torch.float64).T).reshape(x.shape[1], x.shape[1])).clamp_min(0)
    return float(eigval.sum() ** 2 / (eigval ** 2).sum())


def linear_probe(train, train_flip, train_y, val, val_y, test, test_y, *, l2_grid, max_iter: int) -> dict:
    """Whitened logistic-regression probe; features are (N, d) tensors, labels {0, 1} arrays (N, A).

    Returns {"l2" (chosen), "val_map" ({l2: val mAP}), "val_ap", "test_ap" (A,) at the chosen l2,
    "whitened_dim", "fits" ({l2: iterations, grad_max})}.
    """
    x = torch.cat([train, train_flip]).to(torch.float64)
    mu, P = pca_whitening(x)
    white = lambda f: (f.to(torch.float64) - mu) @ P                      # noqa: E731
    x, val, test = white(x), white(val), white(test)
    y = torch.as_tensor(np.concatenate([train_y, train_y]), dtype=torch.float64)
    best, fits, val_map, params = None, {}, {}, None
    for l2 in sorted(l2_grid, reverse=True):                               # strongest first: warm starts
        W, b, fits[l2] = fit_logistic(x, y, l2, max_iter, params)
        params = (W, b)
        val_ap = ap_per_attribute(np.asarray(val_y), (val @ W + b).numpy())
        val_map[l2] = float(np.nanmean(val_ap))
        if best is None or val_map[l2] > best["val_map"]:
            best = {"l2": l2, "val_map": val_map[l2], "val_ap": val_ap,
                    "test_ap": ap_per_attribute(np.asarray(test_y), (test @ W + b).numpy())}
    return {"l2": best["l2"], "val_map": val_map, "val_ap": best["val_ap"], "test_ap": best["test_ap"],
            "whitened_dim": int(P.shape[1]), "fits": fits}


def summarize(test_ap: np.ndarray, attribute_names=ATTRIBUTE_NAMES) -> dict:
    """probe_map (all attributes), probe_map_drawn / probe_map_undrawn (synthetic data's visible / noise ones),
    probe_map_coarse / probe_map_fine (drawn attributes over large areas / small details)."""
    names = np.asarray(attribute_names)
    mean_over = lambda group: float(np.nanmean(test_ap[np.isin(names, group)])) if np.isin(names, group).any() \
        else float("nan")                                                  # noqa: E731
    undrawn = [a for a in attribute_names if a not in DRAWN_ATTRIBUTES]
    return {"probe_map": float(np.nanmean(test_ap)), "probe_map_drawn": mean_over(DRAWN_ATTRIBUTES),
            "probe_map_undrawn": mean_over(undrawn), "probe_map_coarse": mean_over(COARSE_ATTRIBUTES),
            "probe_map_fine": mean_over(FINE_ATTRIBUTES)}


# ----------------------------------------------------------------------------
# Probing an encoder on the prepared splits.

def _features(fn, images: np.ndarray, batch_size: int = 500) -> torch.Tensor:
    x = torch.from_numpy(np.ascontiguousarray(images))
    with torch.no_grad():
        return torch.cat([fn(x[i:i + batch_size]) for i in range(0, len(x), batch_size)]).to(torch.float32)


def encode_splits(splits: dict, encoder) -> dict:
    """{"train", "train_flip", "val", "test": (N, d) features} of a frozen encoder (None = the pixels)."""
    to_float = lambda u8: u8.to(torch.float32) / 127.5 - 1                     # noqa: E731
    fn = (lambda u8: to_float(u8).flatten(1)) if encoder is None else (lambda u8: encoder(to_float(u8)))
    feats = {s: _features(fn, splits[s][0]) for s in ("train", "val", "test")}
    feats["train_flip"] = _features(lambda u8: fn(u8.flip(3)), splits["train"][0])
    return feats


def pca_features(feats: dict) -> dict:
    """feats (encode_splits) PCA-whitened on the training features: column j is the j-th principal component,
    so columns [:n] are the features reduced to n dims by PCA. Done once for the pixels, whose 3072-dim
    eigendecomposition is the probe's largest cost; probing them again re-whitens an identity covariance."""
    mu, P = pca_whitening(torch.cat([feats["train"], feats["train_flip"]]))
    return {s: ((f.to(torch.float64) - mu) @ P) for s, f in feats.items()}


def probe_features(cfg, splits: dict, feats: dict, columns=None) -> dict:
    """The probe of feats (encode_splits) restricted to `columns` (default all)."""
    d = cfg.diti
    pick = (lambda f: f) if columns is None else (lambda f: f[:, columns])      # noqa: E731
    out = linear_probe(pick(feats["train"]), pick(feats["train_flip"]), splits["train"][1], pick(feats["val"]),
                       splits["val"][1], pick(feats["test"]), splits["test"][1], l2_grid=d.probe_l2,
                       max_iter=d.probe_max_iter)
    return {**summarize(out["test_ap"]), "val_map": out["val_map"][out["l2"]], "l2": out["l2"],
            "feature_dim": int(pick(feats["train"]).shape[1]), "whitened_dim": out["whitened_dim"],
            "participation_ratio": participation_ratio(pick(feats["train"])),
            "lbfgs_iterations": max(f["iterations"] for f in out["fits"].values()),
            "lbfgs_grad_max": max(f["grad_max"] for f in out["fits"].values()),
            "test_ap": {a: float(v) for a, v in zip(ATTRIBUTE_NAMES, out["test_ap"])}}


def probe_encoder(cfg, splits: dict, encoder) -> dict:
    """Probe one frozen encoder on splits {"train", "val", "test": (uint8 images, attrs)}."""
    return probe_features(cfg, splits, encode_splits(splits, encoder))

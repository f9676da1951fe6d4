"""Linear probe of frozen representations: mean average precision over the dataset's 40 attributes.

Protocol (yue-zhongqi/diti `eval/multitask_classification.py`): frozen EMA encoder, one linear layer
d -> 40, BCE-with-logits, Adam (lr 1e-3), batch 128, 15 epochs, random horizontal flips of the training
images; keep the epoch with the best mean validation AP and report mean AP on the test split
(AP = sklearn's average_precision_score, non-interpolated). Deviations, all params: the training order
is shuffled (the reference loader is not), and features may be standardised with the train-split mean
and std first (`diti.probe_standardize`), so that representations of different scales (pixels, a random
encoder, a trained one) meet the same optimiser on equal terms.

Since the encoder is frozen, features of every image and of its mirror image are computed once; each
epoch picks the mirrored features of a random half, which is the reference's flip augmentation.

The probe stage compares four representations on the same splits: the DiTi encoder, the PDAE (k = 1)
encoder, the same encoder architecture as initialised (`random`), and the pixels themselves (`pixels`).
On the synthetic quickstart data only DRAWN_ATTRIBUTES are visible; the others are independent noise,
so their AP stays at the positive rate: `probe_map_drawn` is the signal, `probe_map_undrawn` a control.
"""
from __future__ import annotations


import numpy as np
import torch
from torch.nn import functional as F
from tqdm import tqdm

from ..data.celeba import ATTRIBUTE_NAMES
from ..data.synthetic_celeba import DRAWN_ATTRIBUTES


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


def linear_probe(train, train_flip, train_y, val, val_y, test, test_y, *, epochs: int, lr: float,
                 batch_size: int, seed: int, standardize: bool, progress: bool = False) -> dict:
    """Train a linear layer on frozen features; pick the epoch by mean val AP; return test AP per attribute.

    Features are float tensors (N, d); labels {0, 1} (N, A). Returns {"best_epoch", "val_map" (per epoch),
    "test_ap" (A,), "val_ap" (A,) at the best epoch}.
    """
    if standardize:
        both = torch.cat([train, train_flip])
        mean, std = both.mean(0), both.std(0).clamp_min(1e-6)
        train, train_flip, val, test = [(f - mean) / std for f in (train, train_flip, val, test)]
    g = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        head = torch.nn.Linear(train.shape[1], train_y.shape[1])
    opt = torch.optim.Adam(head.parameters(), lr=lr)
    y = torch.as_tensor(train_y, dtype=torch.float32)
    best = {"val_map": -1.0}
    history = []
    for epoch in tqdm(range(1, epochs + 1), desc="probe", disable=not progress, leave=False):
        order = torch.randperm(len(train), generator=g)
        flip = torch.rand(len(train), generator=g) < 0.5
        x_all = torch.where(flip[:, None], train_flip, train)
        for i in range(0, len(train), batch_size):
            idx = order[i:i + batch_size]
            loss = F.binary_cross_entropy_with_logits(head(x_all[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        with torch.no_grad():
            val_ap = ap_per_attribute(np.asarray(val_y), head(val).numpy())
        history.append(float(np.nanmean(val_ap)))
        if history[-1] > best["val_map"]:
            with torch.no_grad():
                best = {"val_map": history[-1], "best_epoch": epoch, "val_ap": val_ap,
                        "test_ap": ap_per_attribute(np.asarray(test_y), head(test).numpy())}
    return {"best_epoch": best["best_epoch"], "val_map": history, "val_ap": best["val_ap"], "test_ap": best["test_ap"]}


def summarize(test_ap: np.ndarray, attribute_names=ATTRIBUTE_NAMES) -> dict:
    """probe_map (all attributes), probe_map_drawn / probe_map_undrawn (synthetic data's visible / noise ones)."""
    drawn = np.array([a in DRAWN_ATTRIBUTES for a in attribute_names])
    return {"probe_map": float(np.nanmean(test_ap)), "probe_map_drawn": float(np.nanmean(test_ap[drawn])),
            "probe_map_undrawn": float(np.nanmean(test_ap[~drawn])) if (~drawn).any() else float("nan")}


# ----------------------------------------------------------------------------
# The probe stage.

def _features(fn, images: np.ndarray, batch_size: int = 500) -> torch.Tensor:
    x = torch.from_numpy(np.ascontiguousarray(images))
    with torch.no_grad():
        return torch.cat([fn(x[i:i + batch_size]) for i in range(0, len(x), batch_size)]).to(torch.float32)


def probe_encoder(cfg, splits: dict, encoder, name: str = "", progress: bool = False) -> dict:
    """Probe one frozen encoder (None = the pixels) on splits {"train", "val", "test": (uint8 images, attrs)}."""
    d = cfg.diti
    to_float = lambda u8: u8.to(torch.float32) / 127.5 - 1                     # noqa: E731
    fn = (lambda u8: to_float(u8).flatten(1)) if encoder is None else (lambda u8: encoder(to_float(u8)))
    feats = {s: _features(fn, splits[s][0]) for s in splits}
    flipped = _features(lambda u8: fn(u8.flip(3)), splits["train"][0])
    out = linear_probe(feats["train"], flipped, splits["train"][1], feats["val"], splits["val"][1],
                       feats["test"], splits["test"][1], epochs=d.probe_epochs, lr=d.probe_lr,
                       batch_size=d.probe_batch_size, seed=d.probe_seed, standardize=d.probe_standardize,
                       progress=progress)
    result = {**summarize(out["test_ap"]), "best_epoch": out["best_epoch"], "val_map_best": max(out["val_map"]),
              "feature_dim": int(feats["train"].shape[1]),
              "test_ap": {a: float(v) for a, v in zip(ATTRIBUTE_NAMES, out["test_ap"])}}
    if progress:
        print(f"probe {name:>7}: test mAP {result['probe_map']:.4f}  drawn {result['probe_map_drawn']:.4f}"
              f"  undrawn {result['probe_map_undrawn']:.4f}  (epoch {out['best_epoch']})")
    return result

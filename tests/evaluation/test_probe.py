"""evaluation/probe.py: average precision and the linear probe protocol."""
import numpy as np
import pytest
import torch

from diffops.evaluation.probe import average_precision, linear_probe, summarize


def test_average_precision_matches_sklearn_with_ties():
    sklearn = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    for _ in range(20):
        y = rng.random(200) < rng.uniform(0.05, 0.6)
        s = np.round(rng.normal(size=200) + y, 1)            # rounded: many tied scores
        assert average_precision(y, s) == pytest.approx(sklearn.average_precision_score(y, s), abs=1e-12)
    assert average_precision([0, 1, 1], [0.1, 0.9, 0.8]) == 1.0
    assert np.isnan(average_precision([0, 0], [0.3, 0.2]))


def test_probe_learns_visible_attributes_and_stays_at_chance_on_noise():
    g = torch.Generator().manual_seed(0)
    def split(n):
        y = (torch.rand(n, 2, generator=g) < 0.3).float()
        y[:, 1] = (torch.rand(n, generator=g) < 0.3).float()          # attribute 1: independent of the features
        x = torch.randn(n, 5, generator=g) * 10 + 100                  # large offset/scale: standardisation matters
        x[:, 0] += 40 * y[:, 0]
        return x, y
    (tr, tr_y), (va, va_y), (te, te_y) = split(400), split(200), split(200)
    out = linear_probe(tr, tr, tr_y.numpy(), va, va_y.numpy(), te, te_y.numpy(), epochs=8, lr=1e-2, batch_size=64,
                       seed=0, standardize=True)
    assert out["test_ap"][0] > 0.95 and out["test_ap"][1] < 0.5
    assert out["best_epoch"] == 1 + int(np.argmax(out["val_map"])) and len(out["val_map"]) == 8
    again = linear_probe(tr, tr, tr_y.numpy(), va, va_y.numpy(), te, te_y.numpy(), epochs=8, lr=1e-2, batch_size=64,
                         seed=0, standardize=True)
    assert np.array_equal(out["test_ap"], again["test_ap"])


def test_summary_separates_drawn_and_undrawn_attributes():
    s = summarize(np.array([0.9, 0.1, 0.5]), ["Male", "Attractive", "Smiling"])
    assert s == pytest.approx({"probe_map": 0.5, "probe_map_drawn": 0.7, "probe_map_undrawn": 0.1})

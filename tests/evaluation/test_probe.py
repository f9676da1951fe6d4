"""evaluation/probe.py: average precision and the linear probe protocol."""
import numpy as np
import pytest
import torch

from diffops.evaluation.probe import average_precision, linear_probe, pca_whitening, summarize
from diffops.utils.logistic import fit_logistic


def test_average_precision_matches_sklearn_with_ties():
    sklearn = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    for _ in range(20):
        y = rng.random(200) < rng.uniform(0.05, 0.6)
        s = np.round(rng.normal(size=200) + y, 1)            # rounded: many tied scores
        assert average_precision(y, s) == pytest.approx(sklearn.average_precision_score(y, s), abs=1e-12)
    assert average_precision([0, 1, 1], [0.1, 0.9, 0.8]) == 1.0
    assert np.isnan(average_precision([0, 0], [0.3, 0.2]))


def _toy_splits(seed=0):
    g = torch.Generator().manual_seed(seed)
    def split(n):
        y = (torch.rand(n, 2, generator=g) < 0.3).float()
        y[:, 1] = (torch.rand(n, generator=g) < 0.3).float()          # attribute 1: independent of the features
        x = torch.randn(n, 5, generator=g) * 10 + 100                  # large offset and scale
        x[:, 0] += 40 * y[:, 0]
        x[:, 4] = x[:, 3] * 1e-3 + 1e-4 * torch.randn(n, generator=g)  # an ill-conditioned direction
        return x, y.numpy()
    return split(400), split(200), split(200)


def test_probe_learns_visible_attributes_and_stays_at_chance_on_noise():
    (tr, tr_y), (va, va_y), (te, te_y) = _toy_splits()
    out = linear_probe(tr, tr, tr_y, va, va_y, te, te_y, l2_grid=(1e-1, 1e-3), max_iter=200)
    assert out["test_ap"][0] > 0.9 and out["test_ap"][1] < 0.5
    assert out["l2"] == max(out["val_map"], key=out["val_map"].get) and set(out["val_map"]) == {1e-1, 1e-3}
    assert out["whitened_dim"] == 4                     # column 4's own variance is 1e-10 of the largest: dropped
    again = linear_probe(tr, tr, tr_y, va, va_y, te, te_y, l2_grid=(1e-1, 1e-3), max_iter=200)
    assert np.array_equal(out["test_ap"], again["test_ap"])


def test_probe_is_invariant_to_an_invertible_linear_map_of_the_features():
    """Whitening makes the probe see the same problem whatever the features' scale and mixing, which is what
    lets a well-spread random code and an ill-conditioned trained one meet on equal terms."""
    (tr, tr_y), (va, va_y), (te, te_y) = _toy_splits(1)
    A = torch.randn(5, 5, generator=torch.Generator().manual_seed(3)) * torch.tensor([100.0, 1, 0.01, 1, 10])
    kw = dict(l2_grid=(1e-2,), max_iter=300)
    plain = linear_probe(tr, tr, tr_y, va, va_y, te, te_y, **kw)
    mixed = linear_probe(tr @ A + 7, tr @ A + 7, tr_y, va @ A + 7, va_y, te @ A + 7, te_y, **kw)
    assert mixed["test_ap"] == pytest.approx(plain["test_ap"], abs=1e-6)


def test_lbfgs_fit_matches_sklearn_logistic_regression():
    """1/N sum BCE + l2/2 |w|^2 is sklearn's C sum BCE + 1/2 |w|^2 with C = 1 / (N l2)."""
    linear_model = pytest.importorskip("sklearn.linear_model")
    (tr, tr_y), _, _ = _toy_splits(2)
    mu, P = pca_whitening(tr)
    x = (tr.double() - mu) @ P
    y = torch.as_tensor(tr_y, dtype=torch.float64)
    l2 = 1e-2
    W, b, info = fit_logistic(x, y, l2, max_iter=500)
    assert info["grad_max"] < 1e-5
    assert torch.cov(x.T) == pytest.approx(torch.eye(x.shape[1], dtype=torch.float64), abs=1e-8)
    for a in range(2):
        ref = linear_model.LogisticRegression(C=1 / (len(x) * l2), tol=1e-10, max_iter=10_000).fit(x.numpy(), tr_y[:, a])
        assert W[:, a].numpy() == pytest.approx(ref.coef_[0], abs=1e-4)
        assert float(b[a]) == pytest.approx(float(ref.intercept_[0]), abs=1e-4)


def test_pca_reduction_keeps_the_top_directions():
    x = torch.randn(500, 6, generator=torch.Generator().manual_seed(0)) * torch.tensor([8.0, 4, 2, 1, 0.5, 0.25])
    mu, P = pca_whitening(x, dims=2)
    assert P.shape == (6, 2)
    unit = P / P.norm(dim=0)
    assert unit[0, 0].abs() > 0.99 and unit[1, 1].abs() > 0.99        # the two largest-variance axes, in order


def test_summary_separates_drawn_and_undrawn_attributes():
    s = summarize(np.array([0.9, 0.1, 0.5]), ["Male", "Attractive", "Smiling"])
    assert s["probe_map"] == pytest.approx(0.5) and s["probe_map_drawn"] == pytest.approx(0.7)
    assert s["probe_map_undrawn"] == pytest.approx(0.1)
    assert s["probe_map_coarse"] == pytest.approx(0.9) and s["probe_map_fine"] == pytest.approx(0.5)

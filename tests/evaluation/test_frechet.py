"""Fréchet distance: eigen route vs scipy sqrtm reference, exact identities, streaming statistics."""

import numpy as np
import pytest
import torch

from diffops.evaluation import frechet_distance
from diffops.evaluation.frechet import FeatureStats, FrechetReference, frechet_distance_scipy

def random_spd(rng: np.random.Generator, dim: int) -> np.ndarray:
    a = rng.standard_normal([dim, 2 * dim]) / np.sqrt(2 * dim)
    return a @ a.T + 1e-3 * np.eye(dim)

def random_features(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    """Correlated, non-centred, non-negative features (like SiLU / ReLU pool outputs)."""
    mix = rng.standard_normal([dim, dim]) / np.sqrt(dim)
    return np.maximum(rng.standard_normal([n, dim]) @ mix + 0.5, 0)

# ----------------------------------------------------------------------------
# Agreement with the sqrtm reference.

@pytest.mark.parametrize('dim', [8, 64, 256])
def test_matches_scipy_on_random_spd(dim):
    rng = np.random.default_rng(dim)
    mu1, mu2 = rng.standard_normal(dim), rng.standard_normal(dim)
    sigma1, sigma2 = random_spd(rng, dim), random_spd(rng, dim)
    fd, ref = frechet_distance(mu1, sigma1, mu2, sigma2), frechet_distance_scipy(mu1, sigma1, mu2, sigma2)
    assert fd == pytest.approx(ref, rel=1e-6)

def test_matches_scipy_on_feature_stats():
    rng = np.random.default_rng(0)
    s1 = FeatureStats().update(random_features(rng, 2000, 64))
    s2 = FeatureStats().update(random_features(rng, 1500, 64) * 1.1)
    fd = frechet_distance(s1.mu, s1.sigma, s2.mu, s2.sigma)
    ref = frechet_distance_scipy(s1.mu, s1.sigma, s2.mu, s2.sigma)
    assert fd > 0
    assert fd == pytest.approx(ref, rel=1e-6)

# ----------------------------------------------------------------------------
# Exact identities.

def test_identical_sets_give_zero():
    rng = np.random.default_rng(1)
    stats = FeatureStats().update(random_features(rng, 1000, 64))
    mu, sigma = stats.mu, stats.sigma
    assert frechet_distance(mu, sigma, mu, sigma) == 0.0

def test_mean_shift_adds_squared_norm():
    # FD(mu + delta, Sigma_1; mu, Sigma_2) - FD(mu, Sigma_1; mu, Sigma_2) = ||delta||^2 (Eq. 6, first term).
    rng = np.random.default_rng(2)
    dim = 32
    mu, sigma1, sigma2 = rng.standard_normal(dim), random_spd(rng, dim), random_spd(rng, dim)
    delta = rng.standard_normal(dim)
    base = frechet_distance(mu, sigma1, mu, sigma2)
    shifted = frechet_distance(mu + delta, sigma1, mu, sigma2)
    assert shifted - base == pytest.approx(delta @ delta, rel=1e-12, abs=1e-12)

def test_singular_covariances_match_scipy():
    # N < D: both covariances are rank-deficient, as with 2048-d Inception features of a small set.
    rng = np.random.default_rng(4)
    s1 = FeatureStats().update(random_features(rng, 40, 64))
    s2 = FeatureStats().update(random_features(rng, 50, 64) * 0.9)
    with pytest.warns(RuntimeWarning, match='rank-deficient'):
        stats = s1.mu, s1.sigma, s2.mu, s2.sigma
    assert frechet_distance(*stats) == pytest.approx(frechet_distance_scipy(*stats), rel=1e-6)

def test_cached_reference_gives_the_same_distance():
    rng = np.random.default_rng(5)
    ref = FeatureStats().update(random_features(rng, 500, 32))
    cached = FrechetReference(ref.mu, ref.sigma)
    for scale in (0.8, 1.0, 1.3):
        other = FeatureStats().update(random_features(rng, 400, 32) * scale)
        assert cached.distance(other.mu, other.sigma) == frechet_distance(ref.mu, ref.sigma, other.mu, other.sigma)

@pytest.mark.parametrize('which', ['1', '2'])
def test_broken_statistics_raise_instead_of_returning_nan_or_negative(which):
    rng = np.random.default_rng(6)
    mu, good = np.zeros(8), random_spd(rng, 8)
    bad_nan, bad_psd = good.copy(), good - 2 * np.eye(8) * np.linalg.eigvalsh(good).max()
    bad_nan[3, 3] = np.nan
    for bad, message in ((bad_nan, 'non-finite'), (bad_psd, 'positive semi-definite')):
        args = (mu, bad, mu, good) if which == '1' else (mu, good, mu, bad)
        with pytest.raises(ValueError, match=f'sigma{which} .*{message}'):
            frechet_distance(*args)
    with pytest.raises(ValueError, match=f'mu{which} has non-finite'):
        frechet_distance(*((np.full(8, np.inf), good, mu, good) if which == '1' else (mu, good, np.full(8, np.inf), good)))

def test_shape_validation():
    mu, sigma = np.zeros(4), np.eye(4)
    with pytest.raises(ValueError, match='sigma1'):
        frechet_distance(mu, np.eye(3), mu, sigma)
    with pytest.raises(ValueError, match='mu2'):
        frechet_distance(mu, sigma, np.zeros([4, 1]), sigma)
    with pytest.raises(ValueError, match='dimensions differ'):
        frechet_distance(mu, sigma, np.zeros(5), np.eye(5))

# ----------------------------------------------------------------------------
# Streaming statistics.

def test_batchwise_equals_numpy():
    rng = np.random.default_rng(3)
    f = random_features(rng, 1000, 48)
    stats = FeatureStats()
    for i in range(0, len(f), 128):
        batch = f[i : i + 128]
        stats.update(torch.from_numpy(batch) if i % 256 == 0 else batch)  # tensors and arrays alike
    assert stats.n == len(f)
    np.testing.assert_allclose(stats.mu, f.mean(axis=0), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(stats.sigma, np.cov(f, rowvar=False), rtol=1e-9, atol=1e-12)

def test_float32_input_accumulates_in_float64():
    f = torch.randn(100, 8, generator=torch.Generator().manual_seed(0))
    stats = FeatureStats().update(f)
    assert stats.mu.dtype == np.float64 and stats.sigma.dtype == np.float64
    np.testing.assert_allclose(stats.sigma, np.cov(f.double().numpy(), rowvar=False), rtol=1e-12, atol=1e-14)

def test_merge_equals_joint():
    rng = np.random.default_rng(4)
    a, b = random_features(rng, 300, 16), random_features(rng, 500, 16)
    merged = FeatureStats().update(a).merge(FeatureStats().update(b))
    joint = FeatureStats().update(np.concatenate([a, b]))
    assert merged.n == joint.n == 800
    np.testing.assert_allclose(merged.mu, joint.mu, rtol=1e-13)
    np.testing.assert_allclose(merged.sigma, joint.sigma, rtol=1e-12, atol=1e-14)
    assert FeatureStats().merge(joint).n == 800                  # empty + joint
    with pytest.raises(ValueError):
        FeatureStats().update(a).merge(FeatureStats().update(np.zeros([4, 8])))

def test_save_load_round_trip(tmp_path):
    rng = np.random.default_rng(5)
    f, more = random_features(rng, 200, 16), random_features(rng, 100, 16)
    stats = FeatureStats().update(f)
    path = stats.save(tmp_path / 'stats' / 'ref.npz')
    assert [p.name for p in path.parent.iterdir()] == ['ref.npz']  # no temporary left behind
    with np.load(path, allow_pickle=False) as data:
        assert sorted(data.files) == ['mu', 'n', 'sigma']
    loaded = FeatureStats.load(path)
    assert loaded.n == 200
    np.testing.assert_array_equal(loaded.mu, stats.mu)
    np.testing.assert_allclose(loaded.sigma, stats.sigma, rtol=1e-12, atol=1e-15)
    # The sums rebuilt from (mu, sigma, n) still accumulate.
    np.testing.assert_allclose(loaded.update(more).sigma, np.cov(np.concatenate([f, more]), rowvar=False),
                               rtol=1e-9, atol=1e-12)

def test_warns_when_rank_deficient():
    stats = FeatureStats().update(np.random.default_rng(6).standard_normal([10, 32]))
    with pytest.warns(RuntimeWarning, match='rank-deficient'):
        stats.sigma
    with pytest.raises(ValueError):
        FeatureStats(dim=4).update(np.zeros([1, 4])).sigma

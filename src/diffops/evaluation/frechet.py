"""Fréchet distance between Gaussians fitted to feature sets.

    FD = ||mu_1 - mu_2||^2 + tr(Sigma_1) + tr(Sigma_2) - 2 tr( (Sigma_1 Sigma_2)^(1/2) )

(Heusel et al. 2017, Eq. 6; Dowson & Landau 1982). `fid` is this distance in Inception-v3 pool
features; in any other feature space the metric is named after that space (e.g. `fd_attrnet`).

Statistics follow EDM's fid.py: float64 running sums S = sum_i f_i and SS = sum_i f_i^T f_i, then
mu = S / N and Sigma = (SS - N mu mu^T) / (N - 1). Sums merge by addition, so ranks can combine them.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import scipy.linalg
import torch

# ----------------------------------------------------------------------------
# Statistics of a feature set.

class FeatureStats:
    """Running float64 moments of a feature set: N, sum f, sum f^T f."""

    def __init__(self, dim: int | None = None):
        self.n = 0                  # number of feature vectors seen
        self.dim = dim              # feature dimension D, fixed by the first update if None
        self._sum = None            # S  = sum_i f_i,        (D,)
        self._sum_outer = None      # SS = sum_i f_i^T f_i,  (D, D)
        if dim is not None:
            self._allocate(dim)

    def _allocate(self, dim: int) -> None:
        self.dim = int(dim)
        self._sum = np.zeros([self.dim], dtype=np.float64)
        self._sum_outer = np.zeros([self.dim, self.dim], dtype=np.float64)

    def update(self, features: torch.Tensor | np.ndarray) -> "FeatureStats":
        """Add a batch of features, shape (N, D). Accumulation is in float64."""
        if isinstance(features, torch.Tensor):
            features = features.detach().to('cpu', torch.float64).numpy()
        f = np.asarray(features, dtype=np.float64)
        if f.ndim != 2:
            raise ValueError(f'features must have shape (N, D), got {f.shape}')
        if self._sum is None:
            self._allocate(f.shape[1])
        if f.shape[1] != self.dim:
            raise ValueError(f'feature dimension {f.shape[1]} does not match accumulated dimension {self.dim}')
        self.n += f.shape[0]
        self._sum += f.sum(axis=0)
        self._sum_outer += f.T @ f
        return self

    def merge(self, other: "FeatureStats") -> "FeatureStats":
        """Add another accumulator's sums to this one (e.g. gathered from another rank)."""
        if other.n == 0:
            return self
        if self._sum is None:
            self._allocate(other.dim)
        if other.dim != self.dim:
            raise ValueError(f'cannot merge feature stats of dimension {other.dim} into {self.dim}')
        self.n += other.n
        self._sum += other._sum
        self._sum_outer += other._sum_outer
        return self

    @property
    def mu(self) -> np.ndarray:
        """Mean mu = S / N, shape (D,)."""
        if self.n < 1:
            raise ValueError('no features accumulated')
        return self._sum / self.n

    @property
    def sigma(self) -> np.ndarray:
        """Unbiased covariance Sigma = (SS - N mu mu^T) / (N - 1), shape (D, D)."""
        if self.n < 2:
            raise ValueError(f'covariance needs at least 2 features, got {self.n}')
        if self.n <= self.dim:
            # rank(Sigma) <= N - 1 < D: the Fréchet distance is then dominated by estimation error.
            warnings.warn(f'{self.n} features of dimension {self.dim}: the covariance is rank-deficient '
                          f'(needs N > D); the Fréchet distance is unreliable', RuntimeWarning, stacklevel=2)
        mu = self.mu
        sigma = (self._sum_outer - self.n * np.outer(mu, mu)) / (self.n - 1)
        return (sigma + sigma.T) / 2  # exact symmetry; the sums are symmetric up to round-off

    def save(self, path: str | os.PathLike) -> Path:
        """Write {mu, sigma, n} as .npz (EDM's reference-statistics format plus n), atomically."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f'{path.name}.{os.getpid()}.tmp')
        try:
            with open(tmp, 'wb') as f:
                np.savez(f, mu=self.mu, sigma=self.sigma, n=np.int64(self.n))
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "FeatureStats":
        """Read an .npz written by `save`; the sums are rebuilt from (mu, sigma, n) so it can still merge."""
        with np.load(path, allow_pickle=False) as data:
            if 'n' not in data:
                raise ValueError(f'{path} has no sample count n (EDM-style {{mu, sigma}} file?); '
                                 f'read it with np.load and pass mu, sigma to frechet_distance')
            mu = np.asarray(data['mu'], dtype=np.float64)
            sigma = np.asarray(data['sigma'], dtype=np.float64)
            n = int(data['n'])
        _check_stats(mu, sigma, 'loaded')
        stats = cls(dim=mu.shape[0])
        stats.n = n
        stats._sum = n * mu                                        # S  = N mu
        stats._sum_outer = (n - 1) * sigma + n * np.outer(mu, mu)  # SS = (N - 1) Sigma + N mu mu^T
        return stats

# ----------------------------------------------------------------------------
# Fréchet distance.

def _check_stats(mu: np.ndarray, sigma: np.ndarray, name: str) -> None:
    if mu.ndim != 1:
        raise ValueError(f'mu{name} must be a vector (D,), got shape {mu.shape}')
    if sigma.shape != (mu.shape[0], mu.shape[0]):
        raise ValueError(f'sigma{name} must have shape ({mu.shape[0]}, {mu.shape[0]}) to match mu{name}, got {sigma.shape}')

def _as_stats(mu1, sigma1, mu2, sigma2) -> tuple[np.ndarray, ...]:
    mu1, sigma1, mu2, sigma2 = (np.asarray(a, dtype=np.float64) for a in (mu1, sigma1, mu2, sigma2))
    _check_stats(mu1, sigma1, '1')
    _check_stats(mu2, sigma2, '2')
    if mu1.shape != mu2.shape:
        raise ValueError(f'feature dimensions differ: mu1 {mu1.shape} vs mu2 {mu2.shape}')
    return mu1, sigma1, mu2, sigma2

def _check_finite(a: np.ndarray, name: str) -> None:
    if not np.isfinite(a).all():
        raise ValueError(f'{name} has non-finite entries (NaN or inf): the features it was fitted to are broken')

def _psd_tolerance(eigenvalues: np.ndarray) -> float:
    """Round-off allowed below zero for the eigenvalues of a covariance: float64 eps x dim x its scale."""
    return 100 * np.finfo(np.float64).eps * len(eigenvalues) * max(np.abs(eigenvalues).max(), 1e-300)

class FrechetReference:
    """N(mu_1, Sigma_1) for distances to many (mu_2, Sigma_2): a factor of Sigma_1 is computed once.

    tr (Sigma_1 Sigma_2)^(1/2) needs no non-symmetric matrix square root. With any F such that
    Sigma_1 = F F^T, Sigma_1 Sigma_2 = F (F^T Sigma_2) and M = F^T Sigma_2 F share their eigenvalues (XY
    and YX have one spectrum). M is symmetric PSD, so its eigenvalues lambda_i are real and >= 0, and the
    principal square root of Sigma_1 Sigma_2 has eigenvalues sqrt(lambda_i):
        tr (Sigma_1 Sigma_2)^(1/2) = sum_i sqrt(lambda_i(M)).
    F is the Cholesky factor when Sigma_1 is positive definite, else V diag(sqrt(w)) from its eigh (a
    rank-deficient Sigma_1, e.g. fewer features than dimensions). Each distance is then two matrix
    products and one eigvalsh (eigenvalues only), never complex.
    """

    def __init__(self, mu, sigma):
        mu, sigma, _, _ = _as_stats(mu, sigma, mu, sigma)
        _check_finite(mu, 'mu1'), _check_finite(sigma, 'sigma1')
        if not np.allclose(sigma, sigma.T, rtol=1e-10, atol=1e-12 * max(np.abs(sigma).max(), 1e-300)):
            raise ValueError('sigma1 is not symmetric, so it is no covariance matrix')
        self.mu, self.sigma, self.trace = mu, sigma, float(np.trace(sigma))
        try:
            self.factor = np.linalg.cholesky(sigma)                    # Sigma_1 = L L^T
        except np.linalg.LinAlgError:                                  # singular or not PSD: eigh tells which
            w, v = np.linalg.eigh((sigma + sigma.T) / 2)
            if w[0] < -_psd_tolerance(w):
                raise ValueError(f'sigma1 is not positive semi-definite (eigenvalue {w[0]:.3g}), '
                                 'so it is no covariance matrix') from None
            self.factor = v * np.sqrt(np.clip(w, 0, None))            # Sigma_1 = (V sqrt(w)) (V sqrt(w))^T

    def distance(self, mu2, sigma2) -> float:
        mu1, sigma1, mu2, sigma2 = _as_stats(self.mu, self.sigma, mu2, sigma2)
        _check_finite(mu2, 'mu2'), _check_finite(sigma2, 'sigma2')
        if np.array_equal(mu1, mu2) and np.array_equal(sigma1, sigma2):
            return 0.0                                                 # exactly, not up to round-off
        f = self.factor
        m = f.T @ sigma2 @ f                                           # M = F^T Sigma_2 F
        lam = np.linalg.eigvalsh((m + m.T) / 2)
        if lam[0] < -_psd_tolerance(lam) or np.trace(sigma2) < 0:
            raise ValueError(f'sigma2 is not positive semi-definite (F^T sigma2 F has eigenvalue {lam[0]:.3g}), '
                             'so it is no covariance matrix')
        tr_covmean = np.sqrt(np.clip(lam, 0, None)).sum()              # tr (Sigma_1 Sigma_2)^(1/2)
        diff = mu1 - mu2
        return float(max(diff @ diff + self.trace + np.trace(sigma2) - 2 * tr_covmean, 0.0))


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2), in float64 (FrechetReference's route).

    Raises ValueError on non-finite or non-PSD covariances; exactly 0 for identical statistics; never
    negative (round-off below zero is clipped). To score many sets against one reference, build a
    FrechetReference once."""
    return FrechetReference(mu1, sigma1).distance(mu2, sigma2)

def frechet_distance_scipy(mu1, sigma1, mu2, sigma2) -> float:
    """Reference implementation as in EDM's fid.py: real part of scipy.linalg.sqrtm(Sigma_1 Sigma_2).

    For tests and cross-checks; slower, and may return complex round-off for near-singular input.
    """
    mu1, sigma1, mu2, sigma2 = _as_stats(mu1, sigma1, mu2, sigma2)
    diff = mu1 - mu2
    covmean = np.real(scipy.linalg.sqrtm(sigma1 @ sigma2))
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))

# ----------------------------------------------------------------------------


def fd_features(a, b) -> float:
    """Fréchet distance between Gaussian fits of two feature sets (N, D), or FeatureStats already fitted,
    or (for `b`) a FrechetReference."""
    sa = a if isinstance(a, FeatureStats) else FeatureStats().update(a)
    if isinstance(b, FrechetReference):
        return b.distance(sa.mu, sa.sigma)
    sb = b if isinstance(b, FeatureStats) else FeatureStats().update(b)
    return frechet_distance(sa.mu, sa.sigma, sb.mu, sb.sigma)

"""The VP-SDE tau <-> EDM sigma map and the discriminator's importance-sampled tau."""
import math

import numpy as np
import pytest
import torch

from diffops.diffusion import vp

pytestmark = pytest.mark.usefixtures("one_thread")


def test_sigma_tau_round_trip_and_endpoints():
    tau = torch.linspace(1e-5, 1, 1001, dtype=torch.float64)
    assert torch.allclose(vp.tau_from_sigma(vp.sigma_from_tau(tau)), tau, rtol=1e-9, atol=1e-12)
    sigma = torch.logspace(-3, 2.1, 500, dtype=torch.float64)
    assert torch.allclose(vp.sigma_from_tau(vp.tau_from_sigma(sigma)), sigma, rtol=1e-9)
    assert math.isclose(vp.sigma_from_tau(torch.tensor(1.0, dtype=torch.float64)).item(), math.sqrt(math.expm1(0.1 + 19.9 / 2)))


def test_vp_marginal_matches_edm_scaling():
    """x_tau = alpha x0 + sigma_vp z with alpha = exp(-I/2): alpha = 1/sqrt(1+sigma^2), sigma = sigma_vp/alpha."""
    tau = torch.linspace(0.01, 1, 50, dtype=torch.float64)
    integral = 0.1 * tau + 0.5 * 19.9 * tau**2                      # int_0^tau beta, by hand
    alpha = torch.exp(-integral / 2)
    sigma_vp = (1 - alpha**2).sqrt()
    sigma = vp.sigma_from_tau(tau)
    assert torch.allclose(vp.alpha_from_sigma(sigma), alpha, rtol=1e-12)
    assert torch.allclose(sigma, sigma_vp / alpha, rtol=1e-12)
    # beta(tau) is the derivative of I: check the closed-form integral against a finite difference
    h = 1e-6
    assert torch.allclose((vp.integral_beta(tau + h) - vp.integral_beta(tau - h)) / (2 * h), 0.1 + 19.9 * tau, rtol=1e-6)


def test_importance_sampled_tau_has_density_beta_over_sigma_vp_squared():
    tau = vp.sample_tau_importance(200_000, torch.Generator().manual_seed(0)).double().numpy()
    assert tau.min() >= 1e-5 and tau.max() <= 1
    # Expected mass of each bin by integrating beta / (1 - exp(-I)) numerically.
    grid = np.linspace(1e-5, 1, 400_001)
    integral = 0.1 * grid + 0.5 * 19.9 * grid**2
    density = (0.1 + 19.9 * grid) / -np.expm1(-integral)
    cdf = np.concatenate([[0], np.cumsum((density[1:] + density[:-1]) / 2 * np.diff(grid))])
    cdf /= cdf[-1]
    edges = np.array([1e-5, 1e-4, 1e-3, 0.01, 0.05, 0.1, 0.3, 0.6, 1.0])
    expected = np.diff(np.interp(edges, grid, cdf))
    observed = np.histogram(tau, edges)[0] / len(tau)
    assert np.abs(observed - expected).max() < 0.005, (observed, expected)
    assert observed[:3].sum() > 0.3                                 # heavy at small tau, as the released sampler

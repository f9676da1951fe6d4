import math

import torch

from diffops.diffusion.edm import EDMPrecond, edm_coefficients, edm_loss


def test_coefficients_match_table1():
    sigma_data = 0.5
    for s in [0.002, 0.1, 0.5, 1.0, 80.0]:
        c_skip, c_out, c_in, c_noise = edm_coefficients(torch.tensor(s, dtype=torch.float64), sigma_data)
        assert math.isclose(c_skip, sigma_data**2 / (s**2 + sigma_data**2), rel_tol=1e-12)
        assert math.isclose(c_out, s * sigma_data / math.sqrt(s**2 + sigma_data**2), rel_tol=1e-12)
        assert math.isclose(c_in, 1 / math.sqrt(s**2 + sigma_data**2), rel_tol=1e-12)
        assert math.isclose(c_noise, math.log(s) / 4, rel_tol=1e-12)
        # Unit variance of the network's input and training target (EDM Appendix B.6).
        assert math.isclose(c_in**2 * (sigma_data**2 + s**2), 1.0, rel_tol=1e-12)
        # Effective training target F = (y - c_skip (y + n)) / c_out has unit variance (Eq. 138).
        assert math.isclose(((1 - c_skip) ** 2 * sigma_data**2 + c_skip**2 * s**2) / c_out**2, 1.0, rel_tol=1e-9)


class Zero(torch.nn.Module):
    def forward(self, x, c_noise):
        return torch.zeros_like(x)


def test_precond_with_zero_network_is_c_skip_times_x():
    D = EDMPrecond(Zero(), sigma_data=0.5)
    x = torch.randn(3, 3, 4, 4)
    sigma = torch.tensor([0.1, 1.0, 10.0])
    expected = x * (0.25 / (sigma**2 + 0.25)).reshape(-1, 1, 1, 1)
    torch.testing.assert_close(D(x, sigma), expected)


def test_loss_is_per_sample_and_deterministic_under_generator():
    D = EDMPrecond(Zero())
    y = torch.randn(5, 3, 8, 8)
    a = edm_loss(D, y, torch.Generator().manual_seed(1))
    b = edm_loss(D, y, torch.Generator().manual_seed(1))
    c = edm_loss(D, y, torch.Generator().manual_seed(2))
    assert a.shape == (5,) and torch.isfinite(a).all()
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_loss_weight_lambda():
    # With F = 0, D = c_skip (y + n); for y = 0 and n = sigma*eps the loss is lambda c_skip^2 sigma^2 E[eps^2].
    D = EDMPrecond(Zero())
    g = torch.Generator().manual_seed(0)
    y = torch.zeros(1, 1, 64, 64)
    loss = edm_loss(D, y, g, P_mean=0.0, P_std=1e-9)          # sigma = 1
    lam, c_skip = (1 + 0.25) / 0.25, 0.25 / 1.25
    assert abs(loss.item() - lam * c_skip**2) < 0.1 * lam * c_skip**2

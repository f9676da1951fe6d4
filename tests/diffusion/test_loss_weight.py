"""diffops.diffusion.loss_weight, cell by cell against the reference table (compute_mse_loss_weight), and its
EDM mapping against the target MSE it stands for."""
import math

import pytest
import torch

import diffops.diffusion as diffusion
from diffops.diffusion.loss_weight import edm_weight, loss_weight

ALPHA = torch.tensor([0.0, 0.3, 0.8, 0.999], dtype=torch.float64)
SIGMA = (1 - ALPHA**2).sqrt()
SNR = (ALPHA / SIGMA) ** 2          # 0 at the first entry: every weight is 1 there

CELLS = [   # (name, target, expected weight as a function of alpha, sigma, snr)
    ("constant", "eps", lambda a, s, r: 1.0), ("constant", "x0", lambda a, s, r: 1.0),
    ("constant", "v", lambda a, s, r: 1.0),
    ("lambda", "eps", lambda a, s, r: s), ("lambda", "x0", lambda a, s, r: a), ("lambda", "v", lambda a, s, r: a * s),
    ("min_snr_5", "eps", lambda a, s, r: min(r, 5) / r), ("min_snr_5", "x0", lambda a, s, r: min(r, 5)),
    ("min_snr_5", "v", lambda a, s, r: min(r, 5) / (r + 1)),
    ("max_snr_2.5", "eps", lambda a, s, r: max(r, 2.5) / r), ("max_snr_2.5", "x0", lambda a, s, r: max(r, 2.5)),
    ("p2", "eps", lambda a, s, r: 1 / (1 + r)),
    ("debias", "eps", lambda a, s, r: s / a), ("min_debias", "eps", lambda a, s, r: min(s / a, 1)),
    ("max_debias", "eps", lambda a, s, r: max(s / a, 1)),
    ("snr", "x0", lambda a, s, r: r), ("inv_snr", "x0", lambda a, s, r: 1 / r),
    ("trunc_snr", "x0", lambda a, s, r: max(r, 1)),
]


@pytest.mark.parametrize("name,target,expected", CELLS, ids=[f"{n}-{t}" for n, t, _ in CELLS])
def test_every_cell_of_the_table(name, target, expected):
    w = loss_weight(name, target, ALPHA, SIGMA)
    assert w.shape == ALPHA.shape
    assert w[0] == 1                                         # snr = 0
    for i in range(1, len(ALPHA)):
        a, s, r = ALPHA[i].item(), SIGMA[i].item(), SNR[i].item()
        assert w[i].item() == pytest.approx(expected(a, s, r), rel=1e-12), i


def test_p2_knobs_and_shape():
    w = loss_weight("p2", "eps", ALPHA[1:].reshape(3, 1), SIGMA[1:].reshape(3, 1), p2_k=2.0, p2_gamma=0.5)
    assert w.shape == (3, 1)
    assert torch.allclose(w.flatten(), 1 / (2 + SNR[1:]) ** 0.5)


@pytest.mark.parametrize("name,target", [("p2", "x0"), ("debias", "v"), ("snr", "eps"), ("max_snr_2", "v"),
                                         ("trunc_snr", "eps"), ("min_snr_", "eps"), ("min_snr_-1", "eps"),
                                         ("min_snr", "eps"), ("lambda2", "eps"), ("lambda", "flow")])
def test_empty_cells_and_bad_names_raise(name, target):
    with pytest.raises(ValueError):
        loss_weight(name, target, ALPHA, SIGMA)


def test_public_import():
    assert diffusion.loss_weight is loss_weight


@pytest.mark.parametrize("target", ["eps", "x0", "v"])
@pytest.mark.parametrize("name", ["lambda", "min_snr_5", "constant"])
def test_edm_weight_equals_the_target_mse(name, target):
    """w(target) ||target_hat - target||^2 == edm_weight ||D - x0||^2 for a denoiser and the prediction it implies."""
    g = torch.Generator().manual_seed(0)
    s = torch.tensor([0.05, 0.7, 3.0, 40.0], dtype=torch.float64).reshape(-1, 1)
    x0, eps, D = (torch.randn(4, 16, generator=g, dtype=torch.float64) for _ in range(3))
    alpha, sigma = 1 / (1 + s**2).sqrt(), s / (1 + s**2).sqrt()
    x = x0 + s * eps                                         # EDM input; x_t = alpha x
    eps_hat = (x - D) / s
    target_of = {"eps": (eps, eps_hat), "x0": (x0, D),
                 "v": (alpha * eps - sigma * x0, alpha * eps_hat - sigma * D)}[target]
    lhs = loss_weight(name, target, alpha, sigma).flatten() * ((target_of[1] - target_of[0]) ** 2).sum(1)
    rhs = edm_weight(name, target, s).flatten() * ((D - x0) ** 2).sum(1)
    assert torch.allclose(lhs, rhs, rtol=1e-10)


def test_edm_weight_of_constant_eps_is_one_over_sigma_squared():
    s = torch.tensor([0.1, 1.0, 10.0])
    assert torch.allclose(edm_weight("constant", "eps", s), 1 / s**2)
    assert math.isclose(edm_weight("lambda", "x0", torch.tensor(0.0)).item(), 1.0)   # snr = inf: alpha = 1

"""diffusion/ddpm.py: the linear-beta DDPM tables and the exact sigma <-> t correspondence with EDM."""
import math

import numpy as np
import pytest
import torch

from diffops.diffusion.ddpm import DDPMSchedule
from diffops.diffusion.edm import EDMPrecond
from diffops.methods.pdae import frozen_dpm
from diffops.nets.unet import build_unet

S = DDPMSchedule()


def test_tables_match_the_reference_definitions():
    betas = np.linspace(1e-4, 0.02, 1000)
    abar = np.cumprod(1 - betas)
    np.testing.assert_allclose(S.betas.numpy(), betas, rtol=1e-12)
    np.testing.assert_allclose(S.alphas_cumprod.numpy(), abar, rtol=1e-12)
    assert S.alphas_cumprod_prev[0] == 1 and torch.equal(S.alphas_cumprod_prev[1:], S.alphas_cumprod[:-1])
    np.testing.assert_allclose(S.sigmas.numpy(), np.sqrt((1 - abar) / abar), rtol=1e-12)
    assert math.isclose(float(S.sigmas[0]), math.sqrt(1e-4 / (1 - 1e-4)), rel_tol=1e-12)   # 0.0100
    assert 150 < float(S.sigmas[-1]) < 160 and bool((S.sigmas.diff() > 0).all())


def test_sigma_to_t_is_the_exact_inverse_on_the_steps_and_monotone_between():
    t = torch.arange(1000)
    torch.testing.assert_close(S.t_from_sigma(S.sigma(t)), t.to(torch.float64), atol=1e-9, rtol=0)
    mid = (S.sigmas[:-1] * S.sigmas[1:]).sqrt()          # geometric midpoints -> t + 1/2 (linear in ln sigma)
    torch.testing.assert_close(S.t_from_sigma(mid), t[:-1].to(torch.float64) + 0.5, atol=1e-9, rtol=0)
    assert S.t_from_sigma(torch.tensor([1e-6, 1e6])).tolist() == [0.0, 999.0]


def test_ddpm_sample_divided_by_sqrt_abar_is_edm_sample():
    g = torch.Generator().manual_seed(0)
    x0, eps = torch.randn(5, 3, 4, 4, generator=g, dtype=torch.float64), torch.randn(5, 3, 4, 4, generator=g, dtype=torch.float64)
    t = torch.tensor([0, 10, 250, 600, 999])
    x_tilde, sigma = S.to_edm(S.q_sample(x0, t, eps), t)
    torch.testing.assert_close(x_tilde, x0 + sigma.reshape(-1, 1, 1, 1) * eps, rtol=1e-10, atol=1e-10)


def test_oracle_denoiser_gives_the_true_noise():
    g = torch.Generator().manual_seed(1)
    x0, eps = torch.randn(4, 3, 4, 4, generator=g, dtype=torch.float64), torch.randn(4, 3, 4, 4, generator=g, dtype=torch.float64)
    t = torch.tensor([0, 3, 500, 999])
    oracle = lambda x, sigma: x0                                     # noqa: E731  D(x; sigma) = x0
    torch.testing.assert_close(S.eps(oracle, S.q_sample(x0, t, eps), t), eps, rtol=1e-8, atol=1e-8)


def test_ideal_gaussian_denoiser_becomes_the_ideal_eps_predictor():
    # Data N(0, s^2 I): the ideal EDM denoiser is D(x; sigma) = s^2 / (s^2 + sigma^2) x, and the ideal
    # DDPM predictor is E[eps | x_t] = sqrt(1 - abar) / (abar s^2 + 1 - abar) x_t. The map must turn one into the other.
    s2 = 0.25
    D = lambda x, sigma: s2 / (s2 + sigma.reshape(-1, 1, 1, 1) ** 2) * x     # noqa: E731
    t = torch.arange(0, 1000, 37)
    x_t = torch.randn(len(t), 3, 2, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    ab = S.alphas_cumprod[t].reshape(-1, 1, 1, 1)
    torch.testing.assert_close(S.eps(D, x_t, t), (1 - ab).sqrt() / (ab * s2 + 1 - ab) * x_t, rtol=1e-9, atol=1e-12)


def test_shift_coefficient_moves_the_posterior_mean_by_beta_tilde_G():
    # mu(x_t, eps) = (x_t - beta_t / sqrt(1 - abar_t) eps) / sqrt(alpha_t); eps -> eps + s_t G must add beta~_t G.
    t = torch.arange(1, 1000)
    dmu_dG = -S.betas[t] / (S.alphas[t].sqrt() * (1 - S.alphas_cumprod[t]).sqrt()) * S.shift_coef[t]
    torch.testing.assert_close(dmu_dG, S.posterior_variance[t], rtol=1e-10, atol=0)
    assert S.shift_coef[0] == 0 and bool((S.shift_coef[1:] < 0).all())


def test_pdae_weight_is_snr_power_over_one_plus_snr():
    snr = S.alphas_cumprod / (1 - S.alphas_cumprod)
    torch.testing.assert_close(S.pdae_weight, (1 / (1 + snr)) ** 0.9 * (snr / (1 + snr)) ** 0.1, rtol=1e-12, atol=0)


def test_frozen_dpm_in_two_halves_equals_the_edm_denoiser_as_eps_predictor():
    torch.manual_seed(0)
    D = EDMPrecond(build_unet(16, [8, 16], [False, True], norm_num_groups=4)).eval()
    x_t, t = torch.randn(3, 3, 16, 16), torch.tensor([0, 400, 999])
    with torch.no_grad():
        eps, (h, skips, emb) = frozen_dpm(D, x_t, t, S)
        torch.testing.assert_close(eps, S.eps(D, x_t, t).to(torch.float32), rtol=1e-4, atol=1e-4)  # eps = (x - D) / 0.01 at t = 0
    assert h.shape[0] == 3 and len(skips) == 4 and emb.shape == (3, 32)


# --- the cosine schedule and DDPMPrecond (ERD's ddpm method) ----------------------------------

def test_cosine_schedule_is_nichols():
    from diffops.diffusion.ddpm import DDPMSchedule
    s = DDPMSchedule(schedule="cosine")
    f = lambda t: math.cos((t / 1000 + 0.008) / 1.008 * math.pi / 2) ** 2
    for t in (0, 10, 500, 900):
        assert s.alphas_cumprod[t].item() == pytest.approx(f(t + 1) / f(0), rel=1e-9)
    assert s.betas.max().item() == pytest.approx(0.999)              # clipped at the last step
    assert bool((s.sigmas[1:] > s.sigmas[:-1]).all())


def test_unknown_schedule_raises():
    from diffops.diffusion.ddpm import DDPMSchedule
    with pytest.raises(ValueError, match="schedule"):
        DDPMSchedule(schedule="quadratic")


@pytest.mark.parametrize("target", ["eps", "x0", "v"])
@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_ddpm_precond_of_the_exact_predictor_returns_x0(target, schedule):
    """A network that outputs its exact target makes D(x0 + sigma eps; sigma) == x0 at the table's sigmas."""
    from diffops.diffusion.ddpm import DDPMPrecond, DDPMSchedule
    sched = DDPMSchedule(schedule=schedule)
    g = torch.Generator().manual_seed(0)
    x0, eps = torch.randn(4, 3, 8, 8, generator=g), torch.randn(4, 3, 8, 8, generator=g)
    t = torch.tensor([0, 100, 600, 950])
    abar = sched.alphas_cumprod[t].reshape(-1, 1, 1, 1)
    alpha, sigma_t = abar.sqrt().float(), (1 - abar).sqrt().float()

    class Oracle(torch.nn.Module):
        def forward(self, x_t, t_in):
            assert torch.allclose(t_in, t.float(), atol=1e-3)        # t recovered from sigma
            return {"eps": eps, "x0": x0, "v": alpha * eps - sigma_t * x0}[target]

    D = DDPMPrecond(Oracle(), schedule=schedule, target=target)
    sigma = sched.sigmas[t].float()
    out = D(x0 + sigma.reshape(-1, 1, 1, 1) * eps, sigma)
    assert torch.allclose(out, x0, atol=2e-3 * max(1.0, sigma.max().item() / 100))
    assert D.sigma_min == pytest.approx(sched.sigmas[0].item()) and D.sigma_max == pytest.approx(sched.sigmas[-1].item())

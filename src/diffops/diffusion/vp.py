"""The VP-SDE time tau and its exact correspondence with EDM's sigma (Song et al. 2021; Karras et al. 2022).

This is the one place where continuous VP time tau in [0, 1] meets EDM's sigma. TIW-DSM and
Discriminator Guidance train and query their discriminators d(x_tau, tau) in VP form
(alsdudrla10/TIW-DSM classifier_lib.py, linear beta 0.1 -> 20); the diffusion model is an EDM denoiser.

    beta(tau) = beta_min + (beta_max - beta_min) tau
    I(tau)    = int_0^tau beta = beta_min tau + (beta_max - beta_min) tau^2 / 2
    x_tau     = alpha(tau) x0 + sigma_vp(tau) z,   alpha = exp(-I / 2),   sigma_vp^2 = 1 - alpha^2

Dividing by alpha gives EDM's form x = x0 + sigma n with

    sigma^2 = sigma_vp^2 / alpha^2 = exp(I(tau)) - 1,     i.e.  ln(1 + sigma^2) = I(tau)
    tau     = (-beta_min + sqrt(beta_min^2 + 2 (beta_max - beta_min) ln(1 + sigma^2))) / (beta_max - beta_min)
    alpha   = 1 / sqrt(1 + sigma^2)

so a VP network sees alpha * x for an EDM sample x at noise level sigma. Density ratios of the two
forms agree (the scaling's Jacobian cancels), and gradients convert by the chain rule:
grad_x f(alpha x) = alpha grad f.

The discriminator's t distribution ("importance sampling", score_sde likelihood weighting) has density
proportional to beta(tau) / sigma_vp(tau)^2 on [eps, 1]. Since
beta / sigma_vp^2 dtau = dI / (1 - exp(-I)) = d ln(exp(I) - 1) = d ln(sigma^2),
it is exactly ln(sigma) uniform on [ln sigma(eps), ln sigma(1)]; `sample_tau_importance` draws it so.

(DiTi's discrete T = 1000 DDPM with beta 1e-4 -> 0.02 is a discretisation of the same beta(tau), but its
sigma_t is a product over steps, not exp(I): it lives in diffusion/ddpm.py and is not interchangeable.)
"""
from __future__ import annotations

import math

import torch

BETA_MIN, BETA_MAX = 0.1, 20.0      # TIW-DSM / DG / ScoreSDE linear VP schedule
TAU_EPS = 1e-5                      # lower end of the discriminator's t range (TIW-DSM train_classifier.py)


def integral_beta(tau, beta_min: float = BETA_MIN, beta_max: float = BETA_MAX):
    """I(tau) = int_0^tau beta(s) ds."""
    return beta_min * tau + 0.5 * (beta_max - beta_min) * tau**2


def sigma_from_tau(tau: torch.Tensor, beta_min: float = BETA_MIN, beta_max: float = BETA_MAX) -> torch.Tensor:
    """EDM sigma of VP time tau: sqrt(exp(I(tau)) - 1)."""
    return torch.expm1(integral_beta(tau, beta_min, beta_max)).sqrt()


def tau_from_sigma(sigma: torch.Tensor, beta_min: float = BETA_MIN, beta_max: float = BETA_MAX) -> torch.Tensor:
    """VP time tau of EDM sigma: the positive root of I(tau) = ln(1 + sigma^2)."""
    d = beta_max - beta_min
    return (-beta_min + (beta_min**2 + 2 * d * torch.log1p(sigma**2)).sqrt()) / d


def alpha_from_sigma(sigma: torch.Tensor) -> torch.Tensor:
    """VP input scale alpha(tau(sigma)) = 1 / sqrt(1 + sigma^2): the VP network sees alpha * (x0 + sigma n)."""
    return torch.rsqrt(1 + sigma**2)


def sample_tau_importance(n: int, generator: torch.Generator, device=None, eps: float = TAU_EPS,
                          beta_min: float = BETA_MIN, beta_max: float = BETA_MAX) -> torch.Tensor:
    """n draws of tau on [eps, 1] with density proportional to beta(tau) / sigma_vp(tau)^2 (see module doc)."""
    lo = math.log(math.expm1(integral_beta(eps, beta_min, beta_max)))     # ln sigma(eps)^2
    hi = math.log(math.expm1(integral_beta(1.0, beta_min, beta_max)))     # ln sigma(1)^2
    u = torch.rand([n], generator=generator, device=device, dtype=torch.float64)
    sigma = (0.5 * (lo + u * (hi - lo))).exp()
    return tau_from_sigma(sigma, beta_min, beta_max).clamp(eps, 1.0).to(torch.float32)

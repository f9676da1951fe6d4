"""Discriminator guidance (Kim, Kim et al., ICML 2023; alsdudrla10/DG) for the EDM sampler.

DG adds w * grad_x log r(x_t) to the score, r = d / (1 - d) the discriminator's density ratio. With
TIW-DSM's discriminator (reference = 1, biased = 0) and w = 1, a model of p_bias is steered towards
p_ref: grad log p_bias^t + grad log (p_ref^t / p_bias^t) = grad log p_ref^t.

In the EDM ODE dx/dsigma = (x - D) / sigma = -sigma * score, adding w grad log r to the score is the
same as using the denoiser

    D'(x; sigma) = D(x; sigma) + w sigma^2 grad_x log r(alpha x, tau(sigma))

(DG generate.py: d <- d - w sigma grad log r), so guidance is a denoiser wrapper and every sampler
takes it unchanged. Guidance applies only for VP time tau(sigma) in [tau_min, tau_max] (DG's default:
[0.01, 1]); log r is the discriminator's logit, clipped as in methods/tiw_dsm.py.
"""
from __future__ import annotations

import torch
from torch import nn

from ..diffusion import vp

LOGIT_CLIP = 11.512925464970229          # log((1 - 1e-5) / 1e-5): D clipped to [1e-5, 1 - 1e-5]


class GuidedDenoiser(nn.Module):
    def __init__(self, D: nn.Module, discriminator: nn.Module, weight: float, tau_min: float = 0.01,
                 tau_max: float = 1.0):
        super().__init__()
        self.D, self.discriminator = D, discriminator
        self.weight, self.tau_min, self.tau_max = weight, tau_min, tau_max
        self.sigma_min = getattr(D, "sigma_min", 0.0)
        self.sigma_max = getattr(D, "sigma_max", float("inf"))

    def forward(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        denoised = self.D(x, sigma)
        sigma = sigma.to(torch.float32).reshape(-1, 1, 1, 1).expand(x.shape[0], 1, 1, 1)
        tau = vp.tau_from_sigma(sigma.flatten())
        active = (tau >= self.tau_min) & (tau <= self.tau_max)
        if self.weight == 0 or not active.any():
            return denoised
        with torch.enable_grad():
            x_in = x.detach().to(torch.float32).requires_grad_(True)
            logit = self.discriminator(vp.alpha_from_sigma(sigma) * x_in, tau).clamp(-LOGIT_CLIP, LOGIT_CLIP)
            (grad,) = torch.autograd.grad(logit.sum(), x_in)
        return denoised + active.reshape(-1, 1, 1, 1) * (self.weight * sigma**2 * grad)

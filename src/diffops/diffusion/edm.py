"""EDM preconditioning and loss (Karras et al., "Elucidating the Design Space of Diffusion-Based
Generative Models", NeurIPS 2022; NVlabs/edm training/networks.py and training/loss.py).

Notation: x is a noisy image, sigma its noise level, F the raw network, D the denoiser
D(x; sigma) = c_skip(sigma) x + c_out(sigma) F(c_in(sigma) x; c_noise(sigma))      (Eq. 7)
with sigma_data the standard deviation of the data (0.5 for images in [-1, 1]).
"""
from __future__ import annotations

import torch
from torch import nn


def edm_coefficients(sigma: torch.Tensor, sigma_data: float):
    """c_skip, c_out, c_in, c_noise of Table 1 (EDM column)."""
    c_skip = sigma_data**2 / (sigma**2 + sigma_data**2)
    c_out = sigma * sigma_data / (sigma**2 + sigma_data**2).sqrt()
    c_in = 1 / (sigma_data**2 + sigma**2).sqrt()
    c_noise = sigma.log() / 4
    return c_skip, c_out, c_in, c_noise


class EDMPrecond(nn.Module):
    """Wraps a raw network F(x, c_noise) -> same shape (e.g. diffusers UNet2DModel) into D(x; sigma)."""

    def __init__(self, net: nn.Module, sigma_data: float = 0.5,
                 sigma_min: float = 0.0, sigma_max: float = float("inf")):
        super().__init__()
        self.net = net
        self.sigma_data = sigma_data
        self.sigma_min = sigma_min      # the range the network supports; the sampler clamps to it
        self.sigma_max = sigma_max

    def forward(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        x = x.to(torch.float32)
        sigma = sigma.to(torch.float32).reshape(-1, 1, 1, 1).expand(x.shape[0], 1, 1, 1)
        c_skip, c_out, c_in, c_noise = edm_coefficients(sigma, self.sigma_data)
        F_x = self.net(c_in * x, c_noise.flatten())
        F_x = getattr(F_x, "sample", F_x)           # diffusers models return an output dataclass
        return c_skip * x + c_out * F_x.to(torch.float32)


def edm_noise(y: torch.Tensor, generator: torch.Generator, P_mean: float = -1.2, P_std: float = 1.2,
              sigma_data: float = 0.5) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """EDM's training draw (Table 1): ln(sigma) ~ N(P_mean, P_std^2), n ~ N(0, sigma^2 I), and the loss
    weight lambda(sigma) = (sigma^2 + sigma_data^2) / (sigma sigma_data)^2. sigma and lambda are
    shaped (B, 1, 1, 1); sigma is drawn first, then n, from `generator`. Returns (sigma, lambda, n)."""
    rnd_normal = torch.randn([y.shape[0], 1, 1, 1], generator=generator, device=y.device)
    sigma = (rnd_normal * P_std + P_mean).exp()
    weight = (sigma**2 + sigma_data**2) / (sigma * sigma_data) ** 2
    n = torch.randn(y.shape, generator=generator, device=y.device) * sigma
    return sigma, weight, n


def edm_loss(D: nn.Module, y: torch.Tensor, generator: torch.Generator,
             P_mean: float = -1.2, P_std: float = 1.2, sigma_data: float = 0.5, weighting=None) -> torch.Tensor:
    """Per-sample EDM loss (Eq. 8): lambda(sigma) * ||D(y + n; sigma) - y||^2 averaged over pixels, with
    the draw of edm_noise. weighting(sigma, lambda) -> weight replaces lambda (e.g. a mapped loss weighting,
    diffusion/loss_weight.py). Returns shape (B,)."""
    sigma, weight, n = edm_noise(y, generator, P_mean, P_std, sigma_data)
    if weighting is not None:
        weight = weighting(sigma, weight)
    D_yn = D(y + n, sigma)
    return (weight * (D_yn - y) ** 2).flatten(1).mean(dim=1)

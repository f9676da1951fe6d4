"""Time-dependent discriminator d(x_tau, tau): a frozen noise-aware feature extractor and a small trainable head.

TIW-DSM (Kim et al. 2024) and Discriminator Guidance use a frozen ADM classifier (noise-aware, conditioned
on the time step) up to its middle block and a small head; here the extractor is the pipeline's
time-conditioned attribute net (nets/extractor.py TimeAttrNet, trained on VP-noised images by the
tiw_extractor stage; penultimate features phi(x_tau, tau)), and the head is an MLP on phi modulated by an
embedding of tau (FiLM):

    h     = W_in phi(x_tau, tau)
    h     = SiLU(h * (1 + s(tau)) + b(tau))          s, b from the sinusoidal embedding of 999 tau
    logit = MLP(h),     d = sigmoid(logit),     log(d / (1 - d)) = logit

The network returns the logit, which is exactly the log density ratio log w = log d/(1-d) that
TIW-DSM needs (numerically safer than forming d). Inputs are VP-scaled noisy images x_tau = alpha(tau) x
(see diffusion/vp.py), bilinearly resized to the extractor's resolution if they differ. The extractor
never trains: requires_grad is off and it stays in eval mode.
"""
from __future__ import annotations

import math

import torch
from torch import nn



def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding of t (B,) as in ADM / guided-diffusion: [cos(t f_i), sin(t f_i)], shape (B, dim)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t.to(torch.float32)[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=1)


class DiscriminatorHead(nn.Module):
    """Logit of d from features phi (B, feature_dim) and VP time tau (B,)."""

    def __init__(self, feature_dim: int, hidden: int = 128, time_dim: int = 64):
        super().__init__()
        self.time_dim = time_dim
        self.time = nn.Sequential(nn.Linear(time_dim, hidden), nn.SiLU(), nn.Linear(hidden, 2 * hidden))
        self.inp = nn.Linear(feature_dim, hidden)
        self.out = nn.Sequential(nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, 1))

    def forward(self, phi: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
        scale, shift = self.time(timestep_embedding(999 * tau, self.time_dim)).chunk(2, dim=1)
        h = nn.functional.silu(self.inp(phi) * (1 + scale) + shift)
        return self.out(h).squeeze(1)


class TimeDiscriminator(nn.Module):
    """logit(x_tau, tau) = head(phi(x_tau, tau), tau), phi the frozen extractor's penultimate features.

    extractor: a module with `feature_dim` and `features(x_tau, tau)` (nets/extractor.py TimeAttrNet)."""

    def __init__(self, extractor: nn.Module, hidden: int = 128, time_dim: int = 64, resolution: int | None = None):
        super().__init__()
        self.resolution = resolution        # the extractor's input side; None = take inputs as they are
        self.extractor = extractor.eval().requires_grad_(False)
        self.head = DiscriminatorHead(extractor.feature_dim, hidden, time_dim)

    def train(self, mode: bool = True):
        super().train(mode)
        self.extractor.eval()               # frozen: never in training mode
        return self

    def forward(self, x_tau: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
        """Logit log(d / (1 - d)) of 'reference' for VP-scaled noisy images x_tau (B, 3, R, R), shape (B,)."""
        tau = tau.to(x_tau.dtype).reshape(-1).expand(x_tau.shape[0])
        return self.head(self.features(x_tau, tau), tau)

    def features(self, x_tau: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
        if self.resolution is not None and x_tau.shape[-1] != self.resolution:
            x_tau = nn.functional.interpolate(x_tau, size=self.resolution, mode="bilinear", align_corners=False)
        return self.extractor.features(x_tau, tau.to(x_tau.dtype).reshape(-1).expand(x_tau.shape[0]))

"""TimeAttrNet: a noise-aware, time-conditioned attribute classifier, the TIW-DSM discriminator's extractor.

TIW-DSM (Kim et al. 2024) and Discriminator Guidance build d(x_tau, tau) on ADM's noise-aware classifier,
which sees the noisy input and its time step. The clean-image attribute net (attrnet.py) is near chance on
noisy inputs, so the discriminator's extractor is this AttrNet-shaped CNN whose every conv block is
modulated by an embedding of tau (FiLM, as ADM's ResBlocks' scale-shift norm):

    e     = MLP(sinusoidal(999 tau))                               (nets/discriminator.py timestep_embedding)
    h     = SiLU(GroupNorm(conv(h)) * (1 + s_k(e)) + b_k(e))       for each conv block k
    phi   = SiLU(W pool(h) * (1 + s(e)) + b(e)),    logits = head(phi)

trained to predict attributes of VP-noised images x_tau = alpha(tau) (x0 + sigma n) (training/extractor.py).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from .discriminator import timestep_embedding


class _TimeBlock(nn.Module):
    """3x3 conv -> GroupNorm -> FiLM from the time embedding -> SiLU."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, emb_dim: int):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride, padding=1, bias=False)
        self.norm = nn.GroupNorm(num_groups=math.gcd(out_channels, 8), num_channels=out_channels)
        self.film = nn.Linear(emb_dim, 2 * out_channels)

    def forward(self, h: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        scale, shift = self.film(emb)[:, :, None, None].chunk(2, dim=1)
        return nn.functional.silu(self.norm(self.conv(h)) * (1 + scale) + shift)


class TimeAttrNet(nn.Module):
    """Multi-label attribute classifier for VP-scaled noisy images x_tau (N, 3, R, R) at VP time tau (N,).

    AttrNet's layout (three stages of width, 2 width, 4 width channels, each a stride-2 then a stride-1 conv
    block; global average pool; Linear -> feature_dim), every block and the feature layer FiLM-modulated
    by tau. `features(x_tau, tau)` are the penultimate features phi, the discriminator's input.
    """

    def __init__(self, num_attributes: int, width: int = 32, feature_dim: int = 64, time_dim: int = 64):
        super().__init__()
        self.num_attributes, self.feature_dim, self.time_dim = num_attributes, feature_dim, time_dim
        emb_dim = 4 * width
        self.time = nn.Sequential(nn.Linear(time_dim, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim), nn.SiLU())
        channels = [3, width, 2 * width, 4 * width]
        self.blocks = nn.ModuleList()
        for c_in, c_out in zip(channels[:-1], channels[1:]):
            self.blocks.append(_TimeBlock(c_in, c_out, 2, emb_dim))
            self.blocks.append(_TimeBlock(c_out, c_out, 1, emb_dim))
        self.embed = nn.Linear(channels[-1], feature_dim)
        self.embed_film = nn.Linear(emb_dim, 2 * feature_dim)
        self.head = nn.Linear(feature_dim, num_attributes)

    def features(self, x_tau: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
        """Penultimate features phi(x_tau, tau), shape (N, feature_dim)."""
        tau = tau.to(x_tau.dtype).reshape(-1).expand(x_tau.shape[0])
        emb = self.time(timestep_embedding(999 * tau, self.time_dim).to(x_tau.dtype))
        h = x_tau
        for block in self.blocks:
            h = block(h, emb)
        scale, shift = self.embed_film(emb).chunk(2, dim=1)
        return nn.functional.silu(self.embed(h.mean(dim=(2, 3))) * (1 + scale) + shift)

    def forward(self, x_tau: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
        """Attribute logits, shape (N, num_attributes)."""
        return self.head(self.features(x_tau, tau))

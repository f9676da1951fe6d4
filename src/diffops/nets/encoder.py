"""The image encoder E(x0) -> z of PDAE / DiTi (yue-zhongqi/diti `model/representation/encoder/celeba64.py`).

    conv 3 -> w (stride 2) -> GN, SiLU -> conv w -> 2w (s2) -> self-attention (4 heads)
    -> GN, SiLU -> conv 2w -> 2w (s2) -> GN, SiLU -> conv 2w -> 2w (s2) -> GN, SiLU -> flatten -> Linear -> z

With w = 64 at 64 px this is the reference CELEBA64Encoder exactly (1,487,104 parameters, 4x4x128
before the linear layer); other resolutions change only the flattened size (ceil(R / 16)^2 * 2w).
No output normalisation, as in the reference.
"""
from __future__ import annotations

import math

import torch
from torch import nn


def _norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(math.gcd(32, channels), channels)     # the reference's GroupNorm32 when it divides


class SelfAttention(nn.Module):
    """guided-diffusion AttentionBlock (legacy QKV order): GN, 1x1 qkv, softmax(q k^T / sqrt(c)) v, zero-init proj."""

    def __init__(self, channels: int, heads: int = 4):
        super().__init__()
        self.heads = heads
        self.norm = _norm(channels)
        self.qkv = nn.Conv1d(channels, 3 * channels, 1)
        self.proj_out = nn.Conv1d(channels, channels, 1)
        nn.init.zeros_(self.proj_out.weight)
        nn.init.zeros_(self.proj_out.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, *spatial = x.shape
        h = x.reshape(b, c, -1)
        qkv = self.qkv(self.norm(h)).reshape(b * self.heads, 3 * c // self.heads, -1)
        q, k, v = qkv.chunk(3, dim=1)
        scale = (c // self.heads) ** -0.25
        w = torch.softmax(torch.einsum("bct,bcs->bts", q * scale, k * scale), dim=-1)
        a = torch.einsum("bts,bcs->bct", w, v).reshape(b, c, -1)
        return (h + self.proj_out(a)).reshape(b, c, *spatial)


class Encoder(nn.Module):
    """E: images (B, 3, R, R) in [-1, 1] -> z (B, latent_dim)."""

    def __init__(self, resolution: int, latent_dim: int, width: int = 64, heads: int = 4):
        super().__init__()
        self.latent_dim = latent_dim
        w, w2 = width, 2 * width
        side = resolution
        for _ in range(4):
            side = (side + 1) // 2                    # 3x3 conv, stride 2, padding 1
        self.net = nn.Sequential(
            nn.Conv2d(3, w, 3, 2, 1), _norm(w), nn.SiLU(),
            nn.Conv2d(w, w2, 3, 2, 1), SelfAttention(w2, heads), _norm(w2), nn.SiLU(),
            nn.Conv2d(w2, w2, 3, 2, 1), _norm(w2), nn.SiLU(),
            nn.Conv2d(w2, w2, 3, 2, 1), _norm(w2), nn.SiLU(),
            nn.Flatten(), nn.Linear(w2 * side * side, latent_dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

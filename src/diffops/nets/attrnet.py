"""AttrNet: a small CNN attribute classifier whose penultimate layer is a feature space for FD.

The Fréchet distance in its features is reported as `fd_attrnet`, never as `fid`.
"""

from __future__ import annotations

import math

import torch
from torch import nn

# ----------------------------------------------------------------------------

def _conv_block(in_channels: int, out_channels: int, stride: int) -> nn.Sequential:
    """3x3 conv -> GroupNorm -> SiLU."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride, padding=1, bias=False),
        nn.GroupNorm(num_groups=math.gcd(out_channels, 8), num_channels=out_channels),
        nn.SiLU(),
    )

class AttrNet(nn.Module):
    """Multi-label attribute classifier for RGB images in [-1, 1], shape (N, 3, R, R), R in 16..64.

    Three stages of width, 2*width, 4*width channels; each opens with a stride-2 conv (R -> R/2 -> R/4 -> R/8)
    followed by a stride-1 conv, both GroupNorm + SiLU. Global average pool, Linear -> feature_dim, SiLU gives
    the penultimate features phi(x); a linear head maps them to one logit per attribute.
    """

    def __init__(self, num_attributes: int, width: int = 32, feature_dim: int = 64):
        super().__init__()
        self.num_attributes = num_attributes
        self.feature_dim = feature_dim
        channels = [3, width, 2 * width, 4 * width]
        self.stages = nn.Sequential(*[
            nn.Sequential(_conv_block(c_in, c_out, stride=2), _conv_block(c_out, c_out, stride=1))
            for c_in, c_out in zip(channels[:-1], channels[1:])
        ])
        self.embed = nn.Sequential(nn.Linear(channels[-1], feature_dim), nn.SiLU())
        self.head = nn.Linear(feature_dim, num_attributes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features phi(x), shape (N, feature_dim)."""
        h = self.stages(x)
        h = h.mean(dim=(2, 3))  # global average pool
        return self.embed(h)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Attribute logits, shape (N, num_attributes)."""
        return self.head(self.features(x))

# ----------------------------------------------------------------------------

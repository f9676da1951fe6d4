"""Asyrp's h-space edit (Kwon, Jeong and Uh, ICLR 2023; kwonminki/Asyrp_official `models/ddpm/diffusion.py`).

h-space is the output of the UNet's middle block (for diffusers' UNet2DModel: `mid_block`). Asyrp replaces
h by h + Delta h and reruns the decoder half with the *same* skip connections, beside the unedited pass,
so one encoder pass gives both outputs:

    F      = decoder(h,           skips, emb)
    F_edit = decoder(h + Delta h, skips, emb)

Delta h comes from a small network f_t(h, temb) ("DeltaBlock"), on h itself and the UNet's own time
embedding:  1x1 conv -> + Linear(SiLU(temb)) -> GroupNorm -> SiLU -> 1x1 conv  (default initialisation,
as the reference). Its shapes come from the UNet (the reference hard-codes 512 x 8 x 8).
Pure modules: they know nothing of noise levels beyond the UNet's timestep input.
"""
from __future__ import annotations

from typing import Callable

import torch
from diffusers import UNet2DModel
from torch import nn
from torch.nn import functional as F

from .unet import unet_decode_h, unet_encode

DeltaFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]      # (h, emb) -> Delta h


def h_space_shape(unet: UNet2DModel) -> tuple[int, int, int]:
    """(C, H, W) of the middle block's output: the last level's channels at the smallest resolution."""
    c = unet.config
    side = c.sample_size // 2 ** (len(c.block_out_channels) - 1)       # every level but the last halves the side
    return c.block_out_channels[-1], side, side


class DeltaBlock(nn.Module):
    """f_t(h, temb) -> Delta h, the shape of h (the reference's DeltaBlock)."""

    def __init__(self, channels: int, temb_dim: int, groups: int, eps: float = 1e-6):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, kernel_size=1)
        self.temb_proj = nn.Linear(temb_dim, channels)
        self.norm = nn.GroupNorm(groups, channels, eps=eps)
        self.conv2 = nn.Conv2d(channels, channels, kernel_size=1)

    def forward(self, h: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        x = self.conv1(h) + self.temb_proj(F.silu(temb))[:, :, None, None]
        return self.conv2(F.silu(self.norm(x)))


def delta_block_for(unet: UNet2DModel) -> DeltaBlock:
    """A DeltaBlock sized for this UNet's h-space and time embedding (GroupNorm groups and eps: the UNet's)."""
    channels = h_space_shape(unet)[0]
    return DeltaBlock(channels, unet.time_embedding.linear_2.out_features, unet.config.norm_num_groups,
                      unet.config.norm_eps)


def unet_with_delta_h(unet: UNet2DModel, sample: torch.Tensor, timestep: torch.Tensor, delta: DeltaFn | None):
    """(F, F_edit, h, Delta h): the UNet's output and its output with h + Delta h, from one encoder pass and the
    same skips. delta None: no edit (F_edit is F, Delta h is None)."""
    h_in, skips, emb = unet_encode(unet, sample, timestep)
    h = unet.mid_block(h_in, emb)
    F_x = unet_decode_h(unet, h, skips, emb)
    if delta is None:
        return F_x, F_x, h, None
    dh = delta(h, emb)
    return F_x, unet_decode_h(unet, h + dh, skips, emb), h, dh

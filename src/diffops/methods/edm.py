"""EDM baseline (Karras et al. 2022): the denoiser alone, trained with the EDM loss.

Notation: y clean image, n ~ N(0, sigma^2 I), ln sigma ~ N(P_mean, P_std^2), sigma_data data std.
"""
from __future__ import annotations

import torch
from torch import nn

from ..diffusion.edm import edm_loss
from .base import Method


class EDM(Method):
    name = "edm"

    def __init__(self, cfg):
        self.P_mean, self.P_std, self.sigma_data = cfg.edm.P_mean, cfg.edm.P_std, cfg.edm.sigma_data

    def loss(self, D: nn.Module, modules: dict[str, nn.Module], batch: dict[str, torch.Tensor],
             generator: torch.Generator) -> torch.Tensor:
        return edm_loss(D, batch["image"], generator, self.P_mean, self.P_std, self.sigma_data)

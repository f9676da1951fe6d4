"""EDM baseline (Karras et al. 2022): the denoiser alone, trained with the EDM loss.

Notation: y clean image, n ~ N(0, sigma^2 I), ln sigma ~ N(P_mean, P_std^2), sigma_data data std.
`edm.loss_weight` replaces Table 1's lambda(sigma) by a weighting of the eps-, x0- or v-MSE, mapped to the
denoiser's error at the same sigma (diffusion/loss_weight.py `edm_weight`); the sigma draw stays EDM's.
"""
from __future__ import annotations

import torch
from torch import nn

from ..diffusion.edm import edm_loss
from ..diffusion.loss_weight import edm_weight
from .base import Method


class EDM(Method):
    name = "edm"

    def __init__(self, cfg):
        self.cfg = cfg.edm
        self.step_stats = {}

    def weighting(self, sigma: torch.Tensor, lam: torch.Tensor) -> torch.Tensor:
        c = self.cfg
        w = lam if c.loss_weight == "edm" else edm_weight(c.loss_weight, c.loss_weight_target, sigma, c.p2_k, c.p2_gamma)
        self.step_stats = {"loss_weight": w.detach().flatten()}
        return w

    def loss(self, D: nn.Module, modules: dict[str, nn.Module], batch: dict[str, torch.Tensor],
             generator: torch.Generator) -> torch.Tensor:
        c = self.cfg
        return edm_loss(D, batch["image"], generator, c.P_mean, c.P_std, c.sigma_data, self.weighting)

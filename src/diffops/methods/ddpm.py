"""DDPM training in ERD's formulation (LilYau350/Elucidated-Representation-Diffusion, on openai/guided-diffusion):
t uniform over the T = 1000 steps, x_t = alpha_t x0 + sigma_t eps with alpha_t = sqrt(abar_t),
sigma_t = sqrt(1 - abar_t), the network predicts eps, x0 or v = alpha_t eps - sigma_t x0, and each sample's
MSE is multiplied by the weighting `ddpm.loss_weight` (diffusion/loss_weight.py; ERD's is `lambda`).

The exported model is the network wrapped as an EDM denoiser (diffusion/ddpm.py DDPMPrecond), so the EDM
sampler, evaluation and sweeps use it unchanged.
"""
from __future__ import annotations

import torch
from torch import nn

from ..diffusion.ddpm import DDPMSchedule
from ..diffusion.loss_weight import loss_weight
from .base import Method


class DDPM(Method):
    name = "ddpm"
    params_section = "ddpm"

    @classmethod
    def precond(cls, cfg) -> dict:
        return {"kind": "ddpm", "schedule": cfg.ddpm.schedule, "target": cfg.ddpm.target}

    def __init__(self, cfg):
        self.cfg = cfg.ddpm
        self.schedule = DDPMSchedule(schedule=cfg.ddpm.schedule)
        self.step_stats = {}

    def loss(self, D: nn.Module, modules: dict[str, nn.Module], batch: dict[str, torch.Tensor],
             generator: torch.Generator) -> torch.Tensor:
        x0, c = batch["image"], self.cfg
        t = torch.randint(0, self.schedule.T, [x0.shape[0]], generator=generator, device=x0.device)
        eps = torch.randn(x0.shape, generator=generator, device=x0.device)
        abar = self.schedule.alphas_cumprod[t.cpu()]                            # float64, on the CPU
        alpha, sigma = abar.sqrt(), (1 - abar).sqrt()
        w = loss_weight(c.loss_weight, c.target, alpha, sigma, c.p2_k, c.p2_gamma).to(x0.device, x0.dtype)
        alpha, sigma = (a.to(x0.device, x0.dtype).reshape(-1, 1, 1, 1) for a in (alpha, sigma))
        x_t = alpha * x0 + sigma * eps                                          # Ho et al. Eq. 4
        target = {"eps": eps, "x0": x0, "v": alpha * eps - sigma * x0}[c.target]
        self.step_stats = {"loss_weight": w.detach()}
        return w * ((D.predict(x_t, t) - target) ** 2).flatten(1).mean(dim=1)

"""PDAE: unsupervised representation learning on a frozen pre-trained DPM (Zhang et al., NeurIPS 2022;
ckczzj/PDAE `model/diffusion/gaussian_diffusion.py`, reused unchanged by DiTi).

Parts: the frozen DPM eps_theta (here the pipeline's EDM model read as a DDPM through the exact
sigma <-> t map of diffusion/ddpm.py), an encoder E_phi(x0) -> z and a shift branch G_psi(x_t, z, t)
that fills the frozen DPM's posterior-mean gap. Loss (t ~ U{0..T-1}, eps ~ N(0, I)):

    L = E[ lambda_t || eps - (eps_theta(x_t, t) + s_t G_psi(x_t, E_phi(x0), t)) ||^2 ]   (mean over pixels)
    s_t = -sqrt(alpha_t) (1 - abar_{t-1}) / sqrt(1 - abar_t)      (alpha_t per step: shifts the mean by beta~_t G)
    lambda_t = SNR_t^0.1 / (1 + SNR_t),  SNR_t = abar_t / (1 - abar_t)

At sampling time the reference uses eps' = eps_theta - sqrt(1 - abar_t) G (`guided_ddim_step`,
`shift_ddim_sample`), which is what `guided_eps` returns.

Only the encoder and the shift branch train (`freeze_denoiser`); the loop loads the EDM weights into D
(`diffops train --init-model models/edm`). Hyperparameters come from the `diti` params section.
"""
from __future__ import annotations

from dataclasses import replace

import torch
from torch import nn

from ..config import MethodConfig
from ..diffusion.ddpm import T, DDPMSchedule
from ..diffusion.edm import edm_coefficients
from ..nets.encoder import Encoder
from ..nets.shift_decoder import ShiftDecoder
from ..nets.unet import unet_decode, unet_encode, unet_kwargs
from .base import Method


def frozen_dpm(D: nn.Module, x_t: torch.Tensor, t: torch.Tensor, sched: DDPMSchedule):
    """eps_theta(x_t, t) of the EDM denoiser D (EDMPrecond around a UNet2DModel), plus the encoder-half
    features (h, skips, emb) it computed, for the shift branch. Same arithmetic as EDMPrecond.forward."""
    x_tilde, sigma = sched.to_edm(x_t.to(torch.float32), t)
    c_skip, c_out, c_in, c_noise = edm_coefficients(sigma.reshape(-1, 1, 1, 1), D.sigma_data)
    feats = unet_encode(D.net, c_in * x_tilde, c_noise.flatten())
    F_x = unet_decode(D.net, *feats).to(torch.float32)
    return sched.eps_from_denoised(x_tilde, c_skip * x_tilde + c_out * F_x, sigma), feats


class PDAE(Method):
    name = "pdae"
    freeze_denoiser = True      # training/loop.py: D gets requires_grad False; only extra_modules train
    params_section = "diti"     # shared with DiTi; PDAE is DiTi with k = 1

    @staticmethod
    def representation_params(d):
        """The diti.* values this method trains with: PDAE has one stage (k = 1)."""
        return replace(d, k=1, allocation="balanced", mode="base")

    @classmethod
    def training_config(cls, cfg):
        """The loop reads train.* and method.name: derive them from the diti section. The learning rate is
        diti.lr for any process count (diti.batch_size is global); the reference scales it by
        local_batch / 32 instead, which makes runs on different GPU counts differ."""
        d = cls.representation_params(cfg.diti)
        train = replace(cfg.train, seed=d.seed, duration_kimg=d.duration_kimg, batch_size=d.batch_size, lr=d.lr,
                        lr_rampup_kimg=0.0, ema_halflife_kimg=d.ema_halflife_kimg,
                        checkpoint_every_kimg=d.checkpoint_every_kimg, grid_every_kimg=d.duration_kimg)
        return replace(cfg, method=MethodConfig(name=cls.name), diti=d, train=train)

    def __init__(self, cfg):
        d = cfg.diti
        self.latent_dim, self.encoder_width = d.latent_dim, d.encoder_width
        self.resolution = cfg.data.resolution
        self.unet_spec = unet_kwargs(cfg.model, cfg.data.resolution)
        self.sched = DDPMSchedule(T)

    def extra_modules(self) -> dict[str, nn.Module]:
        return {"encoder": Encoder(self.resolution, self.latent_dim, self.encoder_width),
                "shift": ShiftDecoder(self.unet_spec, self.latent_dim)}

    # What the shift branch sees of z at time t; DiTi masks it.
    def conditions(self, z: torch.Tensor, t: torch.Tensor) -> list[torch.Tensor]:
        """Training conditions, one loss term each."""
        return [z]

    def condition_at(self, z: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Inference condition at timesteps t."""
        return z

    def loss(self, D: nn.Module, modules: dict[str, nn.Module], batch: dict[str, torch.Tensor],
             generator: torch.Generator) -> torch.Tensor:
        x0 = batch["image"]
        z = modules["encoder"](x0)
        t = torch.randint(0, self.sched.T, (x0.shape[0],), generator=generator, device=x0.device)
        eps = torch.randn(x0.shape, generator=generator, device=x0.device)
        x_t = self.sched.q_sample(x0, t, eps)
        with torch.no_grad():                          # the DPM is frozen: no graph through it
            eps_theta, feats = frozen_dpm(D, x_t, t, self.sched)
        s_t = self.sched.at(self.sched.shift_coef, t, x0)
        lambda_t = self.sched.at(self.sched.pdae_weight, t, x0)
        loss = torch.zeros(x0.shape[0], device=x0.device)
        for cond in self.conditions(z, t):             # DiTi's `dual` mode sums two terms
            G = modules["shift"](*feats, cond)
            loss = loss + (lambda_t * (eps - (eps_theta + s_t * G)) ** 2).flatten(1).mean(1)
        return loss

    def guided_eps(self, D: nn.Module, shift: nn.Module, x_t: torch.Tensor, t: torch.Tensor,
                   z: torch.Tensor | None) -> torch.Tensor:
        """eps' = eps_theta - sqrt(1 - abar_t) G(x_t, cond(z, t), t); z None = the frozen DPM alone."""
        eps_theta, feats = frozen_dpm(D, x_t, t, self.sched)
        if z is None:
            return eps_theta
        G = shift(*feats, self.condition_at(z, t))
        return eps_theta - (1 - self.sched.at(self.sched.alphas_cumprod, t, x_t)).sqrt() * G

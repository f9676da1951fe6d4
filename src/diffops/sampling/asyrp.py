"""Asyrp's asymmetric reverse process and its deterministic DDIM inversion (Kwon et al. 2023, Eq. 4; the
reference `utils/diffusion_utils.py: denoising_step` and `diffusion_latent.py: precompute_pairs, save_image`).

Timesteps are the reference's: t_i = int(i t_0 / (n - 1)), i = 0 .. n-1 (t_0 = 999 included). One reverse step
from t to t' (the previous entry, -1 = the clean image, abar = 1):

    P_t      = (x_t - sqrt(1 - abar_t) eps~) / sqrt(abar_t)                    predicted x0, from the *edited* eps~
    c1       = eta sqrt((1 - abar_t / abar_t') (1 - abar_t') / (1 - abar_t)),   c2 = sqrt(1 - abar_t' - c1^2)
    x_t'     = sqrt(abar_t') P_t + c2 eps + c1 z                               direction from the *original* eps

eta = 0 while training and inside the edit interval; at inference eta = 1 below t_boost ("quality boosting").
No clamp of P_t (the reference has none). Inversion runs the eta = 0 step forward, from the image taken as
x_{t_0 = 0} up to t_0 (sampling/ddim.py's step). The abar table and the DDIM step are sampling/ddim.py's.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from tqdm import tqdm

from ..diffusion.ddpm import DDPMSchedule
from .ddim import abar, ddim_step

# eps_fn(x_t, t, edit) -> (eps, eps~): the frozen DPM's noise and its noise with h + Delta h (eps~ = eps if not edit)
EpsPair = Callable[[torch.Tensor, torch.Tensor, bool], tuple[torch.Tensor, torch.Tensor]]


def asyrp_timesteps(num_steps: int, t_0: int = 999) -> list[int]:
    """The reference's seq: int(linspace(0, 1, n) t_0 + 1e-6), increasing from 0 to t_0."""
    if not 2 <= num_steps <= t_0 + 1:
        raise ValueError(f"Asyrp steps must be in [2, {t_0 + 1}], got {num_steps}")
    return [int(s + 1e-6) for s in np.linspace(0, 1, num_steps) * t_0]


def reverse_pairs(seq: list[int]) -> list[tuple[int, int]]:
    """(t, t') from t_0 down to 0 -> -1."""
    return list(zip(reversed(seq), reversed([-1] + seq[:-1])))


def asymmetric_step(x_t: torch.Tensor, eps: torch.Tensor, eps_edit: torch.Tensor, a: float, a_next: float,
                    eta: float = 0.0, noise: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(x_t', P_t) of the module doc's step; noise z is needed when eta > 0 (and abar_t' < 1)."""
    P_t = (x_t - (1 - a) ** 0.5 * eps_edit) / a**0.5
    c1 = eta * ((1 - a / a_next) * (1 - a_next) / (1 - a)) ** 0.5
    c2 = max(1 - a_next - c1**2, 0.0) ** 0.5
    x_next = a_next**0.5 * P_t + c2 * eps
    if c1 > 0:
        x_next = x_next + c1 * noise
    return x_next, P_t


@torch.no_grad()
def invert(eps_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], x0: torch.Tensor, sched: DDPMSchedule,
           seq: list[int], on_step: Callable | None = None, progress: bool = False) -> torch.Tensor:
    """Deterministic DDIM inversion x0 -> x_{t_0} along seq (eta = 0, no clamp). on_step(t', x_t', P_t) after
    each step (the reference's LPIPS tables key both by t')."""
    x = x0.to(torch.float32)
    for t, t_next in tqdm(list(zip(seq[:-1], seq[1:])), desc="asyrp invert", disable=not progress, leave=False):
        a = abar(sched, t)
        eps = eps_fn(x, torch.full((x.shape[0],), t, dtype=torch.long, device=x.device))
        P_t = (x - (1 - a) ** 0.5 * eps) / a**0.5
        x = ddim_step(x, eps, a, abar(sched, t_next))
        if on_step is not None:
            on_step(t_next, x, P_t)
    return x


@torch.no_grad()
def generate(eps_fn: EpsPair, x_T: torch.Tensor, sched: DDPMSchedule, seq: list[int], t_edit: int, t_boost: int,
             generators: list[torch.Generator] | None = None, progress: bool = False) -> torch.Tensor:
    """x_{t_0} -> image with the asymmetric step: edited P_t for t >= t_edit, eta = 1 for t < t_boost.

    generators: one per image (its own seed), drawing z at every eta = 1 step, so that an image's noise does not
    depend on the batch; None = deterministic (eta = 0 everywhere)."""
    x = x_T.to(torch.float32)
    for t, t_next in tqdm(reverse_pairs(seq), desc="asyrp generate", disable=not progress, leave=False):
        tt = torch.full((x.shape[0],), t, dtype=torch.long, device=x.device)
        eps, eps_edit = eps_fn(x, tt, t >= t_edit)
        eta = 1.0 if generators is not None and t < t_boost else 0.0
        noise = None
        if eta > 0 and t_next >= 0:
            noise = torch.stack([torch.randn(x.shape[1:], generator=g) for g in generators]).to(x.device)
        x, _ = asymmetric_step(x, eps, eps_edit, abar(sched, t), abar(sched, t_next), eta, noise)
    return x

"""Deterministic DDIM (Song et al. 2021, eta = 0) on the discrete DDPM schedule, forward (inversion)
and reverse, with PDAE/DiTi's z guidance: yue-zhongqi/diti `gaussian_diffusion.py: masked_guided_ddim`.

Timesteps are DiTi's `get_seq`: t_i = i * (T // S), i = 0 .. S-1. One step from t to t' is

    eps' = eps_fn(x_t, t)
    x0^  = clamp((x_t - sqrt(1 - abar_t) eps') / sqrt(abar_t), -1, 1)
    eps~ = (x_t / sqrt(abar_t) - x0^) / sqrt(1 / abar_t - 1)          (the noise consistent with the clamp)
    x_t' = sqrt(abar_t') x0^ + sqrt(1 - abar_t') eps~

reverse: t runs t_{S-1} -> ... -> t_0 -> "-1" (abar = 1, the clean image);
forward: the image is taken as x_{t_0}, then t_0 -> t_1 -> ... -> t_{S-1} -> "-2" (abar = 0), as in
the reference. For DiTi, eps_fn conditions the shift branch on z * masks[idx(t)] at every step
(`PDAE.guided_eps` / `DiTi.condition_at`).
"""
from __future__ import annotations

from typing import Callable

import torch
from tqdm import tqdm

from ..diffusion.ddpm import DDPMSchedule


def ddim_timesteps(num_steps: int, num_train_steps: int = 1000) -> list[int]:
    """DiTi's get_seq: range(0, T, T // S) (S steps when S divides T, else a few more, as the reference)."""
    if not 1 <= num_steps <= num_train_steps:
        raise ValueError(f"DDIM steps must be in [1, {num_train_steps}], got {num_steps}")
    return list(range(0, num_train_steps, num_train_steps // num_steps))


@torch.no_grad()
def ddim(eps_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], x: torch.Tensor, sched: DDPMSchedule,
         num_steps: int, reverse: bool = True, progress: bool = False, desc: str = "ddim") -> torch.Tensor:
    """Run DDIM from x: reverse = x_T -> image, forward = image -> x_T (inversion)."""
    seq = ddim_timesteps(num_steps, sched.T)
    if reverse:
        pairs = list(zip(reversed(seq), reversed([-1] + seq[:-1])))
    else:
        pairs = list(zip(seq, seq[1:] + [-2]))
    x = x.to(torch.float32)
    for t, t_next in tqdm(pairs, desc=desc, disable=not progress, leave=False):
        eps = eps_fn(x, torch.full((x.shape[0],), t, dtype=torch.long, device=x.device))
        x = ddim_step(x, eps, abar(sched, t), abar(sched, t_next), clamp=True)
    return x


def abar(sched: DDPMSchedule, t: int) -> float:
    """abar_t of the schedule, with the reference's ends: t = -1 is the clean image (1), t = -2 pure noise (0)."""
    return 1.0 if t == -1 else 0.0 if t == -2 else float(sched.alphas_cumprod[t])


def ddim_step(x: torch.Tensor, eps: torch.Tensor, a: float, a_next: float, clamp: bool = False) -> torch.Tensor:
    """One deterministic DDIM step from abar_t = a to abar_t' = a_next (Song et al. 2021, Eq. 12 with eta = 0);
    clamp: x0^ clamped to [-1, 1] and eps recomputed to match (DiTi's step, the module doc)."""
    x0 = (x - (1 - a) ** 0.5 * eps) / a**0.5
    if clamp:
        x0 = x0.clamp(-1, 1)
        eps = (x / a**0.5 - x0) / (1 / a - 1) ** 0.5
    return a_next**0.5 * x0 + (1 - a_next) ** 0.5 * eps


def masked_guided_ddim(method, D, shift, x: torch.Tensor, z: torch.Tensor | None, num_steps: int,
                       reverse: bool = True, progress: bool = False, batch_size: int = 256) -> torch.Tensor:
    """DDIM with the shift branch guided by z (masked per step for DiTi); z None = the frozen DPM alone.

    `method` is a PDAE/DiTi instance (it owns the schedule and the mask at t). Runs in batches.
    """
    out = []
    for i in range(0, x.shape[0], batch_size):
        zi = None if z is None else z[i:i + batch_size]
        eps_fn = lambda x_t, t, zi=zi: method.guided_eps(D, shift, x_t, t, zi)  # noqa: E731
        out.append(ddim(eps_fn, x[i:i + batch_size], method.sched, num_steps, reverse, progress,
                        desc="ddim decode" if reverse else "ddim invert"))
    return torch.cat(out)

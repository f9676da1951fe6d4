"""EDM sampler (Karras et al. 2022, Algorithm 2; NVlabs/edm generate.py::edm_sampler).

Time steps (Eq. 5):  sigma_i = (sigma_max^(1/rho) + i/(N-1) (sigma_min^(1/rho) - sigma_max^(1/rho)))^rho,
with sigma_N = 0 appended. Each step is an Euler step with d = (x - D(x; sigma)) / sigma followed by a
second-order (Heun) correction, except the last step to sigma = 0, so NFE = 2N - 1.
Stochastic churn (Alg. 2 lines 4-6): gamma = min(S_churn / N, sqrt(2) - 1) for sigma in [S_min, S_max].
With S_churn > 0 a noise draw is made at every step, as in NVlabs' loop, so that the same seeds give the
same images when the churn window excludes some steps.
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import torch


def edm_sigma_steps(num_steps: int, sigma_min: float, sigma_max: float, rho: float,
                    device=None) -> torch.Tensor:
    """The N noise levels of Eq. 5 plus the final 0, in float64: shape (N + 1,)."""
    if num_steps < 1:
        raise ValueError(f"num_steps must be >= 1, got {num_steps}")
    i = torch.arange(num_steps, dtype=torch.float64, device=device)
    ramp = i / max(num_steps - 1, 1)
    sigmas = (sigma_max ** (1 / rho) + ramp * (sigma_min ** (1 / rho) - sigma_max ** (1 / rho))) ** rho
    return torch.cat([sigmas, torch.zeros_like(sigmas[:1])])


class StackedRandomGenerator:
    """One torch.Generator per image seed, so an image depends only on its seed (edm generate.py)."""

    def __init__(self, device, seeds: Sequence[int]):
        self.generators = [torch.Generator(device).manual_seed(int(s) % (1 << 32)) for s in seeds]

    def randn(self, size, **kwargs) -> torch.Tensor:
        assert size[0] == len(self.generators)
        return torch.stack([torch.randn(size[1:], generator=g, **kwargs) for g in self.generators])

    def randn_like(self, x: torch.Tensor) -> torch.Tensor:
        return self.randn(x.shape, dtype=x.dtype, layout=x.layout, device=x.device)


@torch.no_grad()
def edm_sampler(D: Callable, latents: torch.Tensor, randn_like: Callable = torch.randn_like,
                num_steps: int = 18, sigma_min: float = 0.002, sigma_max: float = 80.0,
                rho: float = 7.0, S_churn: float = 0.0, S_min: float = 0.0,
                S_max: float = float("inf"), S_noise: float = 1.0) -> torch.Tensor:
    """Draw x_0 from latents ~ N(0, I) with Heun's 2nd-order method. Returns float64 in data range."""
    sigma_min = max(sigma_min, getattr(D, "sigma_min", 0.0))
    sigma_max = min(sigma_max, getattr(D, "sigma_max", float("inf")))
    t_steps = edm_sigma_steps(num_steps, sigma_min, sigma_max, rho, device=latents.device)

    x_next = latents.to(torch.float64) * t_steps[0]
    for i, (t_cur, t_next) in enumerate(zip(t_steps[:-1], t_steps[1:])):
        x_cur = x_next
        # Increase noise temporarily (churn).
        gamma = min(S_churn / num_steps, math.sqrt(2) - 1) if S_min <= t_cur <= S_max else 0.0
        t_hat = t_cur + gamma * t_cur
        if S_churn > 0:     # drawn at every step as in NVlabs' generate.py; outside [S_min, S_max] it adds 0
            x_cur = x_cur + (t_hat**2 - t_cur**2).sqrt() * S_noise * randn_like(x_cur)
        # Euler step.
        denoised = D(x_cur.to(torch.float32), t_hat.to(torch.float32).expand(x_cur.shape[0])).to(torch.float64)
        d_cur = (x_cur - denoised) / t_hat
        x_next = x_cur + (t_next - t_hat) * d_cur
        # Heun (2nd order) correction, skipped on the last step to sigma = 0.
        if i < num_steps - 1:
            denoised = D(x_next.to(torch.float32), t_next.to(torch.float32).expand(x_cur.shape[0])).to(torch.float64)
            d_prime = (x_next - denoised) / t_next
            x_next = x_cur + (t_next - t_hat) * (0.5 * d_cur + 0.5 * d_prime)
    return x_next


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] float -> uint8 in [0, 255], as edm generate.py."""
    return (x * 127.5 + 128).clip(0, 255).to(torch.uint8)


def generate_images(D: Callable, seeds: Sequence[int], resolution: int, channels: int = 3,
                    device="cpu", **sampler_kwargs) -> torch.Tensor:
    """uint8 images (len(seeds), C, R, R); each image is a function of its seed alone."""
    rnd = StackedRandomGenerator(device, seeds)
    latents = rnd.randn([len(seeds), channels, resolution, resolution], device=device)
    x = edm_sampler(D, latents, randn_like=rnd.randn_like, **sampler_kwargs)
    return to_uint8(x).cpu()

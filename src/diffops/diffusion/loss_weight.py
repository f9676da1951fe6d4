"""Per-noise-level loss weightings of the denoising MSE: ERD's `lambda` and the family it is compared with.

With x_t = alpha_t x0 + sigma_t eps and snr = (alpha_t / sigma_t)^2, a weighting multiplies each sample's
mean squared error ||target - prediction||^2 / dim, with no normalisation and no clipping
(LilYau350/Elucidated-Representation-Diffusion `tools/gaussian_diffusion.py`, `compute_mse_loss_weight`):

    name          eps-target           x0-target     v-target
    constant      1                    1             1
    lambda        sigma                alpha         alpha sigma      ERD: RMS amplitude of the expressed target
    min_snr_k     min(snr, k) / snr    min(snr, k)   min(snr, k) / (snr + 1)      (Hang et al. 2023)
    max_snr_k     max(snr, k) / snr    max(snr, k)   -
    p2            1 / (k + snr)^gamma  -             -                            (Choi et al. 2022)
    debias        sigma / alpha        -             -
    min_debias    min(sigma/alpha, 1)  -             -
    max_debias    max(sigma/alpha, 1)  -             -
    snr           -                    snr           -
    inv_snr       -                    1 / snr       -
    trunc_snr     -                    max(snr, 1)   -

The weight is 1 where snr = 0. An empty cell is an error, as in the reference.

The same weightings on an EDM denoiser D(x; s), x = x0 + s eps (EDM's sigma s = sigma_t / alpha_t, so
alpha_t = 1/sqrt(1 + s^2), sigma_t = s/sqrt(1 + s^2), snr = 1/s^2): each target's error is a multiple of
the denoiser's error D - x0 at the same noise level,
    eps_hat - eps = -(D - x0) / s,     x0_hat - x0 = D - x0,     v_hat - v = -(D - x0) sqrt(1 + s^2) / s,
so w ||target error||^2 = w m(s) ||D - x0||^2 with m = 1/s^2, 1 and (1 + s^2)/s^2 (`edm_weight`).
"""
from __future__ import annotations

import torch

from ..config.ddpm import parse_weight     # the names params accept

def loss_weight(name: str, target: str, alpha: torch.Tensor, sigma: torch.Tensor,
                p2_k: float = 1.0, p2_gamma: float = 1.0) -> torch.Tensor:
    """The weight of each sample's MSE for the `target` prediction at (alpha_t, sigma_t); shaped like alpha."""
    base, k = parse_weight(name, target)
    alpha, sigma = torch.as_tensor(alpha), torch.as_tensor(sigma)
    snr = (alpha / sigma) ** 2
    one = torch.ones_like(snr)
    if base == "constant":
        w = one
    elif base == "lambda":
        w = {"eps": sigma, "x0": alpha, "v": alpha * sigma}[target] * one
    elif base in ("min_snr", "max_snr"):
        clipped = torch.minimum(snr, k * one) if base == "min_snr" else torch.maximum(snr, k * one)
        w = {"eps": clipped / snr, "x0": clipped, "v": clipped / (snr + 1)}[target]
    elif base == "p2":
        w = 1 / (p2_k + snr) ** p2_gamma
    elif base == "debias":
        w = sigma / alpha * one
    elif base == "min_debias":
        w = torch.minimum(sigma / alpha, one)
    elif base == "max_debias":
        w = torch.maximum(sigma / alpha, one)
    elif base == "snr":
        w = snr
    elif base == "inv_snr":
        w = 1 / snr
    else:  # trunc_snr
        w = torch.maximum(snr, one)
    return torch.where(snr == 0, one, w)


def edm_weight(name: str, target: str, sigma_edm: torch.Tensor, p2_k: float = 1.0,
               p2_gamma: float = 1.0) -> torch.Tensor:
    """The weight on ||D(x0 + s n; s) - x0||^2 equal to weighting `name` of the `target` MSE at EDM noise
    level s (module doc)."""
    s = torch.as_tensor(sigma_edm)
    alpha, sigma = 1 / (1 + s**2).sqrt(), s / (1 + s**2).sqrt()
    m = {"eps": 1 / s**2, "x0": torch.ones_like(s), "v": (1 + s**2) / s**2}[target]
    return loss_weight(name, target, alpha, sigma, p2_k, p2_gamma) * m

"""Discrete DDPM time (Ho et al. 2020) and its exact correspondence with EDM's continuous sigma.

This is the one place where discrete t and continuous sigma meet. DiTi/PDAE (and Asyrp) are written
for an epsilon-prediction DDPM with T = 1000 steps and a linear beta schedule 1e-4 -> 0.02, indexed
t = 0 .. T-1 (ckczzj/PDAE, yue-zhongqi/diti `gaussian_diffusion.py`):

    beta_t linear,  alpha_t = 1 - beta_t,  abar_t = prod_{s <= t} alpha_s,  abar_{-1} = 1
    x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps                                  (Ho et al. Eq. 4)

Dividing by sqrt(abar_t) gives EDM's variance-exploding form (Karras et al. 2022, Eq. 2 / Table 1, "VP"):

    x_t / sqrt(abar_t) = x0 + sigma_t eps,      sigma_t = sqrt((1 - abar_t) / abar_t)

so an EDM denoiser D(x; sigma) trained on x0 + sigma n is an exact DDPM epsilon-predictor:

    x~ = x_t / sqrt(abar_t),   x0_hat = D(x~; sigma_t),   eps_hat = (x~ - x0_hat) / sigma_t.

sigma_t runs from 0.01 (t = 0) to about 157 (t = 999). Tables are float64; callers cast.

ERD's `ddpm` method also trains in this formulation, with the linear or the cosine schedule (Nichol &
Dhariwal 2021, Eq. 17: abar(t) = cos^2((t/T + s)/(1 + s) pi/2), s = 0.008, betas clipped at 0.999), and an
eps-, x0- or v-target (v = alpha_t eps - sigma_t x0, Salimans & Ho 2022). DDPMPrecond turns such a network
into an EDM denoiser D(x; sigma), so the EDM sampler and everything after it use it unchanged.
"""
from __future__ import annotations

import torch
from torch import nn

from ..config.ddpm import SCHEDULES, TARGETS

T = 1000                    # number of discrete steps
BETA_START, BETA_END = 1e-4, 0.02
COSINE_S, MAX_BETA = 0.008, 0.999
PDAE_GAMMA = 0.1            # PDAE's loss weight exponent: lambda_t = SNR^gamma / (1 + SNR)


class DDPMSchedule:
    """Per-step tables of the linear-beta DDPM, indexed by integer t in [0, T)."""

    def __init__(self, num_steps: int = T, beta_start: float = BETA_START, beta_end: float = BETA_END,
                 schedule: str = "linear"):
        self.T = num_steps
        if schedule == "linear":
            self.betas = torch.linspace(beta_start, beta_end, num_steps, dtype=torch.float64)
        elif schedule == "cosine":
            abar = lambda t: torch.cos((t / num_steps + COSINE_S) / (1 + COSINE_S) * torch.pi / 2) ** 2
            t = torch.arange(num_steps + 1, dtype=torch.float64)
            self.betas = (1 - abar(t[1:]) / abar(t[:-1])).clamp(max=MAX_BETA)
        else:
            raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}, got {schedule!r}")
        self.alphas = 1 - self.betas                                    # per-step alpha_t
        self.alphas_cumprod = self.alphas.cumprod(0)                    # abar_t
        self.alphas_cumprod_prev = torch.cat([torch.ones(1, dtype=torch.float64), self.alphas_cumprod[:-1]])
        self.sigmas = ((1 - self.alphas_cumprod) / self.alphas_cumprod).sqrt()   # sigma_t, increasing
        snr = self.alphas_cumprod / (1 - self.alphas_cumprod)
        self.snr = snr
        # PDAE: eps' = eps_theta + s_t G shifts the posterior mean by beta~_t G; s_t uses the per-step alpha_t.
        self.shift_coef = -self.alphas.sqrt() * (1 - self.alphas_cumprod_prev) / (1 - self.alphas_cumprod).sqrt()
        # PDAE's weighting lambda_t = SNR^0.1 / (1 + SNR).
        self.pdae_weight = snr**PDAE_GAMMA / (1 + snr)
        # Posterior q(x_{t-1} | x_t, x0) variance beta~_t (used by the tests of s_t).
        self.posterior_variance = self.betas * (1 - self.alphas_cumprod_prev) / (1 - self.alphas_cumprod)

    def at(self, table: torch.Tensor, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """table[t] shaped (B, 1, 1, 1) in like's dtype and device, for broadcasting over images."""
        return table.to(like.device)[t.to(like.device)].to(like.dtype).reshape(-1, *[1] * (like.ndim - 1))

    # --- sigma <-> t -------------------------------------------------------------------------

    def sigma(self, t: torch.Tensor) -> torch.Tensor:
        """sigma_t = sqrt((1 - abar_t) / abar_t) for integer t (float64)."""
        return self.sigmas[t.long().cpu()].to(t.device)

    def t_from_sigma(self, sigma: torch.Tensor) -> torch.Tensor:
        """Continuous t with sigma_t = sigma: linear interpolation of t in ln(sigma) between the steps.

        Exact (integer) at the T table points; clamped to [0, T-1] outside their range.
        """
        log_table = self.sigmas.log()
        s = sigma.to(torch.float64).log().cpu().clamp(log_table[0], log_table[-1])
        i = torch.searchsorted(log_table, s, right=True).clamp(1, self.T - 1)
        lo, hi = log_table[i - 1], log_table[i]
        return ((i - 1) + (s - lo) / (hi - lo)).to(sigma.device)

    # --- forward process and the EDM <-> epsilon conversion -----------------------------------

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps."""
        ab = self.at(self.alphas_cumprod, t, x0)
        return ab.sqrt() * x0 + (1 - ab).sqrt() * eps

    def to_edm(self, x_t: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(x~, sigma): x~ = x_t / sqrt(abar_t) = x0 + sigma_t eps is what an EDM denoiser expects."""
        ab = self.at(self.alphas_cumprod, t, x_t)
        return x_t / ab.sqrt(), self.sigma(t).to(x_t.dtype)

    @staticmethod
    def eps_from_denoised(x_tilde: torch.Tensor, denoised: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """eps_hat = (x~ - D(x~; sigma)) / sigma."""
        return (x_tilde - denoised) / sigma.reshape(-1, *[1] * (x_tilde.ndim - 1))

    def eps(self, D, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The EDM denoiser D(x; sigma) as a DDPM epsilon-predictor eps_theta(x_t, t)."""
        x_tilde, sigma = self.to_edm(x_t, t)
        return self.eps_from_denoised(x_tilde, D(x_tilde, sigma), sigma)


class DDPMPrecond(nn.Module):
    """A DDPM network F(x_t, t) (eps-, x0- or v-prediction) as an EDM denoiser D(x; sigma).

    With x = x0 + sigma eps (EDM) and x_t = c_in x, c_in = 1/sqrt(sigma^2 + 1) = sqrt(abar_t):
        eps:  D = x - sigma F        x0:  D = F        v:  D = c_in^2 x - sigma c_in F
    (the reference's EDM wrapper, tools/cfg_edm.py). t is the continuous step with sigma_t = sigma
    (DDPMSchedule.t_from_sigma), exact at the T training steps; the supported noise range is the
    table's, which the sampler clamps to. The state dict is the network's alone (keys net.*), as EDMPrecond's.
    """

    def __init__(self, net: nn.Module, schedule: str = "linear", target: str = "eps"):
        super().__init__()
        if target not in TARGETS:
            raise ValueError(f"target must be one of {', '.join(TARGETS)}, got {target!r}")
        self.net, self.target = net, target
        self.schedule = DDPMSchedule(schedule=schedule)
        self.sigma_min, self.sigma_max = float(self.schedule.sigmas[0]), float(self.schedule.sigmas[-1])

    def predict(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The network's raw prediction of its target at DDPM input x_t and (integer or continuous) step t."""
        out = self.net(x_t, t.to(torch.float32).flatten())
        return getattr(out, "sample", out).to(torch.float32)  # diffusers models return an output dataclass

    def forward(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        x = x.to(torch.float32)
        sigma = sigma.to(torch.float32).reshape(-1, 1, 1, 1).expand(x.shape[0], 1, 1, 1)
        c_in = 1 / (sigma**2 + 1).sqrt()
        F_x = self.predict(c_in * x, self.schedule.t_from_sigma(sigma.flatten()))
        if self.target == "eps":
            return x - sigma * F_x
        if self.target == "x0":
            return F_x
        return c_in**2 * x - sigma * c_in * F_x

"""TIW-DSM (Kim et al., "Training Unbiased Diffusion Models From Biased Dataset", ICLR 2024) and its baselines.

Setting: D_obs = D_bias ∪ D_ref (data/bias_split.py); the goal is p_data, of which only D_ref is a sample.
With w_t(x_t) = p_data^t(x_t) / p_bias^t(x_t), the ratio of the diffused marginals, TIW-DSM minimises

    E_t lambda(t) E_{x0 ~ p_bias} E_{x_t | x0} [ w_t(x_t) || s_theta(x_t, t) - grad log p(x_t | x0) - grad log w_t(x_t) ||^2 ]

which equals score matching on p_data up to a constant (their Theorem 1). With an EDM denoiser,
s = (D(x; sigma) - x) / sigma^2 and grad log p(x | y) = (y - x) / sigma^2, so the residual is
(D - (y + sigma^2 grad_x log w)) / sigma^2: a per-sample weight w and the target y + sigma^2 grad_x log w.
w comes from the time-dependent discriminator (nets/discriminator.py): log w = log d / (1 - d) = its logit,
fed the VP-scaled input alpha(tau) x at tau = tau(sigma) (diffusion/vp.py); autograd gives grad_x.

One file, one class, registered under five method names (the mode):
    dsm_ref      EDM loss on reference rows only (batch["group"] == 1); the pipeline feeds it D_ref alone
    dsm_obs      EDM loss on every row of D_obs (the biased baseline)
    iw_dsm       time-independent importance weight w(x0) from the discriminator at tau = 1e-5 on the clean
                 image (the paper trains a separate clean classifier; this shares the head), no correction
    tiw_dsm      the paper's form: per-sample w_t, target y + sigma^2 grad log w_t
    tiw_compat   the released code's form (TIW-DSM training/loss.py): the weight 2 D enters only as a batch
                 scalar mean_i(2 D_i) (its broadcasting collapses the per-sample weights), and the target is
                 y - sigma^2 grad_x D (gradient of D itself, opposite sign), D clipped to [1e-5, 1 - 1e-5]

Knobs (params `tiw.*`, sweepable): strength alpha (w^alpha and alpha sigma^2 grad log w: a tempered ratio,
alpha = 0 is dsm_obs; the paper's alpha is unverified), clipping of w to [weight_min, weight_max], the tau
range where weighting and correction apply (w = 1 and no correction outside), and the ablations
use_weight / use_correction of tiw_dsm. tiw_compat takes none of them (the released code has none).

The discriminator is a frozen extra module (so the loop moves it with the model); it comes in loaded, as the
keyword argument `discriminator` = (net, checkpoint entry) of artifacts/discriminator.py (the stage loads
`diffops train --discriminator DIR` at tiw.discriminator_step). `fingerprint` names the discriminator's
weights, and the `tiw` section joins the checkpoint hash, so checkpoints of another one are never resumed.
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import replace

import torch
from torch import nn

from ..config import ConfigError, TIWConfig
from ..diffusion import vp
from ..diffusion.edm import edm_noise
from .base import Method

MODES = ("dsm_ref", "dsm_obs", "iw_dsm", "tiw_dsm", "tiw_compat")
NEEDS_DISCRIMINATOR = ("iw_dsm", "tiw_dsm", "tiw_compat")
D_CLIP = 1e-5                                       # released code: D clipped to [1e-5, 1 - 1e-5]
LOGIT_CLIP = math.log((1 - D_CLIP) / D_CLIP)        # the same clip on log w = logit(D)
KNOBS = ("alpha", "weight_min", "weight_max", "tau_min", "tau_max", "use_weight", "use_correction")


class TIWDSM(Method):
    mode = "tiw_dsm"
    params_section = "tiw"

    @classmethod
    def training_config(cls, cfg):
        """The quickstart comparison's config for this loss: method.name = the mode, data.resolution = the
        split's (data.resolution / bias_split.downsample), the losses' own optimiser and budget (tiw_train.*)
        in place of train.*, and the tiw.* sampling budget in place of sample.num_images / sample.steps;
        model.*, edm.* and the other sample.* keys are shared with the EDM baseline."""
        t = cfg.tiw
        return replace(cfg, method=replace(cfg.method, name=cls.mode),
                       data=replace(cfg.data, resolution=cfg.data.resolution // cfg.bias_split.downsample),
                       train=cfg.tiw_train,
                       sample=replace(cfg.sample, num_images=t.sample_num_images, steps=t.sample_steps, seed_ranges=1))

    def __init__(self, cfg, discriminator=None):
        mode = self.name = self.mode
        self.P_mean, self.P_std, self.sigma_data = cfg.edm.P_mean, cfg.edm.P_std, cfg.edm.sigma_data
        self.tiw = cfg.tiw
        self.disc = None
        fingerprint = {"mode": mode}
        if mode in NEEDS_DISCRIMINATOR:
            if discriminator is None:
                raise ValueError(f"method {mode} needs the trained discriminator: "
                                 f"diffops train --discriminator models/tiw/discriminator")
            if mode == "tiw_compat":
                _check_compat_knobs(cfg)
            self.disc, entry = discriminator
            fingerprint.update({k: getattr(cfg.tiw, k) for k in KNOBS}, discriminator_step=cfg.tiw.discriminator_step,
                               head_sha256=entry["sha256"], extractor_sha256=entry["extractor_sha256"])
        self.fingerprint = hashlib.sha256(json.dumps(fingerprint, sort_keys=True).encode()).hexdigest()[:16]

    def extra_modules(self) -> dict[str, nn.Module]:
        return {"discriminator": self.disc} if self.disc is not None else {}    # frozen (requires_grad off)

    # ------------------------------------------------------------------------

    def weight(self, logit: torch.Tensor) -> torch.Tensor:
        """w^alpha = exp(alpha log w), log w = the clipped logit, then clipped to [weight_min, weight_max]."""
        return (self.tiw.alpha * logit).exp().clamp(self.tiw.weight_min, self.tiw.weight_max)

    def _discriminate(self, disc: nn.Module, x: torch.Tensor, sigma: torch.Tensor, compat: bool):
        """(f, grad_x f) with f = clipped logit (paper) or clipped D = sigmoid(logit) (compat), at EDM input x."""
        tau = vp.tau_from_sigma(sigma.flatten())
        with torch.enable_grad():
            x_in = x.detach().requires_grad_(True)
            logit = disc(vp.alpha_from_sigma(sigma) * x_in, tau)      # VP-scaled input; grad_x = alpha grad
            f = logit.sigmoid().clamp(D_CLIP, 1 - D_CLIP) if compat else logit.clamp(-LOGIT_CLIP, LOGIT_CLIP)
            (grad,) = torch.autograd.grad(f.sum(), x_in)
        return f.detach(), grad

    def loss(self, D: nn.Module, modules: dict[str, nn.Module], batch: dict[str, torch.Tensor],
             generator: torch.Generator) -> torch.Tensor:
        y = batch["image"]
        B = y.shape[0]
        sigma, lam, n = edm_noise(y, generator, self.P_mean, self.P_std, self.sigma_data)   # edm_loss's draw
        x = y + n
        weight, target = torch.ones(B, device=y.device), y

        if self.name == "dsm_ref":
            ref = (batch["group"] == 1).to(y.dtype)
            weight = ref * B / ref.sum().clamp(min=1)               # batch mean = mean over reference rows
        elif self.name in NEEDS_DISCRIMINATOR:
            disc, t = modules["discriminator"], self.tiw
            tau = vp.tau_from_sigma(sigma.flatten())
            active = (tau >= t.tau_min) & (tau <= t.tau_max)
            if self.name == "iw_dsm":                               # w(x0): clean image, tau = 1e-5
                tau0 = torch.full([B], vp.TAU_EPS, device=y.device)
                sigma0 = vp.sigma_from_tau(tau0.to(torch.float64)).to(y.dtype).reshape(-1, 1, 1, 1)
                with torch.no_grad():
                    logit = disc(vp.alpha_from_sigma(sigma0) * y, tau0).clamp(-LOGIT_CLIP, LOGIT_CLIP)
                weight = torch.where(active, self.weight(logit), weight)
            elif self.name == "tiw_dsm":                            # paper: w_t, target y + sigma^2 grad log w_t
                logit, grad = self._discriminate(disc, x, sigma, compat=False)
                if t.use_weight:
                    weight = torch.where(active, self.weight(logit), weight)
                if t.use_correction:
                    target = y + active.reshape(-1, 1, 1, 1) * (t.alpha * sigma**2 * grad)
            else:                                                   # tiw_compat: released code
                d, grad = self._discriminate(disc, x, sigma, compat=True)
                weight = (2 * d).mean().expand(B)                   # batch scalar (Sum_i 2 D_i / B)
                target = y - sigma**2 * grad

        D_x = D(x, sigma)
        return weight.detach() * (lam * (D_x - target.detach()) ** 2).flatten(1).mean(dim=1)


def _check_compat_knobs(cfg) -> None:
    default = TIWConfig()
    for k in KNOBS:
        if getattr(cfg.tiw, k) != getattr(default, k):
            raise ConfigError(f"tiw.{k}", f"tiw_compat is the released code's loss, which has no {k}; "
                              f"leave it at {getattr(default, k)} (got {getattr(cfg.tiw, k)}) or use tiw_dsm")


# One class per mode: method.name selects the loss.
TIW_METHODS = {mode: type(mode, (TIWDSM,), {"mode": mode}) for mode in MODES}

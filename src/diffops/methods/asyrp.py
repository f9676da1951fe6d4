"""Asyrp: semantic editing in the h-space of a frozen DPM (Kwon, Jeong and Uh, "Diffusion Models already have a
Semantic Latent Space", ICLR 2023; kwonminki/Asyrp_official, reproduced by zilaeric/asyrp-extension).

The frozen DPM is the pipeline's EDM model read as a DDPM epsilon-predictor through the exact sigma <-> t map
of diffusion/ddpm.py (as PDAE's `frozen_dpm`). One encoder pass gives the original and the edited noise:

    eps   = eps_theta(x_t, t)                 eps~ = eps_theta(x_t, t | h_t + Delta h_t)         (nets/delta_h.py)

Training loss at each timestep t >= t_edit (the reference `diffusion_latent.py: run_training`):

    L_t = lambda_dir L_direction(P_t^edit) + lambda_rec cos(y_src, y_trg) |P_t^edit - P_t^orig|_1    (mean L1)

with P_t the predicted x0 (sampling/asyrp.py). Two directions:
- clip (the paper): L_direction = -log((2 - L_dir) / 2), L_dir = 1 - cos(E_I(P_t^edit) - E_I(x0), E_T(y_trg) - E_T(y_src))
  averaged over the batch (DiffusionCLIP's directional loss, the reference's `clip_loss_func` with the real
  image x0 as the source); diffops logs the cosine itself as `clip_directional_similarity`.
- attribute (the embedded data, no CLIP): L_direction = -log sigmoid(logit_a(P_t^edit)), the attribute net's
  log-likelihood of the attribute, which raises its logit; it has the CLIP loss's -log form and, unlike
  -logit, stops pulling once the net is sure. cos(y_src, y_trg) is 1 (no prompts).
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn
from torch.nn import functional as F

from ..diffusion.ddpm import DDPMSchedule
from ..diffusion.edm import EDMPrecond, edm_coefficients
from ..nets.delta_h import DeltaFn, unet_with_delta_h


def check_frozen_dpm(D: nn.Module, where) -> None:
    """Asyrp reads the UNet of an EDM-preconditioned denoiser (the train stage's EDM model)."""
    if not isinstance(D, EDMPrecond):
        raise ValueError(f"{where}: Asyrp edits an EDM model (precond edm), got {type(D).__name__}; "
                         f"point --edm at the train stage's models/edm")


def asyrp_eps(D: EDMPrecond, x_t: torch.Tensor, t: torch.Tensor, sched: DDPMSchedule, delta: DeltaFn | None):
    """(eps, eps~, Delta h) at DDPM input x_t and integer steps t: the EDM denoiser as an epsilon-predictor with and
    without h + Delta h, from one encoder pass (same arithmetic as EDMPrecond.forward and pdae.frozen_dpm)."""
    x_tilde, sigma = sched.to_edm(x_t.to(torch.float32), t)
    c_skip, c_out, c_in, c_noise = edm_coefficients(sigma.reshape(-1, 1, 1, 1), D.sigma_data)
    F_x, F_edit, _, dh = unet_with_delta_h(D.net, c_in * x_tilde, c_noise.flatten(), delta)
    eps_of = lambda F_out: sched.eps_from_denoised(x_tilde, c_skip * x_tilde + c_out * F_out.to(torch.float32), sigma)  # noqa: E731
    eps = eps_of(F_x)
    return eps, (eps if delta is None else eps_of(F_edit)), dh


def combined_delta(nets: list[nn.Module], coefficients: list[float]) -> DeltaFn:
    """Delta h of several edits: sum_i c_i f_i(h, temb), each on the original h (the reference's hs_coeff)."""
    return lambda h, emb: sum(c * net(h, emb) for net, c in zip(nets, coefficients))


def edit_coefficients(num_edits: int, scale: float, train_steps: int, edit_steps: int) -> list[float]:
    """The inference scale of each of N edits: scale x n_train / n_test (Delta h acts once per step, so more steps
    apply it more often) x 1 / sqrt(N) when edits combine (the reference's run_test)."""
    return [scale * train_steps / edit_steps / num_edits**0.5] * num_edits


# ----------------------------------------------------------------------------
# Losses.

def attribute_direction_loss(logit: torch.Tensor) -> torch.Tensor:
    """-log sigmoid(logit) of the edited attribute on P_t^edit, batch mean (module doc)."""
    return F.softplus(-logit).mean()


@torch.no_grad()
def text_direction(encode_text: Callable, source: str, target: str) -> tuple[torch.Tensor, float]:
    """(Delta T, cos(y_src, y_trg)): the unit direction E_T(y_trg) - E_T(y_src) and the prompts' cosine (which
    weights the L1 term and the LPIPS threshold)."""
    src, trg = encode_text([source]), encode_text([target])
    return F.normalize(trg - src, dim=-1)[0], float(F.cosine_similarity(src, trg)[0])


def clip_directional_cosine(encode_image: Callable, x_ref: torch.Tensor, P_edit: torch.Tensor,
                            text_direction: torch.Tensor) -> torch.Tensor:
    """cos(E_I(P_edit) - E_I(x_ref), Delta T) per image (encode_image: images in [-1, 1] -> features)."""
    image_direction = encode_image(P_edit) - encode_image(x_ref)
    return F.cosine_similarity(image_direction, text_direction.reshape(1, -1).to(image_direction), dim=-1)


def clip_direction_loss(cosine: torch.Tensor) -> torch.Tensor:
    """-log((2 - L_dir) / 2) with L_dir = mean(1 - cos): the reference's form of DiffusionCLIP's directional loss."""
    L_dir = (1 - cosine).mean()
    return -torch.log((2 - L_dir) / 2)


def asyrp_loss(direction: torch.Tensor, P_edit: torch.Tensor, P_orig: torch.Tensor, lambda_dir: float,
               lambda_rec: float, rec_cosine: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """(L_t, L1): lambda_dir L_direction + lambda_rec cos(y_src, y_trg) mean|P_t^edit - P_t^orig| (module doc)."""
    l1 = (P_edit - P_orig).abs().mean()
    return lambda_dir * direction + lambda_rec * rec_cosine * l1, l1

"""Training Asyrp's Delta h network on DDIM-inverted images (the reference `diffusion_latent.py: run_training`).

Not the Accelerate loop (training/loop.py): Asyrp does not learn a denoiser from data batches. For each batch of
inverted images it runs two chains down from x_{t_0}: the edited one (asymmetric steps with h + Delta h, eta = 0)
and the original one (plain DDIM). At every timestep t >= t_edit it takes one optimiser step on

    L_t = lambda_dir L_direction(P_t^edit) + lambda_rec cos |P_t^edit - P_t^orig|_1          (methods/asyrp.py)

with x_t detached, so the gradient reaches Delta h through that one step only; below t_edit nothing trains.
SGD (or AdamW) with StepLR stepped once per epoch; images in their stored order, as the reference.
Pure: no files or MLflow; `on_step` receives each step's numbers.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn
from tqdm import tqdm

from ..diffusion.ddpm import DDPMSchedule
from ..methods.asyrp import asyrp_eps, asyrp_loss
from ..sampling.asyrp import asymmetric_step, reverse_pairs
from ..sampling.ddim import abar

# direction_loss(P_edit, x0) -> (loss, stats): the direction term on the edited prediction (x0: the real images)
DirectionLoss = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, dict]]


def make_optimizer(params, name: str, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, weight_decay=weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    raise ValueError(f"asyrp.optimizer must be sgd or adamw, got {name!r}")


def train_delta_h(D, delta_net: nn.Module, direction_loss: DirectionLoss, x_T: torch.Tensor, x0: torch.Tensor,
                  sched: DDPMSchedule, seq: list[int], t_edit: int, *, epochs: int, batch_size: int, optimizer: str,
                  lr: float, lr_step_epochs: int, lr_gamma: float, weight_decay: float, lambda_dir: float,
                  lambda_rec: float, rec_cosine: float = 1.0, on_step: Callable[[int, dict], None] | None = None,
                  progress: bool = False) -> int:
    """Optimise delta_net in place; x_T: inverted latents (N, 3, R, R), x0: the images in [-1, 1]. Returns the
    number of optimiser steps."""
    opt = make_optimizer(delta_net.parameters(), optimizer, lr, weight_decay)
    sched_lr = torch.optim.lr_scheduler.StepLR(opt, step_size=lr_step_epochs, gamma=lr_gamma)
    pairs = [(t, t_next) for t, t_next in reverse_pairs(seq) if t >= t_edit]
    delta_net.train()
    step = 0
    total = epochs * ((len(x_T) + batch_size - 1) // batch_size) * len(pairs)
    bar = tqdm(total=total, desc="asyrp train", unit="step", disable=not progress, leave=False)
    for epoch in range(epochs):
        for i in range(0, len(x_T), batch_size):
            x_edit = x_orig = x_T[i:i + batch_size].to(torch.float32)
            ref = x0[i:i + batch_size]
            for t, t_next in pairs:
                a, a_next = abar(sched, t), abar(sched, t_next)
                tt = torch.full((x_edit.shape[0],), t, dtype=torch.long, device=x_edit.device)
                # Edited chain: one asymmetric step from the detached x_t (eta = 0).
                eps, eps_edit, _ = asyrp_eps(D, x_edit.detach(), tt, sched, delta_net)
                x_next, P_edit = asymmetric_step(x_edit.detach(), eps, eps_edit, a, a_next)
                # Original chain: plain DDIM (the same step with eps~ = eps).
                with torch.no_grad():
                    eps_o, _, _ = asyrp_eps(D, x_orig, tt, sched, None)
                    x_orig, P_orig = asymmetric_step(x_orig, eps_o, eps_o, a, a_next)
                direction, stats = direction_loss(P_edit, ref)
                loss, l1 = asyrp_loss(direction, P_edit, P_orig, lambda_dir, lambda_rec, rec_cosine)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                x_edit = x_next.detach()
                step += 1
                bar.update(1)
                if on_step is not None:
                    on_step(step, {"loss": float(loss.detach()), "loss_direction": float(direction.detach()),
                                   "loss_l1": float(l1.detach()), "t": t, "epoch": epoch,
                                   "lr": opt.param_groups[0]["lr"], **stats})
        sched_lr.step()
    bar.close()
    delta_net.eval()
    return step

"""L2-regularised logistic regression solved to convergence: full-batch L-BFGS with a strong-Wolfe line search.

Shared by the representation probe (evaluation/probe.py) and the TIW discriminator's noisy-pixel baseline
(training/discriminator.py).
"""
from __future__ import annotations

import torch
from torch.nn import functional as F


def fit_logistic(x: torch.Tensor, y: torch.Tensor, l2: float, max_iter: int, init=None):
    """Minimise 1/N sum BCE(x W + b, y) + l2/2 |W|^2 (every column of y its own problem) by full-batch L-BFGS.
    Returns (W, b, {"iterations", "grad_max"}) with grad_max the largest |gradient| at the end."""
    W = torch.zeros(x.shape[1], y.shape[1], dtype=x.dtype) if init is None else init[0].clone()
    b = torch.zeros(y.shape[1], dtype=x.dtype) if init is None else init[1].clone()
    W.requires_grad_(True), b.requires_grad_(True)
    opt = torch.optim.LBFGS([W, b], lr=1, max_iter=max_iter, history_size=20, tolerance_grad=1e-6,
                            tolerance_change=1e-10, line_search_fn="strong_wolfe")

    def objective():
        opt.zero_grad()
        loss = F.binary_cross_entropy_with_logits(x @ W + b, y, reduction="sum") / len(x) + 0.5 * l2 * (W * W).sum()
        loss.backward()
        return loss

    opt.step(objective)
    objective()
    grad_max = float(max(W.grad.abs().max(), b.grad.abs().max()))
    return W.detach(), b.detach(), {"iterations": int(opt.state[W]["n_iter"]), "grad_max": grad_max}

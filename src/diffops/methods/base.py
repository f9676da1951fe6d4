"""The contract between the training loop and a diffusion method (DiT's seam, edm2's callable loss).

A method owns its loss and any trainable modules beyond the backbone denoiser. The loop calls
`extra_modules()` once, optimises their parameters together with the denoiser's, and calls
`loss(D, modules, batch, generator)` each step. Methods never touch devices, processes or MLflow:
tensors arrive on the right device and randomness comes from the `generator` argument.
"""
from __future__ import annotations

from typing import Protocol

import torch
from torch import nn


class Method(Protocol):
    name: str

    def extra_modules(self) -> dict[str, nn.Module]:
        """Trainable modules besides the denoiser (e.g. an encoder); {} if none."""

    def loss(self, D: nn.Module, modules: dict[str, nn.Module], batch: dict[str, torch.Tensor],
             generator: torch.Generator) -> torch.Tensor:
        """Per-sample loss, shape (B,). batch["image"] is float in [-1, 1], batch["attrs"] {0, 1}."""

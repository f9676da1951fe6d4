"""The contract between the training loop and a diffusion method (DiT's seam, edm2's callable loss).

A method owns its loss and any trainable modules beyond the backbone denoiser. The loop calls
`extra_modules()` once, optimises their parameters together with the denoiser's, and calls
`loss(D, modules, batch, generator)` each step. Methods never touch devices, processes, files or MLflow:
tensors arrive on the right device, randomness comes from the `generator` argument, and inputs a method
needs from other stages (e.g. TIW-DSM's discriminator) come in loaded, as constructor arguments.

What else the loop and the stages read of a method is declared here, with its default:
    freeze_denoiser     True: D is loaded from an exported model and only extra_modules train
    params_section      the method's own params section (e.g. "diti"); it joins the checkpoint hash, so a
                        changed value never resumes a checkpoint written under the old one
    fingerprint         what the method read from its inputs (e.g. the discriminator's sha256); joins it too
    training_config     the Config the loop sees for this method (e.g. its section's lr and budget in train.*)
    precond             how the exported denoiser wraps the UNet: None = EDMPrecond (sigma_data from edm.*),
                        else the model.json "precond" entry (e.g. DDPM's schedule and target)
    step_stats          tensors the last `loss` call set, e.g. {"loss_weight": (B,)}: the loop logs their
                        mean, min and max over the global batch, beside the loss
"""
from __future__ import annotations

import torch
from torch import nn


class Method:
    name: str = ""
    freeze_denoiser: bool = False
    params_section: str | None = None
    fingerprint: str = ""
    step_stats: dict[str, torch.Tensor] = {}

    @classmethod
    def precond(cls, cfg) -> dict | None:
        """The exported denoiser's wrapping of the UNet (None: EDM's preconditioning)."""
        return None

    @classmethod
    def training_config(cls, cfg):
        """The Config the training loop runs with (default: the params as they are)."""
        return cfg

    def extra_modules(self) -> dict[str, nn.Module]:
        """Trainable modules besides the denoiser (e.g. an encoder); {} if none."""
        return {}

    def loss(self, D: nn.Module, modules: dict[str, nn.Module], batch: dict[str, torch.Tensor],
             generator: torch.Generator) -> torch.Tensor:
        """Per-sample loss, shape (B,). batch["image"] is float in [-1, 1], batch["attrs"] {0, 1}."""
        raise NotImplementedError

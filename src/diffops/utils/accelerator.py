"""One place that builds the Accelerator for training and sampling."""
from __future__ import annotations

import torch
from accelerate import Accelerator


def make_accelerator(**kwargs) -> Accelerator:
    """Accelerator on the best device; on a machine without GPUs, multi-process CPU (gloo).

    Accelerate only enters its MULTI_CPU mode under torchrun when it is told `cpu=True`; without it
    every process would believe it is rank 0 of 1 and train alone.
    """
    has_gpu = torch.cuda.is_available() or (hasattr(torch, "xpu") and torch.xpu.is_available()) \
        or torch.backends.mps.is_available()
    return Accelerator(cpu=not has_gpu, **kwargs)

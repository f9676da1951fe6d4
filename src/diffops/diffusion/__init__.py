"""Diffusion formulations: EDM preconditioning and loss, discrete DDPM time and its EDM view, VP time, and
the per-noise-level loss weightings (`diffops.diffusion.loss_weight`)."""
from .loss_weight import loss_weight

__all__ = ["loss_weight"]

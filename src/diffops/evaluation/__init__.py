"""Metrics of generated images: Fréchet distances in any feature space, attribute rates, probes, bias."""
from .frechet import frechet_distance

__all__ = ["frechet_distance"]

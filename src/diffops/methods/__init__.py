"""Registry of diffusion methods: params `method.name` -> class taking the whole Config."""
from .edm import EDM

METHODS = {"edm": EDM}

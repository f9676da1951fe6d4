"""Registry of diffusion methods: params `method.name` -> class taking the whole Config."""
from .ddpm import DDPM
from .edm import EDM
from .diti import DiTi
from .pdae import PDAE
from .tiw_dsm import TIW_METHODS

METHODS = {"edm": EDM, "ddpm": DDPM, "diti": DiTi, "pdae": PDAE}
METHODS.update(TIW_METHODS)   # dsm_ref, dsm_obs, iw_dsm, tiw_dsm, tiw_compat: one class, a mode each

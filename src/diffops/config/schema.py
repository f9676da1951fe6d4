"""The whole params.yaml schema, assembled from the area files: Config, SECTIONS, RULES and check_config.

    core.py      generate, data, featurenet, model, method, edm, train, sample, evaluate, tracking
    ddpm.py      ddpm, erd, erd_train (and the loss-weighting names)
    sweep.py     sweep (and the sweep.space / sweep.budget grammar)
    diti.py      diti
    asyrp.py     asyrp
    platform.py  convert, encode, vae, latent
    tiw.py       bias_split, tiw_extractor, discriminator, tiw, tiw_train

Each area file holds its sections' frozen dataclasses, their RULES (allowed values per dotted key; see
rules.py) and the check of rules between keys; `diffops.config.load` enforces both. Lists are stored as
tuples so that a Config is immutable and hashable.
"""

from dataclasses import dataclass, fields

from .core import (
    CELEBA_ATTRIBUTES, DEFAULT_METHOD_NAMES, DataConfig, EDMConfig, EvaluateConfig, FeatureNetConfig, GenerateConfig,
    MethodConfig, ModelConfig, SampleConfig, TrackingConfig, TrainConfig, _check_core,
)
from .core import RULES as _CORE_RULES
from .ddpm import ERD_TRAIN, DDPMConfig, ERDConfig, _check_ddpm
from .ddpm import RULES as _DDPM_RULES
from .asyrp import AsyrpConfig, _check_asyrp
from .asyrp import RULES as _ASYRP_RULES
from .diti import DiTiConfig, _check_diti
from .diti import RULES as _DITI_RULES
from .platform import ConvertConfig, EncodeConfig, LatentConfig, VAEConfig, _check_data_platform
from .platform import RULES as _PLATFORM_RULES
from .rules import ConfigError
from .sweep import INCEPTION_METRICS, SweepConfig, check_sweep
from .sweep import RULES as _SWEEP_RULES
from .tiw import TIW_TRAIN, BiasSplitConfig, DiscriminatorConfig, ExtractorConfig, TIWConfig, _check_tiw
from .tiw import RULES as _TIW_RULES

# Sections are frozen, so one shared default instance per field is safe. The order is params.yaml's
# (and that of flatten, hence of the MLflow params).
@dataclass(frozen=True)
class Config:
    generate:               GenerateConfig   = GenerateConfig()
    data:                   DataConfig       = DataConfig()
    featurenet:             FeatureNetConfig = FeatureNetConfig()
    model:                  ModelConfig      = ModelConfig()
    method:                 MethodConfig     = MethodConfig()
    edm:                    EDMConfig        = EDMConfig()
    ddpm:                   DDPMConfig       = DDPMConfig()
    train:                  TrainConfig      = TrainConfig()
    sample:                 SampleConfig     = SampleConfig()
    evaluate:               EvaluateConfig   = EvaluateConfig()
    tracking:               TrackingConfig   = TrackingConfig()
    sweep:                  SweepConfig      = SweepConfig()
    diti:                   DiTiConfig       = DiTiConfig()
    asyrp:                  AsyrpConfig      = AsyrpConfig()
    convert:                ConvertConfig    = ConvertConfig()
    encode:                 EncodeConfig     = EncodeConfig()
    vae:                    VAEConfig        = VAEConfig()
    latent:                 LatentConfig     = LatentConfig()
    bias_split:             BiasSplitConfig  = BiasSplitConfig()
    tiw_extractor:          ExtractorConfig  = ExtractorConfig()
    discriminator:          DiscriminatorConfig = DiscriminatorConfig()
    tiw:                    TIWConfig        = TIWConfig()
    tiw_train:              TrainConfig      = TIW_TRAIN
    erd:                    ERDConfig        = ERDConfig()
    erd_train:              TrainConfig      = ERD_TRAIN

SECTIONS = {f.name: f.type for f in fields(Config)}  # section name -> dataclass, in params.yaml order

# Allowed values per dotted key. method.name is checked against the registry the loader is given.
RULES = {**_CORE_RULES, **_DDPM_RULES, **_SWEEP_RULES, **_DITI_RULES, **_ASYRP_RULES, **_PLATFORM_RULES, **_TIW_RULES}

def check_config(cfg: Config) -> None:
    """Rules on whole lists and between keys, area by area. Each error names the key to change."""
    _check_core(cfg)
    _check_ddpm(cfg)
    _check_diti(cfg)
    _check_asyrp(cfg)
    _check_data_platform(cfg)
    _check_tiw(cfg)
    check_sweep(cfg.sweep)       # sweep.space / sweep.budget name keys of every section
    if cfg.sweep.metric in INCEPTION_METRICS and cfg.evaluate.inception_weights is None:
        raise ConfigError('sweep.metric', f'{cfg.sweep.metric} is measured in Inception-v3 space: set '
                          'evaluate.inception_weights to a local weights file (or optimise fd_attrnet)')

__all__ = [
    'CELEBA_ATTRIBUTES', 'DEFAULT_METHOD_NAMES', 'SECTIONS', 'RULES', 'Config', 'ConfigError', 'check_config',
    'GenerateConfig', 'DataConfig', 'FeatureNetConfig', 'ModelConfig', 'MethodConfig', 'EDMConfig', 'TrainConfig',
    'DDPMConfig', 'ERDConfig', 'SampleConfig', 'EvaluateConfig', 'TrackingConfig', 'SweepConfig', 'DiTiConfig', 'AsyrpConfig', 'ConvertConfig', 'EncodeConfig',
    'VAEConfig', 'LatentConfig', 'BiasSplitConfig', 'ExtractorConfig', 'DiscriminatorConfig', 'TIWConfig',
]

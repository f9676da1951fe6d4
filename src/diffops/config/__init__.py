"""Typed, validated params: `cfg = load_params('params.yaml')`, then `cfg.train.lr`, `cfg.edm.P_mean`, ...

The schema is split by area (core, sweep, diti, platform, tiw; assembled in schema.py); load.py reads
and checks a params file against it.
"""

from .load import apply_overrides, flatten, load_params, parse_yaml, read_params, section_hash, to_dict
from .rules import check_value
from .schema import (
    CELEBA_ATTRIBUTES,
    DEFAULT_METHOD_NAMES,
    RULES,
    SECTIONS,
    BiasSplitConfig,
    Config,
    ConfigError,
    ConvertConfig,
    DDPMConfig,
    DataConfig,
    DiscriminatorConfig,
    ExtractorConfig,
    DiTiConfig,
    EDMConfig,
    ERDConfig,
    EncodeConfig,
    EvaluateConfig,
    FeatureNetConfig,
    GenerateConfig,
    LatentConfig,
    MethodConfig,
    ModelConfig,
    SampleConfig,
    SweepConfig,
    TIWConfig,
    TrackingConfig,
    TrainConfig,
    VAEConfig,
    check_config,
)

__all__ = [
    'load_params', 'apply_overrides', 'flatten', 'section_hash', 'to_dict', 'parse_yaml', 'read_params', 'check_value',
    'Config', 'ConfigError', 'SECTIONS', 'RULES', 'DEFAULT_METHOD_NAMES', 'CELEBA_ATTRIBUTES', 'check_config',
    'GenerateConfig', 'DataConfig', 'FeatureNetConfig', 'ModelConfig', 'MethodConfig',
    'EDMConfig', 'DDPMConfig', 'ERDConfig', 'TrainConfig', 'SampleConfig', 'EvaluateConfig', 'TrackingConfig',
    'SweepConfig', 'DiTiConfig', 'ConvertConfig', 'EncodeConfig', 'VAEConfig', 'LatentConfig',
    'BiasSplitConfig', 'ExtractorConfig', 'DiscriminatorConfig', 'TIWConfig',
]

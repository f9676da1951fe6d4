"""Typed, validated params: `cfg = load_params('params.yaml')`, then `cfg.train.lr`, `cfg.edm.P_mean`, ..."""

from .load import apply_overrides, flatten, load_params, section_hash, to_dict
from .schema import (
    CELEBA_ATTRIBUTES,
    METHODS,
    SECTIONS,
    Config,
    ConfigError,
    DataConfig,
    EDMConfig,
    EvaluateConfig,
    FeatureNetConfig,
    GenerateConfig,
    MethodConfig,
    ModelConfig,
    SampleConfig,
    TrackingConfig,
    TrainConfig,
)

__all__ = [
    'load_params', 'apply_overrides', 'flatten', 'section_hash', 'to_dict',
    'Config', 'ConfigError', 'SECTIONS', 'METHODS', 'CELEBA_ATTRIBUTES',
    'GenerateConfig', 'DataConfig', 'FeatureNetConfig', 'ModelConfig', 'MethodConfig',
    'EDMConfig', 'TrainConfig', 'SampleConfig', 'EvaluateConfig', 'TrackingConfig',
]

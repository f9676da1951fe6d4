"""TIW-DSM sections: bias_split, tiw_extractor, discriminator, tiw and tiw_train, their RULES and `_check_tiw`.

tiw_train is a TrainConfig (the optimiser and budget of the TIW-DSM losses): the train rules apply to
it key by key, and its default differs from train's only in duration_kimg.
"""

import math
from dataclasses import dataclass

from .core import RULES as CORE_RULES
from .core import CELEBA_ATTRIBUTES, TrainConfig, check_betas
from .rules import POSITIVE, ConfigError, Rule, at_least

# ----------------------------------------------------------------------------

@dataclass(frozen=True)
class BiasSplitConfig:                              # TIW-DSM setting: D_obs = biased set + small unbiased reference set
    attributes:             tuple[str, ...] = ('Blond_Hair',)  # subgroups = their 2^k combinations; the bias metric's rates
    factor:                 float   = 0.25          # positives : negatives kept in the biased set = 1 : factor (< 1 over-represents)
    reference_fraction:     float   = 0.1           # |reference| = fraction x |biased| (paper: 0.05, 0.1), drawn uniformly
    seed:                   int     = 0             # seed of the draws
    downsample:             int     = 2             # box-downsampling factor of the split's images (1 = keep data.resolution)

@dataclass(frozen=True)
class ExtractorConfig:                              # the discriminator's noise-aware extractor (time-conditioned attribute net)
    width:                  int     = 32            # channels of the first stage (then 2x, 4x)
    feature_dim:            int     = 64            # penultimate features phi(x_tau, tau): the discriminator head's input
    time_dim:               int     = 64            # sinusoidal embedding size of 999 tau
    steps:                  int     = 1200          # optimizer steps on VP-noised prepared train images
    batch_size:             int     = 128           # images per step
    lr:                     float   = 1e-3          # Adam learning rate
    weight_decay:           float   = 0.0           # Adam weight decay
    log_every_steps:        int     = 100           # steps between train-loss logs
    xflip:                  bool    = True          # random horizontal flips
    seed:                   int     = 0             # init, batches, tau and noise

@dataclass(frozen=True)
class DiscriminatorConfig:                          # time-dependent discriminator d(x_tau, tau): frozen extractor + head
    hidden:                 int     = 128           # width of the head
    time_dim:               int     = 64            # sinusoidal embedding size of 999 tau
    steps:                  int     = 300           # optimizer steps (released code: 20k at batch 128 + 128)
    batch_size:             int     = 64            # images of EACH class per step (1:1 batches)
    lr:                     float   = 3e-4          # Adam learning rate (released code)
    weight_decay:           float   = 1e-7          # Adam weight decay (released code)
    checkpoint_every_steps: int     = 100           # head checkpoint (and val score) interval; tiw.discriminator_step picks one
    log_every_steps:        int     = 50            # steps between train-loss logs
    xflip:                  bool    = True          # random horizontal flips
    seed:                   int     = 0             # init, batches, tau and noise

@dataclass(frozen=True)
class TIWConfig:                                    # TIW-DSM / IW-DSM weighting (methods/tiw_dsm.py) + quickstart comparison sampling
    discriminator_step:     int     = 100           # discriminator checkpoint the losses use (early ones regularise)
    alpha:                  float   = 1.0           # strength: weight w^alpha, correction alpha sigma^2 grad log w (0 = DSM(obs))
    weight_min:             float   = 0.0           # clip the weight w^alpha from below
    weight_max:             float   = math.inf      # clip the weight w^alpha from above (.inf = no clip)
    tau_min:                float   = 0.0           # weighting and correction only for VP time tau in [tau_min, tau_max]
    tau_max:                float   = 1.0
    use_weight:             bool    = True          # tiw_dsm ablation: per-sample weight w_t on/off
    use_correction:         bool    = True          # tiw_dsm ablation: score correction sigma^2 grad log w_t on/off
    sample_num_images:      int     = 1000          # `diffops tiw sample`: images per loss (other sample.* shared)
    sample_steps:           int     = 12            # `diffops tiw sample`: sampler steps
    guidance_weight:        float   = 1.0           # discriminator guidance of `tiw sample --guidance` (DG; 0 = off)
    guidance_tau_min:       float   = 0.01          # guidance only for VP time tau in [guidance_tau_min, guidance_tau_max]
    guidance_tau_max:       float   = 1.0

TIW_TRAIN = TrainConfig(duration_kimg=16.0)    # default tiw_train: `diffops tiw train` length per loss

# ----------------------------------------------------------------------------

RULES = {
    'bias_split.attributes':        Rule(lambda v: v in CELEBA_ATTRIBUTES, 'one of the 40 CelebA attributes',
                                         choices=CELEBA_ATTRIBUTES),
    'bias_split.factor':            POSITIVE,
    'bias_split.reference_fraction': Rule(lambda v: 0 < v <= 1, 'a number in (0, 1]'),
    'bias_split.seed':              at_least(0),
    'bias_split.downsample':        at_least(1),
    'tiw_extractor.width':          at_least(1),
    'tiw_extractor.feature_dim':    at_least(1),
    'tiw_extractor.time_dim':       Rule(lambda v: v >= 2 and v % 2 == 0, 'an even integer >= 2'),
    'tiw_extractor.steps':          at_least(1),
    'tiw_extractor.batch_size':     at_least(1),
    'tiw_extractor.lr':             POSITIVE,
    'tiw_extractor.weight_decay':   at_least(0),
    'tiw_extractor.log_every_steps': at_least(1),
    'tiw_extractor.seed':           at_least(0),
    'discriminator.hidden':         at_least(1),
    'discriminator.time_dim':       Rule(lambda v: v >= 2 and v % 2 == 0, 'an even integer >= 2'),
    'discriminator.steps':          at_least(1),
    'discriminator.batch_size':     at_least(1),
    'discriminator.lr':             POSITIVE,
    'discriminator.weight_decay':   at_least(0),
    'discriminator.checkpoint_every_steps': at_least(1),
    'discriminator.log_every_steps': at_least(1),
    'discriminator.seed':           at_least(0),
    'tiw.discriminator_step':       at_least(1),
    'tiw.alpha':                    at_least(0),
    'tiw.weight_min':               at_least(0),
    'tiw.weight_max':               Rule(lambda v: v > 0, 'a positive {t} or .inf', inf_ok=True),
    'tiw.tau_min':                  Rule(lambda v: 0 <= v <= 1, 'a VP time in [0, 1]'),
    'tiw.tau_max':                  Rule(lambda v: 0 <= v <= 1, 'a VP time in [0, 1]'),
    'tiw.sample_num_images':        at_least(2),
    'tiw.sample_steps':             at_least(1),
    'tiw.guidance_weight':          at_least(0),
    'tiw.guidance_tau_min':         Rule(lambda v: 0 <= v <= 1, 'a VP time in [0, 1]'),
    'tiw.guidance_tau_max':         Rule(lambda v: 0 <= v <= 1, 'a VP time in [0, 1]'),
    # tiw_train.<key>: the rule of train.<key>
    **{f'tiw_train.{key[len("train."):]}': rule for key, rule in CORE_RULES.items() if key.startswith('train.')},
}

# ----------------------------------------------------------------------------

def _check_tiw(cfg) -> None:
    """bias_split / discriminator / tiw: subgroups the attribute net can measure, a checkpoint that exists."""
    b, d, t = cfg.bias_split, cfg.discriminator, cfg.tiw
    check_betas('tiw_train', cfg.tiw_train)
    if not 1 <= len(b.attributes) <= 4:
        raise ConfigError('bias_split.attributes', f'must list 1 to 4 attributes (2^k subgroups), got {len(b.attributes)}')
    for i, name in enumerate(b.attributes):
        if name in b.attributes[:i]:
            raise ConfigError(f'bias_split.attributes[{i}]', f'{name} is listed twice')
        if name not in cfg.featurenet.attributes:
            raise ConfigError(f'bias_split.attributes[{i}]', f'must be one of featurenet.attributes (the attribute '
                              f'net measures the bias of samples), got {name}')
    if t.discriminator_step > d.steps or (t.discriminator_step % d.checkpoint_every_steps and t.discriminator_step != d.steps):
        raise ConfigError('tiw.discriminator_step', f'must be a checkpointed step: a multiple of '
                          f'discriminator.checkpoint_every_steps ({d.checkpoint_every_steps}) up to discriminator.steps '
                          f'({d.steps}), or {d.steps}; got {t.discriminator_step}')
    halvings, r = len(cfg.model.block_channels) - 1, cfg.data.resolution // b.downsample
    if cfg.data.resolution % b.downsample or r % 2**halvings:
        raise ConfigError('bias_split.downsample', f'must divide data.resolution ({cfg.data.resolution}) into a '
                          f'multiple of {2**halvings} (the UNet halves it {halvings} times), got {b.downsample}')
    if t.weight_min >= t.weight_max:
        raise ConfigError('tiw.weight_min', f'must be < tiw.weight_max ({t.weight_max}), got {t.weight_min}')
    if t.guidance_tau_min >= t.guidance_tau_max:
        raise ConfigError('tiw.guidance_tau_min', f'must be < tiw.guidance_tau_max ({t.guidance_tau_max}), '
                          f'got {t.guidance_tau_min}')
    if t.tau_min >= t.tau_max:
        raise ConfigError('tiw.tau_min', f'must be < tiw.tau_max ({t.tau_max}), got {t.tau_min}')

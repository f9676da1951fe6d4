"""Core sections: generate, data, featurenet, model, method, edm, train, sample, evaluate, tracking.

Their dataclasses (one per section, defaults equal to the quickstart params.yaml), their RULES and
`_check_core`, the rules between their keys. Field names are the yaml keys, so `cfg.train.lr` is
`train.lr` in params.yaml, in dvc.yaml and in MLflow. Durations are in kimg (thousands of training
images), as in EDM, so that changing the batch size leaves every schedule intact.
"""

import math
from dataclasses import dataclass

from ..data.celeba import ATTRIBUTE_NAMES as CELEBA_ATTRIBUTES   # the 40 CelebA attributes, in file order
from .rules import NON_EMPTY, POSITIVE, ConfigError, Rule, at_least, one_of

DEFAULT_METHOD_NAMES = ('edm',)  # method.name values load_params accepts when the caller passes no registry

# ----------------------------------------------------------------------------

@dataclass(frozen=True)
class GenerateConfig:
    num_images:             int     = 6000          # synthetic face images to write (>= 10)
    seed:                   int     = 0             # seed of the synthetic face generator
    nuisance:               float   = 1.0           # spread of background / clothes colour and lighting, in [0, 1]

@dataclass(frozen=True)
class DataConfig:
    crop:                   int     = 140           # side of the central crop in source pixels (ScoreSDE CelebA crop)
    resolution:             int     = 32            # side of the stored images in pixels, after the crop
    on_error:               str     = 'skip'        # unreadable source image: 'skip' it or 'fail' the stage
    num_workers:            int     = 2             # worker processes for decoding and resizing
    transform:              str     = 'celeba-crop' # celeba-crop (central `crop` square, BICUBIC) or d2c-crop (diffae/DiTi rows 57-184, cols 25-152)

@dataclass(frozen=True)
class FeatureNetConfig:
    attributes:             tuple[str, ...] = (     # CelebA attributes the classifier predicts (FD features + rates)
        'Male', 'Smiling', 'Eyeglasses', 'Black_Hair', 'Blond_Hair', 'Brown_Hair', 'Gray_Hair',
        'Young', 'Mustache', 'No_Beard', 'Pale_Skin')
    width:                  int     = 32            # channels of the first stage (then 2x, 4x)
    feature_dim:            int     = 64            # dimension of the penultimate features used for fd_attrnet
    epochs:                 int     = 15            # passes over the training split
    batch_size:             int     = 128           # images per optimizer step
    lr:                     float   = 2e-3          # Adam learning rate
    seed:                   int     = 0             # seed of initialization, shuffling and flips

@dataclass(frozen=True)
class ModelConfig:
    block_channels:         tuple[int, ...]  = (16, 32, 64)          # channels per UNet level; resolution halves between levels
    attention:              tuple[bool, ...] = (False, False, True)  # self-attention at that level (one entry per level)
    layers_per_block:       int     = 1             # ResNet blocks per level
    norm_num_groups:        int     = 8             # GroupNorm groups; must divide every block_channels entry
    dropout:                float   = 0.0           # dropout probability inside the ResNet blocks

@dataclass(frozen=True)
class MethodConfig:
    name:                   str     = 'edm'         # training method: a key of the method registry

@dataclass(frozen=True)
class EDMConfig:                                    # Karras et al. 2022, Table 1
    sigma_data:             float   = 0.5           # standard deviation of the data (pixels in [-1, 1])
    P_mean:                 float   = -1.2          # mean of ln(sigma) when training
    P_std:                  float   = 1.2           # standard deviation of ln(sigma) when training
    loss_weight:            str     = 'edm'         # edm: Table 1's lambda(sigma); or a ddpm.loss_weight name, mapped to
                                                    # the denoiser's error at the same noise level (diffusion/loss_weight.py)
    loss_weight_target:     str     = 'eps'         # the prediction whose MSE that weighting is defined on: eps, x0, v
    p2_k:                   float   = 1.0           # loss_weight p2: 1 / (k + snr)^gamma
    p2_gamma:               float   = 1.0

@dataclass(frozen=True)
class TrainConfig:
    seed:                   int     = 0             # base seed; the loop reseeds from (seed, rank, images seen)
    duration_kimg:          float   = 24.0          # training length in thousands of images
    batch_size:             int     = 64            # images per optimizer step, over all processes
    lr:                     float   = 2e-3          # Adam learning rate after the ramp-up
    adam_betas:             tuple[float, ...] = (0.9, 0.999)  # Adam's (beta1, beta2)
    weight_decay:           float   = 0.0           # > 0: AdamW's decoupled weight decay (0: Adam)
    lr_rampup_kimg:         float   = 2.0           # linear learning-rate warm-up in kimg (0 = none, as in EDM)
    ema_halflife_kimg:      float   = 2.0           # half-life of the EMA weights in kimg
    ema_rampup_ratio:       float   = 0.05          # EMA half-life is at most this fraction of the images seen
    xflip:                  bool    = True          # random horizontal flips of training images
    precision:              str     = 'no'          # Accelerate mixed precision: 'no', 'fp16' or 'bf16'
    num_workers:            int     = 0             # DataLoader workers per training process (0: read in the loop)
    checkpoint_every_kimg:  float   = 8.0           # interval between checkpoints in kimg
    grid_every_kimg:        float   = 8.0           # interval between sample grids in kimg
    log_every_steps:        int     = 10            # optimizer steps between metric logs

@dataclass(frozen=True)
class SampleConfig:                                 # EDM sampler, Karras et al. 2022, Algorithm 2
    num_images:             int     = 500           # images to generate, with seeds seed_start .. seed_start + num_images - 1
    seed_start:             int     = 0             # seed of the first image; every image has its own seed
    seed_ranges:            int     = 1             # EDM's protocol: > 1 samples this many consecutive ranges of
                                                    # num_images seeds and evaluate reports the best range (min fid,
                                                    # else min fd_attrnet) with every range's value (pixel sample/evaluate)
    steps:                  int     = 18            # noise levels N (Heun: 2N - 1 network evaluations)
    sigma_min:              float   = 0.002         # lowest noise level of the schedule (Eq. 5)
    sigma_max:              float   = 80.0          # highest noise level of the schedule
    rho:                    float   = 7.0           # schedule exponent (Eq. 5)
    S_churn:                float   = 0.0           # total stochasticity; 0 = deterministic sampler
    S_min:                  float   = 0.0           # churn only where S_min <= sigma <= S_max
    S_max:                  float   = math.inf      # upper end of the churn range (.inf in yaml)
    S_noise:                float   = 1.0           # noise inflation of the churn step
    batch_size:             int     = 100           # images per sampler batch; does not change the images

@dataclass(frozen=True)
class EvaluateConfig:
    reference_split:        str     = 'test'        # split the generated images are compared with: train, val, test
    batch_size:             int     = 500           # images per feature-extraction batch
    untrained_baseline:     bool    = True          # also score samples of the untrained network (chance level)
    inception_weights:      str | None = None       # local Inception-v3 file (pt_inception-2015-12-05-6726825d.pth):
                                                    # fid, kid, precision, recall; null: fd_attrnet only
    kid_subsets:            int     = 100           # KID: random subsets (Binkowski et al.; torch-fidelity's default)
    kid_subset_size:        int     = 1000          # KID: rows per subset (capped at the number of samples)
    pr_k:                   int     = 3             # precision/recall: k of the k-NN balls (Kynkaanniemi et al.)
    checkpoint_num_images:  int     = 200           # training: fd_attrnet of this many samples at every checkpoint
                                                    # (the curve against kimg; 0 = none). Biased up by the count
    checkpoint_steps:       int     = 8             # sampler steps of those samples

@dataclass(frozen=True)
class TrackingConfig:
    experiment:             str     = 'diffops-quickstart'  # MLflow experiment name
    log_checkpoints:        str     = 'all'         # checkpoints logged as MLflow artifacts: none, last, all
    system_metrics:         bool    = True          # log CPU/GPU/memory usage with the run

# ----------------------------------------------------------------------------

RULES = {
    'generate.num_images':          at_least(10),
    'generate.seed':                at_least(0),
    'generate.nuisance':            Rule(lambda v: 0 <= v <= 1, 'a number in [0, 1]'),
    'data.crop':                    POSITIVE,
    'data.resolution':              POSITIVE,
    'data.on_error':                one_of('skip', 'fail'),
    'data.num_workers':             at_least(0),
    'data.transform':               one_of('celeba-crop', 'd2c-crop'),
    'featurenet.attributes':        Rule(lambda v: v in CELEBA_ATTRIBUTES, 'one of the 40 CelebA attributes (5_o_Clock_Shadow, ..., Young)',
                                         choices=CELEBA_ATTRIBUTES),
    'featurenet.width':             POSITIVE,
    'featurenet.feature_dim':       POSITIVE,
    'featurenet.epochs':            POSITIVE,
    'featurenet.batch_size':        at_least(1),
    'featurenet.lr':                POSITIVE,
    'featurenet.seed':              at_least(0),
    'model.block_channels':         POSITIVE,
    'model.layers_per_block':       at_least(1),
    'model.norm_num_groups':        at_least(1),
    'model.dropout':                Rule(lambda v: 0 <= v < 1, 'a number in [0, 1)'),
    # method.name is checked against the registry the loader is given.
    'edm.sigma_data':               POSITIVE,
    'edm.P_std':                    POSITIVE,
    'edm.loss_weight_target':       one_of('eps', 'x0', 'v'),
    'edm.p2_k':                     POSITIVE,
    'edm.p2_gamma':                 POSITIVE,
    'train.seed':                   at_least(0),
    'train.duration_kimg':          POSITIVE,
    'train.batch_size':             at_least(1),
    'train.lr':                     POSITIVE,
    'train.adam_betas':             Rule(lambda v: 0 <= v < 1, 'a number in [0, 1)'),
    'train.weight_decay':           at_least(0),
    'train.lr_rampup_kimg':         at_least(0),
    'train.ema_halflife_kimg':      POSITIVE,
    'train.ema_rampup_ratio':       POSITIVE,
    'train.precision':              one_of('no', 'fp16', 'bf16'),
    'train.num_workers':            at_least(0),
    'train.checkpoint_every_kimg':  POSITIVE,
    'train.grid_every_kimg':        POSITIVE,
    'train.log_every_steps':        at_least(1),
    'sample.num_images':            at_least(1),
    'sample.seed_start':            at_least(0),
    'sample.seed_ranges':           at_least(1),
    'sample.steps':                 at_least(1),
    'sample.sigma_min':             POSITIVE,
    'sample.sigma_max':             POSITIVE,
    'sample.rho':                   POSITIVE,
    'sample.S_churn':               at_least(0),
    'sample.S_min':                 at_least(0),
    'sample.S_max':                 at_least(0, inf_ok=True),   # .inf = churn at every noise level
    'sample.S_noise':               POSITIVE,
    'sample.batch_size':            at_least(1),
    'evaluate.reference_split':     one_of('train', 'val', 'test'),
    'evaluate.batch_size':          at_least(1),
    'evaluate.inception_weights':   NON_EMPTY,
    'evaluate.kid_subsets':         at_least(1),
    'evaluate.kid_subset_size':     at_least(2),
    'evaluate.pr_k':                at_least(1),
    'evaluate.checkpoint_num_images': Rule(lambda v: v == 0 or v >= 2, '0 (no curve) or an integer >= 2'),
    'evaluate.checkpoint_steps':    at_least(1),
    'tracking.experiment':          NON_EMPTY,
    'tracking.log_checkpoints':     one_of('none', 'last', 'all'),
}

# ----------------------------------------------------------------------------

def check_betas(section: str, train) -> None:
    """A TrainConfig section's adam_betas is a pair."""
    if len(train.adam_betas) != 2:
        raise ConfigError(f'{section}.adam_betas', f'must be [beta1, beta2], got {len(train.adam_betas)} numbers')


def _check_core(cfg) -> None:
    """featurenet attributes, data crop and resolution against the UNet, the sampler's noise range."""
    attributes = cfg.featurenet.attributes
    if not attributes:
        raise ConfigError('featurenet.attributes', 'must list at least one CelebA attribute, got []')
    for i, name in enumerate(attributes):
        if name in attributes[:i]:
            raise ConfigError(f'featurenet.attributes[{i}]', f'{name} is listed twice')

    data, model = cfg.data, cfg.model
    if data.crop < data.resolution:
        raise ConfigError('data.crop', f'must be >= data.resolution ({data.resolution}), got {data.crop}')
    if not model.block_channels:
        raise ConfigError('model.block_channels', 'must list at least one UNet level, got []')
    if len(model.attention) != len(model.block_channels):
        raise ConfigError('model.attention', f'must have one entry per model.block_channels entry '
                          f'({len(model.block_channels)}), got {len(model.attention)}')
    for i, channels in enumerate(model.block_channels):
        if channels % model.norm_num_groups:
            raise ConfigError(f'model.block_channels[{i}]', f'must be a multiple of model.norm_num_groups '
                              f'({model.norm_num_groups}), got {channels}')
    halvings = len(model.block_channels) - 1  # UNet2DModel downsamples after every level but the last
    if data.resolution % 2**halvings:
        raise ConfigError('data.resolution', f'{data.resolution} cannot be halved {halvings} times by a UNet with '
                          f'{len(model.block_channels)} blocks (must be a multiple of {2**halvings})')

    check_betas('train', cfg.train)

    sample = cfg.sample
    if sample.sigma_min >= sample.sigma_max:
        raise ConfigError('sample.sigma_min', f'must be < sample.sigma_max ({sample.sigma_max}), got {sample.sigma_min}')
    if sample.S_min > sample.S_max:
        raise ConfigError('sample.S_min', f'must be <= sample.S_max ({sample.S_max}), got {sample.S_min}')

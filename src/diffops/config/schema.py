"""Typed schema of params.yaml: one frozen dataclass per section, defaults equal to the quickstart params.yaml.

Field names are the yaml keys, so `cfg.train.lr` is `train.lr` in params.yaml, in dvc.yaml and in MLflow.
Below the dataclasses, RULES says which values each key allows and `check_config` states the rules that
involve several values; `diffops.config.load` enforces both. Lists are stored as tuples so that a Config
is immutable and hashable.
"""

import math
from dataclasses import dataclass, fields
from typing import Any, Callable

# ----------------------------------------------------------------------------
# The 40 attributes of CelebA's list_attr_celeba.txt, in file order.

CELEBA_ATTRIBUTES = (
    '5_o_Clock_Shadow', 'Arched_Eyebrows', 'Attractive', 'Bags_Under_Eyes', 'Bald', 'Bangs',
    'Big_Lips', 'Big_Nose', 'Black_Hair', 'Blond_Hair', 'Blurry', 'Brown_Hair', 'Bushy_Eyebrows',
    'Chubby', 'Double_Chin', 'Eyeglasses', 'Goatee', 'Gray_Hair', 'Heavy_Makeup', 'High_Cheekbones',
    'Male', 'Mouth_Slightly_Open', 'Mustache', 'Narrow_Eyes', 'No_Beard', 'Oval_Face', 'Pale_Skin',
    'Pointy_Nose', 'Receding_Hairline', 'Rosy_Cheeks', 'Sideburns', 'Smiling', 'Straight_Hair',
    'Wavy_Hair', 'Wearing_Earrings', 'Wearing_Hat', 'Wearing_Lipstick', 'Wearing_Necklace',
    'Wearing_Necktie', 'Young',
)

METHODS = ('edm',)  # method.name values accepted when the caller passes no registry

class ConfigError(ValueError):
    """A params file that cannot be used. The message is one line: `<source>: <dotted.key>: <problem>`."""

    def __init__(self, key: str, problem: str, source: str = 'params'):
        self.key, self.problem, self.source = key, problem, source
        super().__init__(f'{source}: {key}: {problem}' if key else f'{source}: {problem}')

# ----------------------------------------------------------------------------
# Sections. Durations are in kimg (thousands of training images), as in EDM, so that changing
# the batch size leaves every schedule intact.

@dataclass(frozen=True)
class GenerateConfig:
    num_images:             int     = 6000          # synthetic face images to write (>= 10)
    seed:                   int     = 0             # seed of the synthetic face generator

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

@dataclass(frozen=True)
class TrainConfig:
    seed:                   int     = 0             # base seed; the loop reseeds from (seed, rank, images seen)
    duration_kimg:          float   = 24.0          # training length in thousands of images
    batch_size:             int     = 64            # images per optimizer step, over all processes
    lr:                     float   = 2e-3          # Adam learning rate after the ramp-up
    lr_rampup_kimg:         float   = 2.0           # linear learning-rate warm-up in kimg (0 = none, as in EDM)
    ema_halflife_kimg:      float   = 2.0           # half-life of the EMA weights in kimg
    ema_rampup_ratio:       float   = 0.05          # EMA half-life is at most this fraction of the images seen
    xflip:                  bool    = True          # random horizontal flips of training images
    precision:              str     = 'no'          # Accelerate mixed precision: 'no', 'fp16' or 'bf16'
    num_workers:            int     = 1             # DataLoader worker processes per training process
    checkpoint_every_kimg:  float   = 8.0           # interval between checkpoints in kimg
    grid_every_kimg:        float   = 8.0           # interval between sample grids in kimg
    log_every_steps:        int     = 10            # optimizer steps between metric logs

@dataclass(frozen=True)
class SampleConfig:                                 # EDM sampler, Karras et al. 2022, Algorithm 2
    num_images:             int     = 500           # images to generate, with seeds seed_start .. seed_start + num_images - 1
    seed_start:             int     = 0             # seed of the first image; every image has its own seed
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

@dataclass(frozen=True)
class TrackingConfig:
    experiment:             str     = 'diffops-quickstart'  # MLflow experiment name
    log_checkpoints:        str     = 'all'         # checkpoints logged as MLflow artifacts: none, last, all
    system_metrics:         bool    = True          # log CPU/GPU/memory usage with the run

@dataclass(frozen=True)
class DiTiConfig:                                   # DiTi (Yue et al. 2024) and PDAE (k = 1) on the frozen EDM model
    latent_dim:             int     = 64            # d: dimension of z = E(x0) (paper: 512)
    k:                      int     = 16            # chunks of z over the T = 1000 DDPM steps (paper: 64; 1 = PDAE)
    allocation:             str     = 'balanced'    # chunk sizes: 'balanced' (d / k each) or 'stages' (stages + dims_per_stage)
    stages:                 tuple[int, ...] = (50, 100, 300, 500, 1000)  # stage ends in t; a chunk joins the stage of its start t
    dims_per_stage:         tuple[int, ...] = (2, 4, 36, 14, 8)          # dims of each stage (sum = latent_dim; paper 10,25,327,100,50)
    mode:                   str     = 'base'        # base | stop_grad (gradient to the newest chunk only) | dual (both losses)
    encoder_width:          int     = 64            # channels of the encoder's first conv (64 = the reference encoder)
    seed:                   int     = 0             # seed of initialisation, batches, timesteps and noise
    duration_kimg:          float   = 8.0           # training length in thousands of images (paper: 38,000)
    batch_size:             int     = 64            # images per optimizer step over all processes (paper: 128)
    lr:                     float   = 1e-3          # Adam lr, used as is for any process count (paper: 1e-4 x local batch / 32)
    ema_halflife_kimg:      float   = 1.0           # EMA half-life of encoder and shift branch (paper: 0.9999 per step)
    checkpoint_every_kimg:  float   = 4.0           # interval between resumable checkpoints
    probe_epochs:           int     = 15            # linear probe: epochs; the epoch with the best val mean AP is kept
    probe_lr:               float   = 1e-3          # linear probe: Adam lr
    probe_batch_size:       int     = 128           # linear probe: batch size
    probe_standardize:      bool    = True          # standardise features with train-split mean/std first (reference: no)
    probe_seed:             int     = 0             # linear probe: init, shuffling and flips
    cf_pairs:               int     = 2             # counterfactuals: image pairs (consecutive test images)
    cf_t_from:              tuple[int, ...] = (0, 100, 300, 500)     # counterfactual rows: chunks starting in [from, to)
    cf_t_to:                tuple[int, ...] = (100, 300, 500, 1000)  #   are interpolated between the two images
    cf_alphas:              tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)  # interpolation weights (grid columns)
    cf_slerp_xT:            bool    = False         # also slerp the DDIM-inverted x_T from A's to B's (reference: true)
    cf_encode_steps:        int     = 50            # DDIM inversion steps (paper: 1000)
    cf_decode_steps:        int     = 50            # DDIM decoding steps (paper: 100)
    manip_attribute:        str     = 'Blond_Hair'  # ProbMask manipulation target (one of featurenet.attributes)
    manip_dims:             int     = 8             # d': dims the ProbMask keeps (paper: 16 of 512)
    manip_epochs:           int     = 30            # epochs of the masked linear classifier (paper: 10 on 163k images)
    manip_lr:               float   = 1e-3          # its Adam lr (paper: 1e-4)
    manip_scale:            float   = 3.0           # edit: z_norm + scale sqrt(d) w / |w| (paper: 0.3 on its trained 512-d z)
    manip_images:           int     = 32            # test images without the attribute that are edited
    manip_encode_steps:     int     = 50            # DDIM inversion steps (paper: 500)
    manip_decode_steps:     int     = 50            # DDIM decoding steps (paper: 200)

@dataclass(frozen=True)
class SweepConfig:                                  # Optuna study of `diffops sweep` (syntax: diffops/sweeps/space.py)
    study:                  str     = 'edm-baseline'    # study name in the storage; workers given the same name share it
    objective:              str     = 'edm'             # what a trial runs: edm (train, sample, evaluate), diti (train_diti
                                                        # on the frozen models/edm, probe) or tiw (tiw_dsm training, bias evaluation)
    metric:                 str     = 'fd_attrnet'      # the objective's metric the study optimizes (sweeps/objective.py METRICS)
    direction:              str     = 'minimize'        # minimize or maximize the metric
    space:                  tuple[str, ...] = (         # searched keys: key=float|int(low, high[, log]) or key=categorical(a, ...)
        'train.lr=float(2.0e-4, 2.0e-2, log)', 'train.ema_halflife_kimg=float(0.25, 4.0, log)',
        'edm.P_mean=float(-2.0, 0.0)', 'edm.P_std=float(0.6, 2.0)')
    budget:                 tuple[str, ...] = (         # key=value overrides of every trial (its short budget)
        'train.duration_kimg=6', 'train.checkpoint_every_kimg=2', 'train.grid_every_kimg=6',
        'sample.num_images=500', 'evaluate.untrained_baseline=false', 'tracking.log_checkpoints=none')
    n_trials:               int     = 20            # trials to finish (complete, pruned or failed) over all workers
    sampler:                str     = 'tpe'         # Optuna sampler: tpe, random or gp
    sampler_seed:           int     = 0             # seed of the sampler of the worker that creates the study
    sampler_startup_trials: int     = 5             # random trials before tpe/gp model the space
    pruner:                 str     = 'median'      # none, median or hyperband (on the intermediate metric)
    pruner_startup_trials:  int     = 3             # median: finished trials before any trial is pruned
    pruner_warmup_kimg:     float   = 4.0           # median: no pruning before a trial has trained this many kimg
    intermediate_num_images: int    = 200           # samples of the cheap intermediate metric at each checkpoint
    intermediate_steps:     int     = 8             # sampler steps of those samples
    storage:                str     = 'sweeps/optuna.journal'  # journal file (relative to the project) or RDB URL

@dataclass(frozen=True)
class ConvertConfig:                                # `diffops convert`: image source -> edm2 folder/zip or diffae LMDB
    transform:              str     = 'center-crop' # none, center-crop, center-crop-wide, center-crop-dhariwal, squash, celeba-crop, d2c-crop
    resolution:             int     = 64            # output side in pixels (0 = keep the size: none, celeba-crop, d2c-crop)
    height:                 int     = 0             # center-crop-wide only: output band height (0 = resolution)
    filter:                 str     = 'default'     # default (the transform's reference filter), lanczos, bicubic, bilinear, box, hamming, nearest
    crop:                   int     = 140           # celeba-crop: side of the central square
    celeba_split:           str     = 'all'         # CelebA-root sources: all, train, val or test
    max_images:             int     = 0             # convert the first N images of the sorted source (0 = all)
    on_error:               str     = 'skip'        # corrupt/truncated/non-image/too-small input: skip (listed in the report) or fail
    num_workers:            int     = 2             # decode/transform/encode processes (<= 1: in the main process)
    batch_size:             int     = 64            # images per worker task
    lmdb_codec:             str     = 'webp'        # .lmdb values: webp (diffae CelebA, LSUN), jpeg (FFHQ, CelebA-HQ) or png
    lmdb_quality:           int     = 100           # webp/jpeg quality (diffae: 100; LSUN bedroom: 90)
    lmdb_zfill:             int     = 7             # .lmdb key digits (diffae: CelebA 7, FFHQ/CelebA-HQ 5, LSUN 7)

@dataclass(frozen=True)
class EncodeConfig:                                 # `diffops encode`: images -> VAE moments (mean || std), edm2 layout
    input_range:            str     = '-1,1'        # VAE input: '-1,1' (REPA, SD convention) or '0,1' (edm2)
    batch_size:             int     = 64            # images per VAE call
    xflip:                  bool    = False         # also encode flipped images into <dest>-xflip (same names and order)
    split:                  str     = 'train'       # prepared-container sources: the split to encode
    num_workers:            int     = 0             # DataLoader workers decoding source images
    check_images:           int     = 16            # also encoded one at a time; the max deviation goes to meta.json

@dataclass(frozen=True)
class VAEConfig:                                    # quickstart diffusers AutoencoderKL (stands in for sd-vae-ft-mse)
    block_channels:         tuple[int, ...] = (16, 32, 32)  # channels per level; latents are resolution / 2^(levels - 1) wide
    latent_channels:        int     = 4             # C of z (stored moments have 2C channels)
    layers_per_block:       int     = 1             # ResNet blocks per encoder level (decoder: + 1)
    norm_num_groups:        int     = 8             # GroupNorm groups; must divide every block_channels entry
    duration_kimg:          float   = 8.0           # training length in thousands of images
    batch_size:             int     = 16            # images per optimizer step (16: more steps per CPU-second than 64)
    lr:                     float   = 1e-3          # Adam learning rate
    kl_weight:              float   = 1e-6          # weight of KL(q(z|x) || N(0, I)) per pixel (LDM: 1e-6)
    seed:                   int     = 0             # seed of initialisation, batches and z draws

@dataclass(frozen=True)
class LatentConfig:                                 # EDM baseline on VAE latents (train/sample/evaluate-latent)
    block_channels:         tuple[int, ...]  = (32, 64)       # UNet channels per level, at the latent resolution
    attention:              tuple[bool, ...] = (False, True)  # self-attention at that level
    layers_per_block:       int     = 1             # ResNet blocks per level
    norm_num_groups:        int     = 8             # GroupNorm groups; must divide every block_channels entry
    sigma_data:             float   = 1.0           # std of the scaled latents (scaling_factor makes it about 1)
    duration_kimg:          float   = 20.0          # training length in kimg (other train.* keys are shared)
    batch_size:             int     = 64            # latents per optimizer step, over all processes
    lr:                     float   = 2e-3          # Adam learning rate after the ramp-up
    xflip:                  bool    = False         # half the draws from the flipped image's moments (needs encode.xflip)

@dataclass(frozen=True)
class BiasSplitConfig:                              # TIW-DSM setting: D_obs = biased set + small unbiased reference set
    attributes:             tuple[str, ...] = ('Male', 'Black_Hair')  # subgroups = their 2^k combinations (bias metric too)
    factor:                 float   = 4.0           # each listed attribute's positives kept in the biased set w.p. 1/factor
    reference_fraction:     float   = 0.05          # |reference| = fraction x |biased| (paper: 0.05, 0.1), drawn uniformly
    seed:                   int     = 0             # seed of the draws
    downsample:             int     = 2             # box-downsampling factor of the split's images (1 = keep data.resolution)

@dataclass(frozen=True)
class DiscriminatorConfig:                          # time-dependent discriminator d(x_tau, tau): frozen attribute net + head
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
class TIWConfig:                                    # TIW-DSM / IW-DSM weighting (methods/tiw_dsm.py) + quickstart comparison budget
    discriminator_step:     int     = 200           # discriminator checkpoint the losses use (early ones regularise)
    alpha:                  float   = 1.0           # strength: weight w^alpha, correction alpha sigma^2 grad log w (0 = DSM(obs))
    weight_min:             float   = 0.0           # clip the weight w^alpha from below
    weight_max:             float   = math.inf      # clip the weight w^alpha from above (.inf = no clip)
    tau_min:                float   = 0.0           # weighting and correction only for VP time tau in [tau_min, tau_max]
    tau_max:                float   = 1.0
    use_weight:             bool    = True          # tiw_dsm ablation: per-sample weight w_t on/off
    use_correction:         bool    = True          # tiw_dsm ablation: score correction sigma^2 grad log w_t on/off
    duration_kimg:          float   = 16.0          # `diffops tiw train`: training length per loss (other train.* shared)
    sample_num_images:      int     = 500           # `diffops tiw sample`: images per loss (other sample.* shared)
    sample_steps:           int     = 12            # `diffops tiw sample`: sampler steps
    guidance_weight:        float   = 1.0           # discriminator guidance of `tiw sample --guidance` (DG; 0 = off)
    guidance_tau_min:       float   = 0.01          # guidance only for VP time tau in [guidance_tau_min, guidance_tau_max]
    guidance_tau_max:       float   = 1.0

# Sections are frozen, so one shared default instance per field is safe.
@dataclass(frozen=True)
class Config:
    generate:               GenerateConfig   = GenerateConfig()
    data:                   DataConfig       = DataConfig()
    featurenet:             FeatureNetConfig = FeatureNetConfig()
    model:                  ModelConfig      = ModelConfig()
    method:                 MethodConfig     = MethodConfig()
    edm:                    EDMConfig        = EDMConfig()
    train:                  TrainConfig      = TrainConfig()
    sample:                 SampleConfig     = SampleConfig()
    evaluate:               EvaluateConfig   = EvaluateConfig()
    tracking:               TrackingConfig   = TrackingConfig()
    sweep:                  SweepConfig      = SweepConfig()
    diti:                   DiTiConfig       = DiTiConfig()
    convert:                ConvertConfig    = ConvertConfig()
    encode:                 EncodeConfig     = EncodeConfig()
    vae:                    VAEConfig        = VAEConfig()
    latent:                 LatentConfig     = LatentConfig()
    bias_split:             BiasSplitConfig  = BiasSplitConfig()
    discriminator:          DiscriminatorConfig = DiscriminatorConfig()
    tiw:                    TIWConfig        = TIWConfig()

SECTIONS = {f.name: f.type for f in fields(Config)}  # section name -> dataclass, in params.yaml order

# ----------------------------------------------------------------------------
# Allowed values. The type of a key comes from its annotation; a Rule narrows it further. For a list,
# the rule applies to each element. `allowed` completes "must be ...": {a} is "an integer" or "a number",
# {t} is "integer" or "number", so one rule reads right for both types.

@dataclass(frozen=True)
class Rule:
    ok:         Callable[[Any], bool]
    allowed:    str
    choices:    tuple = ()          # for one_of: lets the loader suggest the closest name
    inf_ok:     bool = False        # floats are finite unless the rule says otherwise

def at_least(lo, inf_ok=False) -> Rule:
    return Rule(lambda v: v >= lo, f'{{a}} >= {lo}' + (' or .inf' if inf_ok else ''), inf_ok=inf_ok)

def one_of(*choices) -> Rule:
    return Rule(lambda v: v in choices, 'one of ' + ', '.join(choices), choices=choices)

POSITIVE = Rule(lambda v: v > 0, 'a positive {t}')
NON_EMPTY = Rule(lambda v: v != '', 'a non-empty string')

RULES = {
    'generate.num_images':          at_least(10),
    'generate.seed':                at_least(0),
    'data.crop':                    POSITIVE,
    'data.resolution':              POSITIVE,
    'data.on_error':                one_of('skip', 'fail'),
    'data.num_workers':             at_least(0),
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
    'train.seed':                   at_least(0),
    'train.duration_kimg':          POSITIVE,
    'train.batch_size':             at_least(1),
    'train.lr':                     POSITIVE,
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
    'tracking.experiment':          NON_EMPTY,
    'tracking.log_checkpoints':     one_of('none', 'last', 'all'),
    'diti.latent_dim':              at_least(1),
    'diti.k':                       at_least(1),
    'diti.allocation':              one_of('balanced', 'stages'),
    'diti.stages':                  at_least(1),
    'diti.dims_per_stage':          at_least(1),
    'diti.mode':                    one_of('base', 'stop_grad', 'dual'),
    'diti.encoder_width':           at_least(1),
    'diti.seed':                    at_least(0),
    'diti.duration_kimg':           POSITIVE,
    'diti.batch_size':              at_least(1),
    'diti.lr':                      POSITIVE,
    'diti.ema_halflife_kimg':       POSITIVE,
    'diti.checkpoint_every_kimg':   POSITIVE,
    'diti.probe_epochs':            at_least(1),
    'diti.probe_lr':                POSITIVE,
    'diti.probe_batch_size':        at_least(1),
    'diti.probe_seed':              at_least(0),
    'diti.cf_pairs':                at_least(1),
    'diti.cf_t_from':               Rule(lambda v: 0 <= v < 1000, 'a timestep in [0, 1000)'),
    'diti.cf_t_to':                 Rule(lambda v: 0 < v <= 1000, 'a timestep in (0, 1000]'),
    'diti.cf_alphas':               Rule(lambda v: 0 <= v <= 1, 'a number in [0, 1]'),
    'diti.cf_encode_steps':         Rule(lambda v: 1 <= v <= 1000, 'an integer in [1, 1000]'),
    'diti.cf_decode_steps':         Rule(lambda v: 1 <= v <= 1000, 'an integer in [1, 1000]'),
    'diti.manip_attribute':         Rule(lambda v: v in CELEBA_ATTRIBUTES, 'one of the 40 CelebA attributes',
                                         choices=CELEBA_ATTRIBUTES),
    'diti.manip_dims':              at_least(1),
    'diti.manip_epochs':            at_least(1),
    'diti.manip_lr':                POSITIVE,
    'diti.manip_images':            at_least(1),
    'diti.manip_encode_steps':      Rule(lambda v: 1 <= v <= 1000, 'an integer in [1, 1000]'),
    'diti.manip_decode_steps':      Rule(lambda v: 1 <= v <= 1000, 'an integer in [1, 1000]'),
    'sweep.study':                  NON_EMPTY,
    'sweep.objective':              one_of('edm', 'diti', 'tiw'),
    'sweep.metric':                 one_of('fd_attrnet', 'attr_rate_mae', 'probe_val_map', 'subgroup_tv'),
    'sweep.direction':              one_of('minimize', 'maximize'),
    'sweep.n_trials':               at_least(1),
    'sweep.sampler':                one_of('tpe', 'random', 'gp'),
    'sweep.sampler_seed':           at_least(0),
    'sweep.sampler_startup_trials': at_least(0),
    'sweep.pruner':                 one_of('none', 'median', 'hyperband'),
    'sweep.pruner_startup_trials':  at_least(0),
    'sweep.pruner_warmup_kimg':     at_least(0),
    'sweep.intermediate_num_images': at_least(2),
    'sweep.intermediate_steps':     at_least(1),
    'sweep.storage':                NON_EMPTY,
    'data.transform':               one_of('celeba-crop', 'd2c-crop'),
    'convert.transform':            one_of('none', 'center-crop', 'center-crop-wide', 'center-crop-dhariwal', 'squash',
                                           'celeba-crop', 'd2c-crop'),
    'convert.resolution':           at_least(0),
    'convert.height':               at_least(0),
    'convert.filter':               one_of('default', 'lanczos', 'bicubic', 'bilinear', 'box', 'hamming', 'nearest'),
    'convert.crop':                 POSITIVE,
    'convert.celeba_split':         one_of('all', 'train', 'val', 'test'),
    'convert.max_images':           at_least(0),
    'convert.on_error':             one_of('skip', 'fail'),
    'convert.num_workers':          at_least(0),
    'convert.batch_size':           at_least(1),
    'convert.lmdb_codec':           one_of('webp', 'jpeg', 'png'),
    'convert.lmdb_quality':         Rule(lambda v: 1 <= v <= 100, 'an integer in [1, 100]'),
    'convert.lmdb_zfill':           at_least(1),
    'encode.input_range':           one_of('-1,1', '0,1'),
    'encode.batch_size':            at_least(1),
    'encode.split':                 one_of('train', 'val', 'test'),
    'encode.num_workers':           at_least(0),
    'encode.check_images':          at_least(0),
    'vae.block_channels':           POSITIVE,
    'vae.latent_channels':          at_least(1),
    'vae.layers_per_block':         at_least(1),
    'vae.norm_num_groups':          at_least(1),
    'vae.duration_kimg':            POSITIVE,
    'vae.batch_size':               at_least(1),
    'vae.lr':                       POSITIVE,
    'vae.kl_weight':                at_least(0),
    'vae.seed':                     at_least(0),
    'latent.block_channels':        POSITIVE,
    'latent.layers_per_block':      at_least(1),
    'latent.norm_num_groups':       at_least(1),
    'latent.sigma_data':            POSITIVE,
    'latent.duration_kimg':         POSITIVE,
    'latent.batch_size':            at_least(1),
    'latent.lr':                    POSITIVE,
    'bias_split.attributes':        Rule(lambda v: v in CELEBA_ATTRIBUTES, 'one of the 40 CelebA attributes',
                                         choices=CELEBA_ATTRIBUTES),
    'bias_split.factor':            at_least(1),
    'bias_split.reference_fraction': Rule(lambda v: 0 < v <= 1, 'a number in (0, 1]'),
    'bias_split.seed':              at_least(0),
    'bias_split.downsample':        at_least(1),
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
    'tiw.duration_kimg':            POSITIVE,
    'tiw.sample_num_images':        at_least(2),
    'tiw.sample_steps':             at_least(1),
    'tiw.guidance_weight':          at_least(0),
    'tiw.guidance_tau_min':         Rule(lambda v: 0 <= v <= 1, 'a VP time in [0, 1]'),
    'tiw.guidance_tau_max':         Rule(lambda v: 0 <= v <= 1, 'a VP time in [0, 1]'),
}

# ----------------------------------------------------------------------------
# Rules on whole lists and between keys. Each error names the key to change.

def check_config(cfg: Config) -> None:
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

    sample = cfg.sample
    if sample.sigma_min >= sample.sigma_max:
        raise ConfigError('sample.sigma_min', f'must be < sample.sigma_max ({sample.sigma_max}), got {sample.sigma_min}')
    if sample.S_min > sample.S_max:
        raise ConfigError('sample.S_min', f'must be <= sample.S_max ({sample.S_max}), got {sample.S_min}')
    _check_diti(cfg)
    _check_data_platform(cfg)
    _check_tiw(cfg)

    from ..sweeps.space import check_sweep      # sweep.space / sweep.budget name other keys of this schema
    check_sweep(cfg.sweep)

# ----------------------------------------------------------------------------

def _check_diti(cfg: Config) -> None:
    """DiTi: the chunk allocation must be buildable (k >= 1, dims summing to latent_dim, ...)."""
    from ..methods.diti import allocation_problem   # pure integer arithmetic, shared with the method
    d = cfg.diti
    problem = allocation_problem(d.latent_dim, d.k, d.allocation, d.stages, d.dims_per_stage)
    if problem:
        raise ConfigError(f'diti.{problem[0]}', problem[1])
    if len(d.cf_t_from) != len(d.cf_t_to):
        raise ConfigError('diti.cf_t_to', f'must have one entry per diti.cf_t_from entry ({len(d.cf_t_from)}), '
                          f'got {len(d.cf_t_to)}')
    for i, (lo, hi) in enumerate(zip(d.cf_t_from, d.cf_t_to)):
        if hi <= lo:
            raise ConfigError(f'diti.cf_t_to[{i}]', f'must be > diti.cf_t_from[{i}] ({lo}), got {hi}')
    if d.manip_dims > d.latent_dim:
        raise ConfigError('diti.manip_dims', f'must be <= diti.latent_dim ({d.latent_dim}), got {d.manip_dims}')
    if d.manip_attribute not in cfg.featurenet.attributes:
        raise ConfigError('diti.manip_attribute', f'must be one of featurenet.attributes (the attribute net '
                          f'measures the edit), got {d.manip_attribute}')

# ----------------------------------------------------------------------------

# ----------------------------------------------------------------------------

def _check_data_platform(cfg: Config) -> None:
    """convert / vae / latent: combinations that cannot work, named by the key to change."""
    from ..data.transforms import check_transform   # the transforms' own rules (pure, PIL only)
    c = cfg.convert
    try:
        check_transform(c.transform, c.resolution, c.height, c.filter, c.crop)
    except ValueError as e:
        key, _, problem = str(e).partition(': ')
        raise ConfigError(f'convert.{key}', problem) from None
    for section in ('vae', 'latent'):
        s = getattr(cfg, section)
        if not s.block_channels:
            raise ConfigError(f'{section}.block_channels', 'must list at least one level, got []')
        for i, channels in enumerate(s.block_channels):
            if channels % s.norm_num_groups:
                raise ConfigError(f'{section}.block_channels[{i}]', f'must be a multiple of {section}.norm_num_groups '
                                  f'({s.norm_num_groups}), got {channels}')
    if len(cfg.latent.attention) != len(cfg.latent.block_channels):
        raise ConfigError('latent.attention', f'must have one entry per latent.block_channels entry '
                          f'({len(cfg.latent.block_channels)}), got {len(cfg.latent.attention)}')
    f = 2 ** (len(cfg.vae.block_channels) - 1)
    if cfg.data.resolution % f:
        raise ConfigError('vae.block_channels', f'{len(cfg.vae.block_channels)} levels downsample by {f}, which '
                          f'does not divide data.resolution ({cfg.data.resolution})')
    if (cfg.data.resolution // f) % 2 ** (len(cfg.latent.block_channels) - 1):
        raise ConfigError('latent.block_channels', f'{len(cfg.latent.block_channels)} levels cannot halve the '
                          f'{cfg.data.resolution // f}-wide latents {len(cfg.latent.block_channels) - 1} times')

# ----------------------------------------------------------------------------

def _check_tiw(cfg: Config) -> None:
    """bias_split / discriminator / tiw: subgroups the attribute net can measure, a checkpoint that exists."""
    b, d, t = cfg.bias_split, cfg.discriminator, cfg.tiw
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

"""The diti section: DiTiConfig, its RULES and `_check_diti`, with the chunk allocation it checks.

The allocation arithmetic (chunk_starts, stage_chunk_counts, allocation_problem) is pure integers and
is shared with diffops.methods.diti, which builds the masks from it.
"""

from dataclasses import dataclass

from .core import CELEBA_ATTRIBUTES
from .rules import POSITIVE, ConfigError, Rule, at_least, one_of

T = 1000    # DDPM steps of DiTi's schedule (diffusion.ddpm.T; config sits below diffusion in the layers)

# ----------------------------------------------------------------------------

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
    duration_kimg:          float   = 24.0          # training length in thousands of images (paper: 38,000)
    batch_size:             int     = 64            # images per optimizer step over all processes (paper: 128)
    lr:                     float   = 2e-4          # Adam lr, used as is for any process count (paper: 1e-4 x local batch / 32)
    ema_halflife_kimg:      float   = 1.0           # EMA half-life of encoder and shift branch (paper: 0.9999 per step)
    checkpoint_every_kimg:  float   = 8.0           # interval between resumable checkpoints
    probe_l2:               tuple[float, ...] = (1e-1, 1e-2, 1e-3, 1e-4)  # linear probe: L2 grid; the best on val mAP is kept
    probe_max_iter:         int     = 500           # linear probe: L-BFGS iterations per L2 value (full batch)
    probe_random_seeds:     tuple[int, ...] = (0, 1, 2)  # init seeds of the `random` encoder baseline (mean and sd)
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

RULES = {
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
    'diti.probe_l2':                POSITIVE,
    'diti.probe_max_iter':          at_least(1),
    'diti.probe_random_seeds':      at_least(0),
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
}

# ----------------------------------------------------------------------------
# Chunk allocation (pure integer arithmetic; also used by diffops.methods.diti).

def chunk_starts(k: int, num_steps: int = T) -> list[int]:
    """First timestep of each chunk: the smallest t with idx(t) = i, i.e. ceil(i T / k)."""
    return [(i * num_steps + k - 1) // k for i in range(k)]


def stage_chunk_counts(k: int, stages, num_steps: int = T) -> list[int]:
    """How many chunks start in each stage [stages[s-1], stages[s])."""
    counts = [0] * len(stages)
    for start in chunk_starts(k, num_steps):
        counts[next(s for s, end in enumerate(stages) if end > start)] += 1
    return counts


def allocation_problem(latent_dim: int, k: int, allocation: str, stages, dims_per_stage,
                       num_steps: int = T) -> tuple[str, str] | None:
    """(key, problem) if this allocation cannot be built, else None. Keys are relative to `diti.`."""
    if k > num_steps:
        return "k", f"must be <= the {num_steps} diffusion steps, got {k}"
    if k == 1:
        return None                                    # PDAE: one chunk, the whole z (reference special case)
    if allocation == "balanced":
        if latent_dim < k:
            return "latent_dim", f"must be >= diti.k ({k}) so that every chunk gets a dimension, got {latent_dim}"
        return None
    if len(stages) != len(dims_per_stage) or not stages:
        return "dims_per_stage", (f"must have one entry per diti.stages entry ({len(stages)}), "
                                  f"got {len(dims_per_stage)}")
    for s, end in enumerate(stages):
        if end <= (stages[s - 1] if s else 0):
            return f"stages[{s}]", f"must be greater than the previous stage end ({stages[s - 1] if s else 0}), got {end}"
    if stages[-1] != num_steps:
        return f"stages[{len(stages) - 1}]", f"the last stage must end at T = {num_steps}, got {stages[-1]}"
    if sum(dims_per_stage) != latent_dim:
        return "dims_per_stage", (f"must sum to diti.latent_dim ({latent_dim}), got "
                                  f"{' + '.join(map(str, dims_per_stage))} = {sum(dims_per_stage)}")
    for s, (n, dims) in enumerate(zip(stage_chunk_counts(k, stages, num_steps), dims_per_stage)):
        lo = stages[s - 1] if s else 0
        if n == 0:
            return f"stages[{s}]", f"no chunk of k = {k} starts in [{lo}, {stages[s]}); widen the stage or raise diti.k"
        if dims < n:
            return f"dims_per_stage[{s}]", (f"must be >= the {n} chunks starting in [{lo}, {stages[s]}) "
                                            f"so that each gets a dimension, got {dims}")
    return None

# ----------------------------------------------------------------------------

def _check_diti(cfg) -> None:
    """DiTi: the chunk allocation must be buildable (k >= 1, dims summing to latent_dim, ...)."""
    d = cfg.diti
    problem = allocation_problem(d.latent_dim, d.k, d.allocation, d.stages, d.dims_per_stage)
    if problem:
        raise ConfigError(f'diti.{problem[0]}', problem[1])
    for key in ('probe_l2', 'probe_random_seeds'):
        if not getattr(d, key):
            raise ConfigError(f'diti.{key}', 'must list at least one value')
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

"""DDPM-formulation sections: ddpm (ERD's method and its baselines), erd and erd_train (their convergence
comparison and its optimiser and budget), the loss-weighting names params accept (diffusion/loss_weight.py
computes them), RULES and `_check_ddpm`.

erd_train is a TrainConfig, as tiw_train is: the train rules apply to it key by key.
"""

from dataclasses import dataclass

from .core import RULES as CORE_RULES
from .core import TrainConfig, check_betas
from .rules import POSITIVE, ConfigError, at_least, one_of

TARGETS = ('eps', 'x0', 'v')
SCHEDULES = ('linear', 'cosine')
WEIGHT_NAMES = ('constant', 'lambda', 'min_snr_<k>', 'max_snr_<k>', 'p2', 'debias', 'min_debias', 'max_debias',
                'snr', 'inv_snr', 'trunc_snr')
_CELLS = {      # weighting (without its k) -> the targets it is defined for (the reference's table)
    'constant': TARGETS, 'lambda': TARGETS, 'min_snr': TARGETS, 'max_snr': ('eps', 'x0'), 'p2': ('eps',),
    'debias': ('eps',), 'min_debias': ('eps',), 'max_debias': ('eps',),
    'snr': ('x0',), 'inv_snr': ('x0',), 'trunc_snr': ('x0',),
}


def parse_weight(name: str, target: str) -> tuple[str, float | None]:
    """(base name, k) of a loss weighting, e.g. ('min_snr', 5.0) for 'min_snr_5'. ValueError if `name` is
    not one, or is not defined for `target`."""
    if target not in TARGETS:
        raise ValueError(f'target must be one of {", ".join(TARGETS)}, got {target!r}')
    base, k = name, None
    for prefix in ('min_snr_', 'max_snr_'):
        if name.startswith(prefix):
            base = prefix[:-1]
            try:
                k = float(name[len(prefix):])
            except ValueError:
                raise ValueError(f'{name!r}: the k after {prefix} must be a number, e.g. {prefix}5') from None
            if not k > 0:
                raise ValueError(f'{name!r}: the k after {prefix} must be positive')
    if base not in _CELLS or (base in ('min_snr', 'max_snr') and k is None):
        raise ValueError(f'unknown loss weighting {name!r}; one of {", ".join(WEIGHT_NAMES)}')
    if target not in _CELLS[base]:
        raise ValueError(f'{name!r} is not defined for the {target} target (it is for: {", ".join(_CELLS[base])})')
    return base, k

# ----------------------------------------------------------------------------

@dataclass(frozen=True)
class DDPMConfig:                                   # method.name ddpm: discrete DDPM, uniform t, T = 1000 (ERD's formulation)
    schedule:               str     = 'cosine'      # beta schedule: linear (1e-4 -> 0.02) or cosine (Nichol, s = 0.008)
    target:                 str     = 'eps'         # what the network predicts: eps, x0 or v
    loss_weight:            str     = 'lambda'      # weight of each sample's MSE (diffusion/loss_weight.py); lambda = ERD
    p2_k:                   float   = 1.0           # p2 weighting 1 / (k + snr)^gamma
    p2_gamma:               float   = 1.0

@dataclass(frozen=True)
class ERDConfig:                                    # the convergence comparison (pipelines/erd-quickstart)
    weightings:             tuple[str, ...] = ('constant', 'lambda', 'min_snr_5', 'p2')  # ddpm.loss_weight of each arm;
                                                    # the first is the baseline the others are compared with
    seeds:                  tuple[int, ...] = (0, 1, 2)      # erd_train.seed of each arm's runs (same seeds for every arm)
    fd_threshold:           float   = 0.0           # kimg_to_threshold: first checkpoint with fd_attrnet <= this
                                                    # (0: the baseline's, weightings[0]'s, mean final fd_attrnet)

# erd_train: the arms' optimiser and budget (each arm sets its seed): a curve point every 2 kimg.
ERD_TRAIN = TrainConfig(duration_kimg=8.0, lr_rampup_kimg=1.0, ema_halflife_kimg=1.0, checkpoint_every_kimg=2.0)

# ----------------------------------------------------------------------------

RULES = {
    'ddpm.schedule':                one_of(*SCHEDULES),
    'ddpm.target':                  one_of(*TARGETS),
    'ddpm.p2_k':                    POSITIVE,
    'ddpm.p2_gamma':                POSITIVE,
    'erd.seeds':                    at_least(0),
    'erd.fd_threshold':             at_least(0),
    # erd_train.<key>: the rule of train.<key>
    **{f'erd_train.{key[len("train."):]}': rule for key, rule in CORE_RULES.items() if key.startswith('train.')},
}


def check_weight(key: str, name: str, target: str) -> None:
    try:
        parse_weight(name, target)
    except ValueError as e:
        raise ConfigError(key, str(e)) from None


def _check_ddpm(cfg) -> None:
    """Loss weightings that the table defines for their target; distinct erd arms and seeds."""
    check_weight('ddpm.loss_weight', cfg.ddpm.loss_weight, cfg.ddpm.target)
    if cfg.edm.loss_weight != 'edm':
        check_weight('edm.loss_weight', cfg.edm.loss_weight, cfg.edm.loss_weight_target)
    e = cfg.erd
    for key, values in (('erd.weightings', e.weightings), ('erd.seeds', e.seeds)):
        if not values:
            raise ConfigError(key, 'must list at least one entry, got []')
        for i, v in enumerate(values):
            if v in values[:i]:
                raise ConfigError(f'{key}[{i}]', f'{v} is listed twice')
    check_betas('erd_train', cfg.erd_train)
    # erd.weightings against ddpm.target: checked by the erd_compare stage, the one that reads them

"""The sweep section: SweepConfig, its RULES, and the grammar of sweep.space / sweep.budget that check_sweep
(called by check_config) validates against the whole schema.

    sweep.space:   train.lr=float(2.0e-4, 2.0e-2, log)      float in [low, high], log-uniform with `log`
                   train.batch_size=int(16, 128, log)       int in [low, high]
                   method.name=categorical(edm, erd)        one of the listed YAML scalars
    sweep.budget:  train.duration_kimg=6                    fixed `key=value` override of every trial

A trial's params become `key=value` overrides in the form of `dvc exp run -S` (format_override), applied
to the raw params with diffops.config.apply_overrides and validated by load_params, so a trial is exactly
`dvc exp run -S <budget> -S <trial params>`. check_sweep rejects unknown keys, values the key's type or
rule does not allow, and keys a trial must not change. diffops.sweeps.space re-exports these names.
"""

import json
import math
import re
from dataclasses import dataclass, fields
from typing import Any, get_origin

from .rules import NON_EMPTY, ConfigError, at_least, check_value, one_of

# ----------------------------------------------------------------------------

@dataclass(frozen=True)
class SweepConfig:                                  # Optuna study of `diffops sweep` (syntax: this module's docstring)
    study:                  str     = 'edm-baseline'    # study name in the storage; workers given the same name share it
    objective:              str     = 'edm'             # what a trial runs: edm (train, sample, evaluate), diti (train_diti
                                                        # on the frozen models/edm, probe) or tiw (tiw_dsm training, bias evaluation)
    metric:                 str     = 'fd_attrnet'      # the objective's metric the study optimizes (METRICS below)
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

RULES = {
    'sweep.study':                  NON_EMPTY,
    'sweep.objective':              one_of('edm', 'diti', 'tiw', 'asyrp'),
    'sweep.metric':                 one_of('fd_attrnet', 'attr_rate_mae', 'attrnet_precision', 'attrnet_recall', 'fid',
                                           'kid_mean', 'precision', 'recall', 'probe_val_map', 'subgroup_tv', 'bias',
                                           'change_rate', 'change_rate_minus_random', 'other_attr_change'),
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
}

# ----------------------------------------------------------------------------
# The space / budget grammar.

# The sweep trains on the prepared data and featurenet of the root pipeline: a trial cannot change them,
# nor what the objective's inputs were built with (the frozen models/edm of diti, the discriminator of tiw).
FIXED_SECTIONS = ('generate', 'data', 'featurenet', 'sweep')
FIXED_BY_OBJECTIVE = {'edm': (), 'diti': ('model',), 'tiw': ('bias_split', 'discriminator'), 'asyrp': ('model',)}

# sweep.objective -> the metrics it can optimize and their better direction. fid, kid_mean, precision and
# recall (Inception space) need evaluate.inception_weights and the reference stage's statistics.
INCEPTION_METRICS = ('fid', 'kid_mean', 'precision', 'recall')
METRICS = {
    'edm': {'fd_attrnet': 'minimize', 'attr_rate_mae': 'minimize', 'attrnet_precision': 'maximize',
            'attrnet_recall': 'maximize', 'fid': 'minimize', 'kid_mean': 'minimize', 'precision': 'maximize',
            'recall': 'maximize'},
    'diti': {'probe_val_map': 'maximize'},      # validation mAP: tuning on the test split would leak it
    'tiw': {'fd_attrnet': 'minimize', 'subgroup_tv': 'minimize', 'bias': 'minimize'},
    'asyrp': {'change_rate_minus_random': 'maximize', 'change_rate': 'maximize', 'other_attr_change': 'minimize',
              'fd_attrnet': 'minimize'},     # metrics/asyrp.json of the edited test images
}

_ITEM = re.compile(r'^\s*([A-Za-z_][\w]*\.[A-Za-z_][\w]*)\s*=\s*(float|int|categorical)\s*\((.*)\)\s*$', re.S)


@dataclass(frozen=True)
class Param:
    """One searched key: kind 'float' | 'int' (low, high, log) or 'categorical' (choices)."""
    key:        str
    kind:       str
    low:        Any = None
    high:       Any = None
    log:        bool = False
    choices:    tuple = ()

    def suggest(self, trial) -> Any:
        if self.kind == 'float':
            return trial.suggest_float(self.key, self.low, self.high, log=self.log)
        if self.kind == 'int':
            return trial.suggest_int(self.key, self.low, self.high, log=self.log)
        return trial.suggest_categorical(self.key, list(self.choices))

    def values(self) -> list:
        """The values that bound the space (for checking whole trial configs before any compute)."""
        return [self.low, self.high] if self.kind != 'categorical' else list(self.choices)


def _yaml(text: str) -> Any:
    from ruamel.yaml import YAML      # YAML 1.2, as DVC and diffops.config read params.yaml
    return YAML(typ='safe').load(text)


def parse_param(item: str) -> Param:
    """'train.lr=float(1e-4, 1e-2, log)' -> Param. Raises ValueError with the problem."""
    m = _ITEM.match(item) if isinstance(item, str) else None
    if not m:
        raise ValueError('expected section.key=float(low, high[, log]), section.key=int(low, high[, log]) '
                         'or section.key=categorical(a, b, ...)')
    key, kind, args = m.groups()
    try:
        values = _yaml(f'[{args}]')
    except Exception:
        raise ValueError(f'cannot read the arguments ({args}) as YAML scalars') from None
    if kind == 'categorical':
        if not values:
            raise ValueError('categorical needs at least one choice')
        for v in values:
            if v is not None and type(v) not in (bool, int, float, str):
                raise ValueError(f'categorical choices must be scalars (true, 3, 0.5, name), got {v!r}')
        if len(set(map(json.dumps, values))) != len(values):
            raise ValueError('categorical choices are listed twice')
        return Param(key, kind, choices=tuple(values))
    log = len(values) == 3 and values[2] == 'log'
    if len(values) not in (2, 3) or (len(values) == 3 and not log):
        raise ValueError(f'{kind} takes (low, high) or (low, high, log), got ({args})')
    low, high = values[:2]
    number = (int,) if kind == 'int' else (int, float)
    for name, v in (('low', low), ('high', high)):
        if type(v) not in number or not math.isfinite(v):
            raise ValueError(f'{name} must be {"an integer" if kind == "int" else "a finite number"}, got {v!r}')
    if not low < high:
        raise ValueError(f'low must be < high, got {low} >= {high}')
    if log and low <= 0:
        raise ValueError(f'a log range needs low > 0, got {low}')
    return Param(key, kind, float(low) if kind == 'float' else low, float(high) if kind == 'float' else high, log)


def parse_override(item: str) -> tuple[str, Any]:
    """'train.duration_kimg=6' -> ('train.duration_kimg', 6), values read as YAML like `dvc exp run -S`."""
    key, sep, text = item.partition('=') if isinstance(item, str) else ('', '', '')
    if not sep or '.' not in key:
        raise ValueError('expected section.key=value')
    try:
        return key.strip(), _yaml(text)
    except Exception:
        raise ValueError(f'cannot read {text!r} as a YAML value') from None


def format_override(key: str, value: Any) -> str:
    """The `key=value` text that apply_overrides (and `dvc exp run -S`) reads back as exactly `value`."""
    if isinstance(value, bool) or value is None:
        text = {True: 'true', False: 'false', None: 'null'}[value]
    elif isinstance(value, float):
        text = repr(value)                   # shortest round-trip spelling: 0.0012345, 1e-05
    elif isinstance(value, str):
        text = value if _yaml(value) == value and value.strip() == value and value else json.dumps(value)
    else:
        text = str(value)
    return f'{key}={text}'

# ----------------------------------------------------------------------------
# Validation against the schema (types and RULES of the named keys).

def _field(key: str, objective: str = 'edm'):
    from .schema import SECTIONS        # a trial may name any section (the assembled schema imports this file)
    section, _, name = key.partition('.')
    if section not in SECTIONS:
        raise ValueError(f'{key}: unknown section (allowed: {", ".join(SECTIONS)})')
    types = {f.name: f.type for f in fields(SECTIONS[section])}
    if name not in types:
        import difflib
        close = difflib.get_close_matches(name, types, n=1)
        raise ValueError(f'{key}: unknown key' + (f' (did you mean {section}.{close[0]}?)' if close else ''))
    if section in FIXED_SECTIONS:
        raise ValueError(f'{key}: a trial cannot change {section}.* (the sweep uses the prepared data and '
                         f'featurenet of the pipeline, and sweep.* describes the study itself)')
    if section in FIXED_BY_OBJECTIVE[objective]:
        raise ValueError(f'{key}: a {objective} trial cannot change {section}.* (its input from the pipeline, '
                         f'{"models/tiw/discriminator" if objective == "tiw" else "models/edm"}, was built with it)')
    return types[name]


def _check(key: str, value, typ) -> None:
    from .schema import RULES           # every section's rules (the assembled schema imports this file)
    try:
        check_value(key, value, typ, RULES.get(key))   # the loader's own type + rule check, so both agree
    except ConfigError as e:
        raise ValueError(f'{e.key}: {e.problem}') from None


def check_param(p: Param, objective: str = 'edm') -> None:
    typ = _field(p.key, objective)
    if get_origin(typ) is tuple:
        raise ValueError(f'{p.key} is a list; set it in sweep.budget instead of searching it')
    if p.kind == 'float' and typ is not float:
        raise ValueError(f'{p.key} is {"an integer" if typ is int else "not a number"}; use '
                         f'{"int(low, high)" if typ is int else "categorical(...)"}')
    if p.kind == 'int' and typ not in (int, float):
        raise ValueError(f'{p.key} is not a number; use categorical(...)')
    for v in p.values():
        _check(p.key, v, typ)


def check_sweep(sweep) -> None:
    """The metric suits the objective; every sweep.space and sweep.budget entry names a schema key a trial
    may change, with allowed values."""
    metrics = METRICS[sweep.objective]
    if sweep.metric not in metrics:
        raise ConfigError('sweep.metric', f'{sweep.metric!r} is not a metric of sweep.objective {sweep.objective!r} '
                          f'(choose {" or ".join(metrics)})')
    if sweep.direction != metrics[sweep.metric]:
        raise ConfigError('sweep.direction', f'{sweep.metric} is better when '
                          f'{"lower" if metrics[sweep.metric] == "minimize" else "higher"}: use {metrics[sweep.metric]}')
    keys = {}
    for i, item in enumerate(sweep.space):
        try:
            p = parse_param(item)
            check_param(p, sweep.objective)
        except ValueError as e:
            raise ConfigError(f'sweep.space[{i}]', f'{item!r}: {e}') from None
        if p.key in keys:
            raise ConfigError(f'sweep.space[{i}]', f'{p.key} is searched twice (also {keys[p.key]})')
        keys[p.key] = f'sweep.space[{i}]'
    if not sweep.space:
        raise ConfigError('sweep.space', 'must list at least one searched key, e.g. train.lr=float(1e-4, 1e-2, log)')
    for i, item in enumerate(sweep.budget):
        try:
            key, value = parse_override(item)
            _check(key, value, _field(key, sweep.objective))
        except ValueError as e:
            raise ConfigError(f'sweep.budget[{i}]', f'{item!r}: {e}') from None
        if key in keys:
            raise ConfigError(f'sweep.budget[{i}]', f'{key} is also set by {keys[key]}')
        keys[key] = f'sweep.budget[{i}]'


def parse_space(sweep) -> list[Param]:
    return [parse_param(item) for item in sweep.space]

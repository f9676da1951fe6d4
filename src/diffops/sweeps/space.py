"""The search space and per-trial budget of a study, as params.yaml spells them.

    sweep.space:   train.lr=float(2.0e-4, 2.0e-2, log)      float in [low, high], log-uniform with `log`
                   train.batch_size=int(16, 128, log)       int in [low, high]
                   method.name=categorical(edm, erd)        one of the listed YAML scalars
    sweep.budget:  train.duration_kimg=6                    fixed `key=value` override of every trial

A trial's params become `key=value` overrides in the form of `dvc exp run -S` (format_override), applied
to the raw params with diffops.config.apply_overrides and validated by load_params, so a trial is exactly
`dvc exp run -S <budget> -S <trial params>`. check_sweep (called by config.schema.check_config) rejects
unknown keys, values the key's type or rule does not allow, and keys a trial must not change.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, fields
from typing import Any, get_args, get_origin

from ..config.schema import RULES, SECTIONS, ConfigError

# The sweep trains on the prepared data and featurenet of the root pipeline: a trial cannot change them,
# nor what the objective's inputs were built with (the frozen models/edm of diti, the discriminator of tiw).
FIXED_SECTIONS = ('generate', 'data', 'featurenet', 'sweep')
FIXED_BY_OBJECTIVE = {'edm': (), 'diti': ('model',), 'tiw': ('bias_split', 'discriminator')}

# sweep.objective -> the metrics it can optimize and their better direction.
METRICS = {
    'edm': {'fd_attrnet': 'minimize', 'attr_rate_mae': 'minimize'},
    'diti': {'probe_val_map': 'maximize'},      # validation mAP: tuning on the test split would leak it
    'tiw': {'fd_attrnet': 'minimize', 'subgroup_tv': 'minimize'},
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
                         f'{"models/edm" if objective == "diti" else "models/tiw/discriminator"}, was built with it)')
    return types[name]


def _check(key: str, value, typ) -> None:
    from ..config.load import _check_value     # the loader's own type + rule check, so both agree
    try:
        _check_value(key, value, typ, RULES.get(key))
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

"""Read params.yaml into a Config, strictly: a typo or an impossible value fails at start-up, naming the key.

Also the views of a Config that the rest of diffops needs: to_dict (yaml / JSON artifact), flatten
(MLflow params), section_hash (does a checkpoint belong to this config?) and apply_overrides (the
`dvc exp run -S key=value` form, for sweeps).
"""

import copy
import difflib
import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import fields, is_dataclass, replace
from pathlib import Path
from typing import Any

from .rules import ConfigError, _show, _yaml_str, check_value, one_of
from .schema import DEFAULT_METHOD_NAMES, RULES, SECTIONS, Config, check_config

# ----------------------------------------------------------------------------
# Reading yaml.

def read_params(path: str | os.PathLike) -> Any:
    """A params file's YAML values; ConfigError naming the file if it is not UTF-8 text or not YAML."""
    if not Path(path).is_file():
        raise ConfigError("", "no such params file; run diffops in the project folder or pass --params PATH",
                          os.fspath(path))
    data = Path(path).read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError("", f"not UTF-8 text (byte {e.start} is {data[e.start]:#04x}); "
                              f"save the file as UTF-8", os.fspath(path)) from None
    return parse_yaml(text, os.fspath(path))


def parse_yaml(text: str, source: str) -> Any:
    """YAML text -> Python values, read as DVC reads params.yaml; ConfigError naming `source` if invalid."""
    # DVC reads params.yaml with ruamel.yaml in YAML 1.2, and so do we, so that the two never disagree about
    # a value. PyYAML's safe_load (YAML 1.1) reads `precision: no`, which is what
    # `dvc exp run -S train.precision=no` writes, as False, `lr: 1e-4` as a string, and keeps the last of two
    # duplicate keys silently; ruamel reads 'no', 0.0001, and rejects the duplicate.
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError
    try:
        return YAML(typ='safe').load(text)
    except MarkedYAMLError as e:
        where = f'line {e.problem_mark.line + 1}: ' if e.problem_mark else ''
        raise ConfigError('', f'{where}invalid YAML: {e.problem}', source) from None

# ----------------------------------------------------------------------------
# Building a Config.

def _allowed(name: str, allowed: Iterable[str]) -> str:
    allowed = list(allowed)
    close = difflib.get_close_matches(str(name), allowed, n=1)
    return (f'did you mean {close[0]}? ' if close else '') + 'allowed: ' + ', '.join(sorted(allowed))

def _build(raw, methods: Iterable[str] | None) -> Config:
    if not isinstance(raw, Mapping):
        raise ConfigError('', f'must be a mapping of sections ({", ".join(SECTIONS)}), got {_show(raw)}')
    rules = {**RULES, 'method.name': one_of(*sorted(methods))} if methods is not None else RULES
    defaults = Config()     # a section's defaults are its Config field's (tiw_train is a TrainConfig of its own)
    sections = {}
    for section, values in raw.items():
        if section not in SECTIONS:
            raise ConfigError(str(section), f'unknown section ({_allowed(section, SECTIONS)})')
        types = {f.name: f.type for f in fields(SECTIONS[section])}
        if not isinstance(values, Mapping):
            raise ConfigError(section, f'must be a mapping of keys ({", ".join(types)}), got {_show(values)}')
        kwargs = {}
        for name, value in values.items():
            key = f'{section}.{name}'
            if name not in types:
                raise ConfigError(key, f'unknown key ({_allowed(name, types)})')
            kwargs[name] = check_value(key, value, types[name], rules.get(key))
        sections[section] = replace(getattr(defaults, section), **kwargs)  # missing keys take their defaults
    cfg = Config(**sections)
    check_config(cfg)
    return cfg

# ----------------------------------------------------------------------------
# Public API.

def load_params(params: str | os.PathLike | Mapping, *,
                methods: Iterable[str] | None = DEFAULT_METHOD_NAMES) -> Config:
    """Read and validate a params file (path) or an already parsed params dict.

    Missing sections and keys take their defaults. Anything else that is not in the schema, has the
    wrong type or an impossible value raises ConfigError naming the dotted key. `methods` is the set of
    allowed method.name values (the method registry's keys); None leaves method.name unchecked, for
    callers that never read it.
    """
    if isinstance(params, Mapping):
        source, raw = 'params', params
    else:
        source = os.fspath(params)
        raw = read_params(source)
    try:
        return _build(raw, methods)
    except ConfigError as e:
        raise ConfigError(e.key, e.problem, source) from None

def to_dict(cfg) -> dict:
    """Config (or one section) -> nested plain dict of yaml types, in params.yaml order."""
    out = {}
    for f in fields(cfg):
        value = getattr(cfg, f.name)
        if f.type is float:
            value = float(value)  # TrainConfig(duration_kimg=24) in code is 24.0 from a file; one spelling, one hash
        out[f.name] = to_dict(value) if is_dataclass(value) else list(value) if isinstance(value, tuple) else value
    return out

def flatten(cfg: Config) -> dict[str, bool | int | float | str]:
    """Dotted keys -> scalars, for MLflow params: {'train.lr': 0.002, 'model.block_channels': '[32, 64, 64]'};
    null is 'null', as params.yaml spells it."""
    return {f'{section}.{name}': _yaml_str(value) if isinstance(value, list) or value is None else value
            for section, values in to_dict(cfg).items() for name, value in values.items()}

def section_hash(cfg: Config, *sections: str) -> str:
    """First 16 hex digits of the sha256 of the named sections' resolved values (all sections if none named).

    Resolved values are typed (80 and 80.0 hash alike) and include defaults, so two params files that
    mean the same configuration hash alike; section order does not matter.
    """
    for section in sections:
        if section not in SECTIONS:
            raise ConfigError(section, f'unknown section ({_allowed(section, SECTIONS)})', source='section_hash')
    values = {section: to_dict(getattr(cfg, section)) for section in sections or SECTIONS}
    text = json.dumps(values, sort_keys=True, separators=(',', ':'))  # .inf becomes Infinity, deterministically
    return hashlib.sha256(text.encode()).hexdigest()[:16]

def apply_overrides(raw: Mapping | None, overrides: Iterable[str]) -> dict:
    """Apply `section.key=value` overrides to a raw params dict and return the new dict (the input is untouched).

    The form is that of `dvc exp run -S`; values are parsed as YAML, so `train.lr=1e-4` is a float and
    `model.block_channels=[32, 64]` a list. An unknown section or key raises ConfigError; values are
    checked when the result is passed to load_params.
    """
    out = copy.deepcopy(dict(raw or {}))
    for item in overrides:
        key, sep, text = item.partition('=')
        section, _, name = key.strip().partition('.')
        if not sep or not name:
            raise ConfigError('', f'{item!r}: expected section.key=value', source='overrides')
        if section not in SECTIONS:
            raise ConfigError(section, f'unknown section ({_allowed(section, SECTIONS)})', source='overrides')
        names = [f.name for f in fields(SECTIONS[section])]
        if name not in names:
            raise ConfigError(key.strip(), f'unknown key ({_allowed(name, names)})', source='overrides')
        values = out.setdefault(section, {})
        if not isinstance(values, dict):
            raise ConfigError(section, f'must be a mapping of keys, got {_show(values)}', source='overrides')
        values[name] = parse_yaml(text, source=f'overrides: {key.strip()}')
    return out

# ----------------------------------------------------------------------------

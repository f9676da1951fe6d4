"""What a key allows: ConfigError, the Rule helpers the area files build their RULES from, and check_value.

The type of a key comes from its annotation; a Rule narrows it further. For a list, the rule applies to
each element. `allowed` completes "must be ...": {a} is "an integer" or "a number", {t} is "integer" or
"number", so one rule reads right for both types. Types are strict: an int field takes only ints (not
bools, not 32.0), a float field takes ints and floats (stored as float), a bool field only true/false;
a `T | None` field takes null or a T.
"""

import difflib
import math
import types
from dataclasses import dataclass
from typing import Any, Callable, get_args, get_origin


class ConfigError(ValueError):
    """A params file that cannot be used. The message is one line: `<source>: <dotted.key>: <problem>`."""

    def __init__(self, key: str, problem: str, source: str = 'params'):
        self.key, self.problem, self.source = key, problem, source
        super().__init__(f'{source}: {key}: {problem}' if key else f'{source}: {problem}')


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

# ----------------------------------------------------------------------------

_NOUNS = {int: ('an integer', 'integer'), float: ('a number', 'number'), bool: ('true or false', 'boolean'),
          str: ('a string', 'string')}

def _show(value) -> str:
    return repr(value) if isinstance(value, str) else _yaml_str(value)

def _yaml_str(value) -> str:
    # Values as params.yaml spells them: true, .inf, [32, 64, 64].
    if isinstance(value, bool) or value is None:
        return {True: 'true', False: 'false', None: 'null'}[value]
    if isinstance(value, float) and math.isinf(value):
        return '.inf' if value > 0 else '-.inf'
    if isinstance(value, (list, tuple)):
        return '[' + ', '.join(_yaml_str(v) for v in value) + ']'
    return str(value)

def _check_type(value, typ: type, rule: Rule | None) -> bool:
    if typ is float:
        if type(value) not in (int, float) or math.isnan(value):
            return False
        return math.isfinite(value) or (rule is not None and rule.inf_ok and value == math.inf)
    return type(value) is typ

def check_value(key: str, value, typ, rule: Rule | None):
    """The value of `key` as its field stores it (float for float, tuple for a list); ConfigError if not allowed."""
    if get_origin(typ) is types.UnionType:  # `str | None`: null, or a value of the other type
        if value is None:
            return None
        (inner,) = [a for a in get_args(typ) if a is not type(None)]
        try:
            return check_value(key, value, inner, rule)
        except ConfigError as e:
            raise ConfigError(key, e.problem.replace('must be ', 'must be null or ', 1)) from None
    if get_origin(typ) is tuple:  # a yaml list; the rule applies to each element
        if not isinstance(value, list):
            raise ConfigError(key, f'must be a list, got {_show(value)}')
        return tuple(check_value(f'{key}[{i}]', v, get_args(typ)[0], rule) for i, v in enumerate(value))
    if _check_type(value, typ, rule):
        value = float(value) if typ is float else value
        if rule is None or rule.ok(value):
            return value
    a, t = _NOUNS[typ]
    allowed = rule.allowed.format(a=a, t=t) if rule else a
    hint = ''
    if rule and rule.choices and isinstance(value, str):
        close = difflib.get_close_matches(value, rule.choices, n=1)
        hint = f' (did you mean {close[0]}?)' if close else ''
    raise ConfigError(key, f'must be {allowed}, got {_show(value)}{hint}')

"""The search space and per-trial budget of a study, as params.yaml spells them.

The grammar (Param, parse_param, parse_override, format_override, check_sweep, ...) is part of the
sweep section of the schema and lives in diffops.config.sweep, so that validating params never imports
the sweep runner; it is re-exported here for the runner and its tests.
"""
from ..config.sweep import (
    FIXED_BY_OBJECTIVE,
    FIXED_SECTIONS,
    METRICS,
    Param,
    check_param,
    check_sweep,
    format_override,
    parse_override,
    parse_param,
    parse_space,
)

__all__ = [
    'FIXED_BY_OBJECTIVE', 'FIXED_SECTIONS', 'METRICS', 'Param', 'check_param', 'check_sweep', 'format_override',
    'parse_override', 'parse_param', 'parse_space',
]

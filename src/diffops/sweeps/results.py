"""What a study leaves behind: the best params in params.yaml form, and Optuna's plots.

best_params.yaml holds only the tuned keys, nested like params.yaml, so it can be pasted into a
pipeline's params file; the printed `dvc exp run -S ...` command runs the full-budget pipeline with them.
"""
from __future__ import annotations

import shlex
import warnings
from pathlib import Path

import optuna
from optuna.trial import TrialState

from ..config import to_dict
from .space import format_override


def best_params(study: optuna.Study, trial_cfg_of) -> tuple[dict, list[str]] | None:
    """({section: {key: value}}, ['key=value', ...]) of the best trial, typed as the schema types them.

    trial_cfg_of(params) -> Config of a trial (objective.trial_config); None if no trial completed.
    """
    if not any(t.state == TrialState.COMPLETE for t in study.get_trials(deepcopy=False)):
        return None
    params = study.best_trial.params
    cfg = to_dict(trial_cfg_of(params))
    nested: dict = {}
    for section, values in cfg.items():            # params.yaml order
        for name, value in values.items():
            if f"{section}.{name}" in params:
                nested.setdefault(section, {})[name] = value
    return nested, [format_override(f"{s}.{k}", v) for s, values in nested.items() for k, v in values.items()]


def write_best_params(path: Path, study: optuna.Study, nested: dict, overrides: list[str], metric: str,
                      budget) -> str:
    """Write best_params.yaml atomically; return the `dvc exp run` command that applies it."""
    import yaml
    best = study.best_trial
    command = "dvc exp run " + " ".join(f"-S {shlex.quote(o)}" for o in overrides)
    text = yaml.safe_dump(nested, sort_keys=False, default_flow_style=False)
    header = (f"# Best params of Optuna study {study.study_name!r}: trial {best.number}, {metric} = {best.value:.6g}\n"
              f"# (each trial ran with: {', '.join(budget) or 'no budget overrides'}).\n"
              f"# Paste into a params file, or run the pipeline with them:\n#   {command}\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(header + text)
    tmp.replace(path)
    return command


def save_plots(study: optuna.Study, out_dir: Path) -> list[Path]:
    """Optimization history, intermediate values, parallel coordinate and (with >= 2 completed trials and
    >= 2 params) param importances, as PNGs (matplotlib, no plotly needed)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as vis

    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    plots = {"optimization_history": vis.plot_optimization_history}
    if any(t.intermediate_values for t in trials):
        plots["intermediate_values"] = vis.plot_intermediate_values
    if complete:
        plots["parallel_coordinate"] = vis.plot_parallel_coordinate
    if len(complete) >= 2 and len({k for t in complete for k in t.params}) >= 2:
        plots["param_importances"] = vis.plot_param_importances
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")         # ExperimentalWarning of optuna.visualization.matplotlib
        for name, plot in plots.items():
            try:
                ax = plot(study)
            except (ValueError, RuntimeError) as e:     # e.g. importances of params that never varied
                warnings.warn(f"plot {name} skipped: {e}", stacklevel=2)
                continue
            if name == "intermediate_values":
                ax.set_xlabel("training images (the step of trial.report)")
            fig = (ax.flat[0] if hasattr(ax, "flat") else ax).figure
            fig.set_size_inches(9, 5)
            fig.tight_layout()
            fig.savefig(out_dir / f"{name}.png", dpi=100)
            plt.close(fig)
            written.append(out_dir / f"{name}.png")
    return written

"""`diffops sweep`: one worker process on one study. Start as many as the machine holds, on one storage.

A worker: validates the params (the study spec and the config of every corner of the search space) before
any compute; creates the study or joins it (load_if_exists); makes or finds the study's MLflow parent
run; fails and re-enqueues trials whose worker died; runs trials until the study has spent `n_trials`
(or this worker has run --n-trials); then writes the best params and the plots, logs them to the parent
run and sets its status: FINISHED when no other worker is still running a trial (RUNNING otherwise),
KILLED on SIGINT/SIGTERM, FAILED on a crash. A trial that raises or returns NaN is FAIL and the study
goes on (catch=(Exception,)).
"""
from __future__ import annotations

from pathlib import Path

import optuna
from optuna.trial import TrialState

from ..config import ConfigError, apply_overrides, flatten, load_params, read_params
from ..methods import METHODS
from ..tracking.mlflow_run import ensure_store, project_root, tracking_uri
from ..utils.redact import redact
from ..utils.signals import interrupts_raise
from ..tracking.optuna_mlflow import OptunaMlflow
from . import results
from . import storage as st
from .objective import Objective, intermediate_metric, trained_config, trial_config
from .space import Param, format_override, parse_space
from .study import OPTUNA_VERSION, PRUNER, SAMPLER, open_study


def read_raw(params_path: Path, study_file: Path | None = None) -> dict:
    """The params file's raw dict; a study file's sections update it key by key (its `sweep:` block is the
    study, e.g. studies/diti-k.yaml; other sections it names change the base config of every trial)."""
    raw = read_params(params_path) or {}
    if study_file is not None:
        overlay = read_params(study_file) or {}
        if not isinstance(overlay, dict) or not all(isinstance(v, dict) for v in overlay.values()):
            raise ConfigError("", "a study file holds params sections (mappings), e.g. `sweep: {study: ..., "
                                  "space: [...]}`", str(study_file))
        for section, values in overlay.items():
            raw[section] = {**(raw.get(section) or {}), **values}
    return raw


def check_trial_configs(raw: dict, sweep, space: list[Param], source: str):
    """Build the config of each corner of the space (all lows, all highs, each categorical choice) and
    return the budget-only config; a corner that load_params rejects is an error before any compute."""
    def corner(pick):
        return {p.key: pick(p) for p in space}
    corners = [corner(lambda p: p.values()[0]), corner(lambda p: p.values()[-1])]
    corners += [corner(lambda p, q=q, c=c: c if p is q else p.values()[0])
                for q in space if q.kind == "categorical" for c in q.choices[1:-1]]
    for params in corners:
        try:
            trial_config(raw, sweep.budget, params)
        except ConfigError as e:
            tried = ", ".join(format_override(k, v) for k, v in params.items())
            raise ConfigError(e.key, f"{e.problem} (in the trial with sweep.budget and {tried})", source) from None
    return load_params(apply_overrides(raw, sweep.budget), methods=METHODS)


def run_sweep(params_path: Path, data_dir: Path, featurenet_dir: Path, *, study_file: Path | None = None,
              inputs: dict | None = None, study_name: str | None = None, n_trials: int | None = None,
              storage: str | None = None, out_dir: Path | None = None, workdir: Path | None = None,
              echo=print) -> dict:
    """Run one worker on the study of params_path's `sweep` section (updated by study_file); return a summary.
    inputs: the objective's other inputs ({"edm": dir} for diti, {"discriminator": dir} for tiw)."""
    root = project_root()
    source = str(study_file or params_path)
    for path in (params_path, study_file):
        if path is not None and not Path(path).is_file():
            raise ConfigError("", "no such file", str(path))
    raw = read_raw(params_path, study_file)
    try:
        cfg = load_params(raw, methods=METHODS)
    except ConfigError as e:
        raise ConfigError(e.key, e.problem, source) from None
    sweep = cfg.sweep
    space = parse_space(sweep)
    base = trained_config(check_trial_configs(raw, sweep, space, source))
    name = study_name or sweep.study
    url = storage or sweep.storage
    out_dir = Path(out_dir) if out_dir else st.ignored_dir(root / "sweeps") / name

    ensure_store(tracking_uri(root))     # before the study is created or joined
    backend = st.make_storage(url, root, on_stale=lambda trial, reason: tracker.end_trial(trial, reason=reason))
    study, created, seed = open_study(name, backend, sweep, base)
    intermediate = intermediate_metric(sweep)
    tracker = OptunaMlflow(base.tracking.experiment, sweep.metric, intermediate_metric=intermediate, root=root)
    tracker.attach(study, created, params={k: v for k, v in flatten(cfg).items() if k.startswith("sweep.")},
                   tags={"optuna.version": optuna.__version__, "optuna.storage": redact(url),
                         "diffops.intermediate": f"{intermediate[:-len('_intermediate')]} of {sweep.intermediate_num_images} samples "
                                                 f"with {sweep.intermediate_steps} sampler steps at each checkpoint",
                         **{f"optuna.sampler.{k}": v for k, v in study.user_attrs[SAMPLER].items()},
                         **{f"optuna.pruner.{k}": v for k, v in study.user_attrs[PRUNER].items()}}
                   if created else None)
    echo(f"study {name!r} ({'created' if created else 'joined'}) in {redact(url)}, "
         f"Optuna {study.user_attrs.get(OPTUNA_VERSION, '?')}, sampler seed {seed}; "
         f"MLflow parent run {tracker.parent_run_id}")
    stale = st.fail_stale_trials(study, on_fail=tracker.end_trial)
    if stale:
        echo(f"trials {stale} were left RUNNING by a dead worker: failed and enqueued again")

    objective = Objective(raw, sweep, space, data_dir, featurenet_dir, tracker, seed=seed, workdir=workdir,
                          inputs=inputs)
    status = "FAILED"
    try:
        with interrupts_raise():        # SIGTERM ends the worker's runs truthfully, like Ctrl-C
            todo = sweep.n_trials - st.spent(study)
            todo = todo if n_trials is None else min(todo, n_trials)
            if todo > 0:
                study.optimize(objective, n_trials=todo, callbacks=[tracker, st.StopAtBudget(sweep.n_trials)],
                               catch=(Exception,), gc_after_trial=True)
        status = "FINISHED"
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    finally:
        summary = _finish(study, sweep, tracker, out_dir, raw, status, echo)
    return summary


def _finish(study, sweep, tracker: OptunaMlflow, out_dir: Path, raw: dict, status: str, echo) -> dict:
    trials = study.get_trials(deepcopy=False)
    counts = {s.name: sum(t.state == s for t in trials) for s in TrialState}
    summary = {"study": study.study_name, "counts": counts, "parent_run_id": tracker.parent_run_id}
    artifacts, metrics = {}, {}
    best = results.best_params(study, lambda params: trial_config(raw, sweep.budget, params)[1])
    if best is not None:
        nested, overrides = best
        path = out_dir / "best_params.yaml"
        command = results.write_best_params(path, study, nested, overrides, sweep.metric, sweep.budget)
        artifacts[""] = path
        metrics = {f"best_{sweep.metric}": study.best_value, "best_trial": study.best_trial.number}
        summary |= {"best_value": study.best_value, "best_trial": study.best_trial.number,
                    "best_params": nested, "best_params_file": path, "command": command}
    try:
        artifacts["plots"] = out_dir / "plots"
        summary["plots"] = results.save_plots(study, out_dir / "plots")
    except Exception as e:          # plots are a convenience; never lose the study's status over them
        echo(f"plots failed: {type(e).__name__}: {e}")
    # Trials still RUNNING now belong to other workers (this worker's last trial has ended): the study
    # goes on, and the last worker to finish sets the final status. Counted again here, just before writing.
    others_running = any(t.state == TrialState.RUNNING for t in study.get_trials(deepcopy=False))
    tracker.end_study(study, "RUNNING" if others_running else status, metrics=metrics, artifacts=artifacts)
    echo(f"study {study.study_name!r}: {counts['COMPLETE']} complete, {counts['PRUNED']} pruned, "
         f"{counts['FAIL']} failed, {counts['RUNNING']} running, {counts['WAITING']} waiting")
    if best is not None:
        echo(f"best {sweep.metric} = {study.best_value:.6g} (trial {study.best_trial.number}); "
             f"params in {summary['best_params_file']}\n  {summary['command']}")
    return summary

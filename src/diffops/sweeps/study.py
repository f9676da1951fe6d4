"""Create or join a study: sampler and pruner from `sweep.*`, and the settings that make it reproducible.

Optuna 5 changed TPESampler's defaults (multivariate and constant_liar on; 4.9 had both off), so the same
seed suggests different params after an upgrade. The sampler is therefore built with every setting that
matters spelt out, and the study records Optuna's version and the sampler's and pruner's class and
constructor settings in its user attrs (and the parent MLflow run in its tags).

Seeds: the worker that creates the study seeds its sampler with `sweep.sampler_seed`, so a one-worker
sweep is reproducible. A worker that joins an existing study (a second worker, or a resumed sweep) derives
its own seed from (sampler_seed, trials so far, host, pid): with one shared seed, parallel or resumed
workers would suggest the same random startup params again. Each trial records its worker's seed.
"""
from __future__ import annotations

import hashlib
import inspect
import json
import socket
import os
import warnings

import optuna

SPEC = "diffops.spec"                   # study user attrs
OPTUNA_VERSION = "diffops.optuna_version"
SAMPLER = "diffops.sampler"
PRUNER = "diffops.pruner"
# sweep.* keys that define what a study is; joining a study whose recorded values differ is refused.
# (n_trials may grow to extend a study; storage is where it lives.)
SPEC_KEYS = ("objective", "metric", "direction", "space", "budget", "sampler", "sampler_seed", "sampler_startup_trials",
             "pruner", "pruner_startup_trials", "pruner_warmup_kimg", "intermediate_num_images",
             "intermediate_steps")


class StudyMismatch(ValueError):
    pass


def make_sampler(sweep, seed: int) -> optuna.samplers.BaseSampler:
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    if sweep.sampler == "tpe":
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=sweep.sampler_startup_trials,
                                          multivariate=True, constant_liar=True)
    if sweep.sampler == "gp":
        return optuna.samplers.GPSampler(seed=seed, n_startup_trials=sweep.sampler_startup_trials)
    return optuna.samplers.RandomSampler(seed=seed)


def make_pruner(sweep, trial_cfg) -> optuna.pruners.BasePruner:
    """Steps are training images (nimg) at checkpoints, so warm-up and resources are in images too."""
    if sweep.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=sweep.pruner_startup_trials,
                                           n_warmup_steps=int(sweep.pruner_warmup_kimg * 1000))
    if sweep.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=int(trial_cfg.train.checkpoint_every_kimg * 1000),
                                              max_resource=int(trial_cfg.train.duration_kimg * 1000),
                                              reduction_factor=3)
    return optuna.pruners.NopPruner()


def settings(obj) -> dict:
    """Class and constructor settings of a sampler or pruner, read back from the object.

    For each constructor argument, the attribute `_<name>` if it holds a plain value (TPESampler keeps
    `_multivariate`, `_constant_liar`, `_n_startup_trials`, ...), else the signature's default.
    """
    out = {"class": f"{type(obj).__module__}.{type(obj).__qualname__}"}
    for name, p in inspect.signature(type(obj).__init__).parameters.items():
        if name == "self" or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        value = getattr(obj, f"_{name}", p.default)
        if value is inspect.Parameter.empty:
            continue
        if isinstance(value, (bool, int, float, str)) or value is None:
            out[name] = value
        elif callable(value):
            out[name] = getattr(value, "__qualname__", repr(value))
    params = getattr(obj, "_parzen_estimator_parameters", None)    # TPE keeps prior/clip/endpoint flags here
    if params is not None and hasattr(params, "_asdict"):
        out |= {k: v for k, v in params._asdict().items() if isinstance(v, (bool, int, float, str))}
    if hasattr(obj, "_rng") and "seed" in out:      # samplers keep the seed only inside their RNG
        out.pop("seed")
    return out


def spec_of(sweep) -> dict:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in
            ((k, getattr(sweep, k)) for k in SPEC_KEYS)}


def joining_seed(sweep, n_trials: int) -> int:
    key = f"{sweep.sampler_seed}:{n_trials}:{socket.gethostname()}:{os.getpid()}".encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:4], "little")


def open_study(name: str, storage, sweep, trial_cfg, *, wait_s: float = 120.0):
    """Create the study (this worker becomes its creator) or join it; return (study, created, seed).

    Equivalent to create_study(load_if_exists=True), except that exactly one of several workers starting
    at once learns it created the study (the storage rejects the others' duplicate), which decides who
    records the settings and makes the MLflow parent run. Joining checks the recorded spec.
    """
    pruner = make_pruner(sweep, trial_cfg)
    try:
        sampler = make_sampler(sweep, sweep.sampler_seed)
        study = optuna.create_study(storage=storage, study_name=name, direction=sweep.direction,
                                    sampler=sampler, pruner=pruner, load_if_exists=False)
    except optuna.exceptions.DuplicatedStudyError:
        study = optuna.load_study(study_name=name, storage=storage, pruner=pruner,
                                  sampler=optuna.samplers.RandomSampler())    # replaced below
        seed = joining_seed(sweep, len(study.get_trials(deepcopy=False)))
        study.sampler = make_sampler(sweep, seed)
        _check_joined(study, sweep, wait_s)
        return study, False, seed
    study.set_user_attr(SPEC, spec_of(sweep))
    study.set_user_attr(OPTUNA_VERSION, optuna.__version__)
    study.set_user_attr(SAMPLER, settings(study.sampler) | {"seed": sweep.sampler_seed})
    study.set_user_attr(PRUNER, settings(pruner))
    return study, True, sweep.sampler_seed


def _check_joined(study: optuna.Study, sweep, wait_s: float) -> None:
    import time
    deadline = time.monotonic() + wait_s
    while (recorded := study.user_attrs.get(SPEC)) is None and time.monotonic() < deadline:
        time.sleep(0.5)     # the creating worker records the spec right after creating the study
    if recorded is None:
        return              # created by something else than diffops (or its creator died): nothing to check
    if study.direction.name.lower() != sweep.direction:
        raise StudyMismatch(f"study {study.study_name!r} is to {study.direction.name.lower()}, "
                            f"but sweep.direction is {sweep.direction}")
    mine = spec_of(sweep)
    differ = [k for k in SPEC_KEYS if json.dumps(recorded.get(k)) != json.dumps(mine[k])]
    if differ:
        detail = "; ".join(f"sweep.{k}: study has {recorded.get(k)!r}, params have {mine[k]!r}" for k in differ)
        raise StudyMismatch(f"study {study.study_name!r} in this storage was created with other settings "
                            f"({detail}); restore them or give the sweep another name (--study NAME)")
    version = study.user_attrs.get(OPTUNA_VERSION)
    if version and version != optuna.__version__:
        warnings.warn(f"study {study.study_name!r} was created with Optuna {version}, this worker runs "
                      f"{optuna.__version__}: sampler defaults may differ between the workers", stacklevel=2)

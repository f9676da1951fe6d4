"""Optuna sweeps: a study declared in params.yaml (`sweep:` section), each trial a short real
train -> sample -> evaluate, pruned on a cheap intermediate fd_attrnet, one nested MLflow run per trial.

    space.py      the `sweep.space` / `sweep.budget` syntax (its grammar and checks live in config/sweep.py)
    study.py      sampler and pruner from params, create-or-join a study, its recorded settings
    storage.py    JournalStorage file / RDB URL, worker identity, stale trials (failed and retried), the trial cap
    objective.py  the table of objectives; one trial: overrides -> the objective's stages (diffops.stages)
    results.py    best params in params.yaml form, Optuna plots
    worker.py     `diffops sweep`: one worker process on one study

Sweeps sit above stages/: a trial calls the same stage code `dvc repro` runs.
"""

"""Optuna sweeps: a study declared in params.yaml (`sweep:` section), each trial a short real
train -> sample -> evaluate, pruned on a cheap intermediate fd_attrnet, one nested MLflow run per trial.

    space.py      the `sweep.space` / `sweep.budget` syntax: parsing, validation against the schema, suggest
    study.py      sampler and pruner from params, create-or-join a study, its recorded settings
    storage.py    JournalStorage file / RDB URL, worker identity, stale trials (failed and retried), the trial cap
    objective.py  one trial: overrides -> train (reports at checkpoints) -> sample -> evaluate
    results.py    best params in params.yaml form, Optuna plots
    worker.py     `diffops sweep`: one worker process on one study

Nothing here is imported by `diffops.config` except space.py (from check_config), which stays light.
"""

"""A real (tiny) study in one process: each trial trains, samples and evaluates; pruning, MLflow runs,
best params in params.yaml form and plots; a second start of the worker resumes the stored study."""
import mlflow
import optuna
import yaml

from diffops.config import apply_overrides, load_params
from diffops.sweeps import storage as st
from diffops.sweeps.objective import NIMG_SAMPLED, NIMG_TRAINED
from diffops.sweeps.study import OPTUNA_VERSION, SAMPLER, SPEC
from diffops.sweeps.worker import run_sweep


def test_tiny_study_end_to_end(sweep_env, monkeypatch):
    # Make the median pruner prune trial 1 (only) at its first report, whatever the values.
    monkeypatch.setattr(optuna.pruners.MedianPruner, "prune", lambda self, study, trial: trial.number == 1)
    params = sweep_env.write_params()
    lines = []
    summary = run_sweep(params, sweep_env.data, sweep_env.featurenet, out_dir=sweep_env.out, echo=lines.append)

    storage = st.make_storage(str(sweep_env.storage))
    study = optuna.load_study(study_name="tiny", storage=storage)
    states = [t.state.name for t in study.trials]
    assert states == ["COMPLETE", "PRUNED", "COMPLETE"], states
    assert study.user_attrs[OPTUNA_VERSION] == optuna.__version__
    sampler = study.user_attrs[SAMPLER]
    assert sampler["class"].endswith("TPESampler") and sampler["seed"] == 0
    assert sampler["multivariate"] is True and sampler["constant_liar"] is True and sampler["n_startup_trials"] == 2
    assert study.user_attrs[SPEC]["space"] == ["train.lr=float(1e-4, 1e-2, log)", "edm.P_mean=float(-2.0, 0.0)"]

    # Compute accounting: a complete trial trains its whole budget (40 images), the pruned one stops at
    # its first checkpoint (20); samples = 16 per checkpoint report + 24 for the final evaluation.
    full, pruned = study.trials[0].user_attrs, study.trials[1].user_attrs
    assert (full[NIMG_TRAINED], full[NIMG_SAMPLED]) == (40, 2 * 16 + 24)
    assert (pruned[NIMG_TRAINED], pruned[NIMG_SAMPLED]) == (20, 16)

    # MLflow: one parent run, one nested run per trial, with params, intermediate values and status.
    client = mlflow.MlflowClient()
    exp = client.get_experiment_by_name("sweep-test").experiment_id
    parent = client.get_run(summary["parent_run_id"])
    assert parent.info.status == "FINISHED" and parent.data.tags["diffops.stage"] == "sweep"
    assert parent.data.tags["optuna.sampler.constant_liar"] == "True"
    assert parent.data.metrics["best_fd_attrnet"] == study.best_value
    assert {a.path for a in client.list_artifacts(parent.info.run_id)} >= {"best_params.yaml", "plots"}
    plots = {a.path.split("/")[-1] for a in client.list_artifacts(parent.info.run_id, "plots")}
    assert plots == {"optimization_history.png", "intermediate_values.png", "parallel_coordinate.png",
                     "param_importances.png"}
    trials = client.search_runs([exp], "tags.`diffops.stage` = 'sweep-trial'")
    by_number = {int(r.data.tags["optuna.trial_number"]): r for r in trials}
    assert sorted(by_number) == [0, 1, 2]
    for number, run in by_number.items():
        t = study.trials[number]
        assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert float(run.data.params["train.lr"]) == t.params["train.lr"]
        assert run.data.params["train.duration_kimg"] == "0.04"         # the budget, logged by the trainer
        steps = [m.step for m in client.get_metric_history(run.info.run_id, "fd_attrnet_intermediate")]
        assert steps == sorted(t.intermediate_values) == ([20] if number == 1 else [20, 40])
    assert by_number[1].info.status == "KILLED" and by_number[1].data.tags["optuna.trial_state"] == "PRUNED"
    for number in (0, 2):
        run = by_number[number]
        assert run.info.status == "FINISHED" and run.data.tags["optuna.trial_state"] == "COMPLETE"
        assert run.data.metrics["fd_attrnet"] == study.trials[number].value      # the full evaluation

    # Best params: only the tuned keys, in params.yaml form, and the command that applies them.
    best = yaml.safe_load((sweep_env.out / "best_params.yaml").read_text())
    assert best == {"train": {"lr": study.best_params["train.lr"]}, "edm": {"P_mean": study.best_params["edm.P_mean"]}}
    overrides = summary["command"].removeprefix("dvc exp run -S ").split(" -S ")
    cfg = load_params(apply_overrides({}, overrides))
    assert (cfg.train.lr, cfg.edm.P_mean) == (study.best_params["train.lr"], study.best_params["edm.P_mean"])
    assert any(summary["command"] in line for line in lines)

    # Starting the worker again resumes the stored study: the budget is spent, nothing new runs.
    again = run_sweep(params, sweep_env.data, sweep_env.featurenet, out_dir=sweep_env.out, echo=lines.append)
    assert again["parent_run_id"] == summary["parent_run_id"] and len(study.trials) == 3
    assert "joined" in lines[-3] or any("joined" in line for line in lines)
    assert client.get_run(summary["parent_run_id"]).info.status == "FINISHED"

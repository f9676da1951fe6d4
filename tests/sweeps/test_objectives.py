"""The diti and tiw objectives: the example studies validate against params.yaml, the metric must suit the
objective, and a tiny study of each runs its real stage chain (train -> probe, train -> sample -> bias score)."""
import copy
from pathlib import Path

import mlflow
import optuna
import pytest
import yaml

from diffops.config import ConfigError, load_params
from diffops.methods import METHODS
from diffops.sweeps import storage as st
from diffops.sweeps.objective import trained_config
from diffops.sweeps.space import METRICS, parse_space
from diffops.sweeps.worker import check_trial_configs, read_raw, run_sweep

from ..conftest import write_prepared
from tests.helpers.diti import write_edm_model
from tests.helpers.tiw import tiw_config, write_discriminator, write_featurenet, write_group_container
from .conftest import tiny_params

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name, objective", [("diti-k", "diti"), ("tiw-weighting", "tiw"), ("erd-weighting", "edm")])
def test_example_studies_validate_against_the_params(name, objective):
    study_file = REPO / "studies" / f"{name}.yaml"
    raw = read_raw(REPO / "params.yaml", study_file)
    cfg = load_params(raw, methods=METHODS)
    assert cfg.sweep.objective == objective and cfg.sweep.metric in METRICS[objective]
    assert cfg.sweep.study == name
    base = trained_config(check_trial_configs(raw, cfg.sweep, parse_space(cfg.sweep), str(study_file)))
    assert base.train.checkpoint_every_kimg < base.train.duration_kimg       # something to prune on


@pytest.mark.parametrize("sweep, key, words", [
    ({"objective": "diti", "metric": "fd_attrnet"}, "sweep.metric", "probe_val_map"),
    ({"objective": "diti", "metric": "probe_val_map", "direction": "minimize"}, "sweep.direction", "maximize"),
    ({"objective": "diti", "metric": "probe_val_map", "direction": "maximize",
      "space": ["model.dropout=float(0.0, 0.1)"]}, "sweep.space[0]", "models/edm"),
    ({"objective": "tiw", "space": ["discriminator.lr=float(1e-4, 1e-3)"]}, "sweep.space[0]", "discriminator"),
    ({"objective": "tiw", "metric": "attr_rate_mae"}, "sweep.metric", "subgroup_tv"),
])
def test_objective_metric_direction_and_fixed_inputs_are_checked(sweep, key, words):
    with pytest.raises(ConfigError) as e:
        load_params({"sweep": {"space": ["tiw.alpha=float(0.5, 1.5)"], **sweep}}, methods=METHODS)
    assert e.value.key == key and words in str(e.value)


def test_study_file_updates_the_params_and_is_named_in_errors(tmp_path, sweep_env):
    params = sweep_env.write_params()
    study = tmp_path / "study.yaml"
    study.write_text("sweep:\n  study: other\n  n_trials: 1\n")
    raw = read_raw(params, study)
    assert raw["sweep"]["study"] == "other" and raw["sweep"]["space"] == tiny_params(sweep_env.storage)["sweep"]["space"]
    study.write_text("sweep:\n  metric: probe_val_map\n")
    with pytest.raises(ConfigError) as e:
        run_sweep(params, sweep_env.data, sweep_env.featurenet, study_file=study, out_dir=tmp_path / "out")
    assert str(study) in str(e.value) and e.value.key == "sweep.metric"


def _states(storage, name):
    study = optuna.load_study(study_name=name, storage=st.make_storage(str(storage)))
    return study, [t.state.name for t in study.trials]


def test_tiny_diti_study_trains_and_probes(sweep_env, tmp_path):
    raw = tiny_params(sweep_env.storage, study="diti", objective="diti", metric="probe_val_map", direction="maximize",
                      space=["diti.k=categorical(1, 2, 4)"], n_trials=2, sampler="random", pruner="none",
                      budget=["diti.duration_kimg=0.016", "diti.checkpoint_every_kimg=0.008",
                              "tracking.log_checkpoints=none"])
    raw["diti"] = {"latent_dim": 8, "k": 4, "encoder_width": 8, "batch_size": 4, "ema_halflife_kimg": 0.004,
                   "probe_max_iter": 20}
    raw["model"]["attention"] = [False, True]
    data = write_prepared(tmp_path / "prepared", counts=(16, 8, 8))
    edm = write_edm_model(tmp_path / "edm", load_params(raw, methods=METHODS))
    params = tmp_path / "diti.yaml"
    params.write_text(yaml.safe_dump(raw, sort_keys=False))
    summary = run_sweep(params, data, sweep_env.featurenet, inputs={"edm": edm}, out_dir=tmp_path / "out",
                        echo=lambda *_: None)
    study, states = _states(sweep_env.storage, "diti")
    assert states == ["COMPLETE", "COMPLETE"]
    client = mlflow.MlflowClient()
    for t in study.trials:
        run = client.get_run(t.user_attrs["mlflow.run_id"])
        assert run.data.metrics["probe_val_map"] == t.value and 0 < t.value <= 1
        assert "probe_map" in run.data.metrics                          # test mAP logged, not tuned on
        assert sorted(t.intermediate_values) == [8, 16]                 # the probe at each checkpoint
        assert run.data.params["diti.k"] == str(t.params["diti.k"])
    assert summary["best_params"] == {"diti": {"k": study.best_params["diti.k"]}}


def test_tiny_tiw_study_trains_samples_and_scores_bias(sweep_env, tmp_path):
    raw = copy.deepcopy(tiny_params(sweep_env.storage, study="tiw", objective="tiw", metric="subgroup_tv",
                                    space=["tiw.alpha=float(0.5, 1.5)", "tiw.discriminator_step=categorical(2, 4)"],
                                    n_trials=2, sampler="random", pruner="none",
                                    budget=["tiw_train.duration_kimg=0.04", "tiw_train.checkpoint_every_kimg=0.02",
                                            "tiw.sample_num_images=8", "tracking.log_checkpoints=none"]))
    base = tiw_config()
    raw |= {"featurenet": {"attributes": list(base.featurenet.attributes), "width": 8, "feature_dim": 16},
            "bias_split": {"attributes": list(base.bias_split.attributes), "downsample": 1},
            "tiw": {"discriminator_step": 2}, "tiw_train": dict(raw["train"]),
            "discriminator": {"steps": 4, "checkpoint_every_steps": 2, "batch_size": 4, "hidden": 8, "time_dim": 8}}
    data = write_group_container(tmp_path / "obs", n_ref=8, n_bias=8)
    disc = write_discriminator(tmp_path / "disc")
    featurenet = write_featurenet(tmp_path / "featurenet")
    params = tmp_path / "tiw.yaml"
    params.write_text(yaml.safe_dump(raw, sort_keys=False))
    run_sweep(params, data, featurenet, inputs={"discriminator": disc}, out_dir=tmp_path / "out", echo=lambda *_: None)
    study, states = _states(sweep_env.storage, "tiw")
    assert states == ["COMPLETE", "COMPLETE"]
    client = mlflow.MlflowClient()
    for t in study.trials:
        run = client.get_run(t.user_attrs["mlflow.run_id"])
        assert run.data.metrics["subgroup_tv"] == t.value and 0 <= t.value <= 1
        assert "fd_attrnet" in run.data.metrics and sorted(t.intermediate_values) == [20, 40]
        assert run.data.params["method.name"] == "tiw_dsm"
        assert run.data.tags["diffops.method_input.discriminator"] == str(disc)


def test_a_missing_input_fails_the_trial_with_what_to_run(sweep_env, tmp_path):
    raw = tiny_params(sweep_env.storage, study="noedm", objective="diti", metric="probe_val_map",
                      direction="maximize", space=["diti.k=categorical(1, 2)"], n_trials=1, pruner="none",
                      budget=["diti.duration_kimg=0.008"])
    params = tmp_path / "p.yaml"
    params.write_text(yaml.safe_dump(raw, sort_keys=False))
    run_sweep(params, sweep_env.data, sweep_env.featurenet, inputs={"edm": tmp_path / "missing"},
              out_dir=tmp_path / "out", echo=lambda *_: None)
    study, states = _states(sweep_env.storage, "noedm")
    assert states == ["FAIL"]
    assert "dvc repro train" in study.trials[0].user_attrs[st.FAIL_REASON]

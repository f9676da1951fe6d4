"""The asyrp objective: its example study validates against the params, its metrics suit it, and a tiny study
runs its real stage chain (asyrp_invert -> asyrp_train -> asyrp_edit) into the trials' MLflow runs."""
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
from .conftest import tiny_params

REPO = Path(__file__).resolve().parents[2]


def test_asyrp_study_validates_against_the_params():
    study_file = REPO / "studies" / "asyrp-edit.yaml"
    raw = read_raw(REPO / "params.yaml", study_file)
    cfg = load_params(raw, methods=METHODS)
    assert cfg.sweep.objective == "asyrp" and cfg.sweep.metric in METRICS["asyrp"] and cfg.sweep.study == "asyrp-edit"
    check_trial_configs(raw, cfg.sweep, parse_space(cfg.sweep), str(study_file))


@pytest.mark.parametrize("sweep, key, words", [
    ({"objective": "asyrp", "metric": "fd_attrnet", "direction": "maximize"}, "sweep.direction", "minimize"),
    ({"objective": "asyrp", "metric": "probe_val_map"}, "sweep.metric", "change_rate_minus_random"),
    ({"objective": "asyrp", "metric": "change_rate", "direction": "maximize",
      "space": ["model.dropout=float(0.0, 0.1)"]}, "sweep.space[0]", "models/edm"),
])
def test_asyrp_metric_direction_and_fixed_model_are_checked(sweep, key, words):
    with pytest.raises(ConfigError) as e:
        load_params({"sweep": {"space": ["asyrp.scale=float(0.5, 1.5)"], **sweep}}, methods=METHODS)
    assert e.value.key == key and words in str(e.value)


def test_tiny_asyrp_study_inverts_trains_and_edits(sweep_env, tmp_path):
    raw = tiny_params(sweep_env.storage, study="asyrp", objective="asyrp", metric="change_rate_minus_random",
                      direction="maximize", space=["asyrp.scale=float(0.5, 2.0)", "asyrp.t_edit=int(300, 700)"],
                      n_trials=2, sampler="random", pruner="none", budget=["asyrp.test_images=2"])
    raw["model"]["attention"] = [False, True]
    raw["asyrp"] = {"train_images": 2, "test_images": 4, "inversion_steps": 3, "train_steps": 3, "edit_steps": 3,
                    "epochs": 1, "batch_size": 2, "t_boost": 0, "grid_images": 2}
    cfg = load_params(raw, methods=METHODS)
    data = write_prepared(tmp_path / "prepared", counts=(8, 4, 12))
    edm = write_edm_model(tmp_path / "edm", cfg)
    params = tmp_path / "asyrp.yaml"
    params.write_text(yaml.safe_dump(raw, sort_keys=False))
    run_sweep(params, data, sweep_env.featurenet, inputs={"edm": edm}, out_dir=tmp_path / "out", echo=lambda *_: None)
    study = optuna.load_study(study_name="asyrp", storage=st.make_storage(str(sweep_env.storage)))
    assert [t.state.name for t in study.trials] == ["COMPLETE", "COMPLETE"]
    for t in study.trials:
        run = mlflow.MlflowClient().get_run(t.user_attrs["mlflow.run_id"])
        assert run.data.metrics["asyrp.change_rate_minus_random"] == t.value
        assert run.data.params["asyrp.t_edit"] == str(t.params["asyrp.t_edit"])
        assert run.data.params["asyrp.t_edit_used"] == str(t.params["asyrp.t_edit"])
    assert trained_config(cfg).train == cfg.train                # trains no denoiser

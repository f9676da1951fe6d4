"""sweep.space / sweep.budget are validated like every param: errors name the key, before any compute."""
import math

import optuna
import pytest

from diffops.config import Config, ConfigError, apply_overrides, load_params
from diffops.sweeps.space import Param, format_override, parse_param, parse_space
from diffops.sweeps.worker import check_trial_configs


def sweep_params(**sweep):
    return {"sweep": sweep}


def test_default_study_is_the_edm_baseline():
    space = {p.key: p for p in parse_space(Config().sweep)}
    assert list(space) == ["train.lr", "train.ema_halflife_kimg", "edm.P_mean", "edm.P_std"]
    assert space["train.lr"] == Param("train.lr", "float", 2e-4, 2e-2, log=True)
    assert space["edm.P_mean"] == Param("edm.P_mean", "float", -2.0, 0.0)


def test_syntax():
    assert parse_param("train.batch_size=int(16, 128, log)") == Param("train.batch_size", "int", 16, 128, True)
    assert parse_param(" train.xflip = categorical(true, false)") == Param("train.xflip", "categorical",
                                                                          choices=(True, False))
    assert parse_param("train.precision=categorical(no, bf16)").choices == ("no", "bf16")   # YAML 1.2: no is a string


@pytest.mark.parametrize("item, key, fragment", [
    ("train.lrr=float(1e-4, 1e-2)", "sweep.space[0]", "train.lrr: unknown key (did you mean train.lr?)"),
    ("trian.lr=float(1e-4, 1e-2)", "sweep.space[0]", "trian.lr: unknown section"),
    ("train.lr=float(1e-2, 1e-4)", "sweep.space[0]", "low must be < high"),
    ("train.lr=float(0, 1e-2)", "sweep.space[0]", "train.lr: must be a positive number, got 0"),
    ("edm.P_mean=float(-1, 1, log)", "sweep.space[0]", "a log range needs low > 0"),
    ("train.lr=float(1e-4, 1e-2, linear)", "sweep.space[0]", "takes (low, high) or (low, high, log)"),
    ("train.lr=uniform(1e-4, 1e-2)", "sweep.space[0]", "expected section.key=float(low, high[, log])"),
    ("train.batch_size=float(16, 128)", "sweep.space[0]", "is an integer; use int(low, high)"),
    ("train.batch_size=int(0, 128)", "sweep.space[0]", "train.batch_size: must be an integer >= 1, got 0"),
    ("train.precision=categorical(no, fp32)", "sweep.space[0]", "must be one of no, fp16, bf16, got 'fp32'"),
    ("model.block_channels=categorical(8, 16)", "sweep.space[0]", "is a list; set it in sweep.budget"),
    ("data.resolution=int(8, 16)", "sweep.space[0]", "a trial cannot change data.*"),
    ("sweep.n_trials=int(1, 5)", "sweep.space[0]", "a trial cannot change sweep.*"),
])
def test_space_errors_name_the_entry(item, key, fragment):
    with pytest.raises(ConfigError) as info:
        load_params(sweep_params(space=[item]))
    assert str(info.value).startswith(f"params: {key}: "), info.value
    assert fragment in str(info.value), info.value


@pytest.mark.parametrize("budget, key, fragment", [
    (["train.duration_kimg=0"], "sweep.budget[0]", "train.duration_kimg: must be a positive number, got 0"),
    (["train.duration_kimgs=1"], "sweep.budget[0]", "unknown key (did you mean train.duration_kimg?)"),
    (["train.lr=1e-3"], "sweep.budget[0]", "train.lr is also set by sweep.space[0]"),
    (["sample.num_images=64", "oops"], "sweep.budget[1]", "expected section.key=value"),
    (["model.block_channels=[8, x]"], "sweep.budget[0]", "model.block_channels[1]: must be a positive integer"),
])
def test_budget_errors_name_the_entry(budget, key, fragment):
    with pytest.raises(ConfigError) as info:
        load_params(sweep_params(space=["train.lr=float(1e-4, 1e-2, log)"], budget=budget))
    assert str(info.value).startswith(f"params: {key}: "), info.value
    assert fragment in str(info.value), info.value


def test_scalar_rules_and_duplicates():
    with pytest.raises(ConfigError, match=r"^params: sweep.sampler: must be one of gp, random, tpe|one of tpe, random, gp"):
        load_params(sweep_params(sampler="cmaes"))
    with pytest.raises(ConfigError, match=r"sweep.space\[1\]: train.lr is searched twice"):
        load_params(sweep_params(space=["train.lr=float(1e-4, 1e-2)", "train.lr=float(1e-3, 1e-2)"]))
    with pytest.raises(ConfigError, match=r"^params: sweep.space: must list at least one"):
        load_params(sweep_params(space=[]))


def test_cross_key_rules_are_checked_at_the_corners_of_the_space():
    # Each value is allowed on its own, but groups of 16 do not divide the 8-channel levels.
    raw = {"model": {"block_channels": [8, 8], "attention": [False, False], "norm_num_groups": 4},
           "sweep": {"space": ["model.norm_num_groups=int(2, 16)"]}}
    cfg = load_params(raw)
    with pytest.raises(ConfigError, match=r"^p.yaml: model.block_channels\[0\]: must be a multiple of "
                                          r"model.norm_num_groups \(16\).*model.norm_num_groups=16"):
        check_trial_configs(raw, cfg.sweep, parse_space(cfg.sweep), "p.yaml")


@pytest.mark.parametrize("key, value", [
    ("train.lr", 0.0012345678901234), ("train.lr", 1e-05), ("train.duration_kimg", 6),
    ("train.xflip", False), ("train.precision", "no"), ("method.name", "edm"), ("edm.P_mean", -1.25)])
def test_trial_params_round_trip_through_dvc_style_overrides(key, value):
    section, name = key.split(".")
    cfg = load_params(apply_overrides({}, [format_override(key, value)]))
    assert getattr(getattr(cfg, section), name) == value


def test_suggest_uses_the_declared_distribution():
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    space = [parse_param("train.lr=float(1e-4, 1e-2, log)"), parse_param("train.batch_size=int(4, 8)"),
             parse_param("train.precision=categorical(no, bf16)")]
    trial = study.ask()
    values = {p.key: p.suggest(trial) for p in space}
    assert 1e-4 <= values["train.lr"] <= 1e-2 and values["train.batch_size"] in range(4, 9)
    dists = study.trials[0].distributions
    assert dists["train.lr"].log and dists["train.batch_size"].step == 1
    assert dists["train.precision"].choices == ("no", "bf16")
    assert not math.isnan(values["train.lr"])

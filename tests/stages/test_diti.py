"""The DiTi stages end to end on tiny data: train (diti, pdae) -> probe -> counterfactual -> manipulation."""
import json

import mlflow
import pytest
import torch

from diffops.config import ConfigError
from diffops.artifacts.representation import Representation
from diffops.methods import METHODS
from diffops.stages.diti_counterfactual import run as run_counterfactual
from diffops.stages.diti_manipulation import run as run_manipulation
from diffops.stages.diti_probe import run as run_probe
from diffops.stages.train_representation import run as train_representation


def training_config(cfg, method):
    return METHODS[method].training_config(cfg)

from ..conftest import write_prepared
from tests.helpers.diti import diti_config, write_edm_model, write_featurenet


@pytest.fixture
def setup(tmp_path, mlflow_uri, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = diti_config()
    data = write_prepared(tmp_path / "data", resolution=8, counts=(16, 8, 8))
    edm = write_edm_model(tmp_path / "edm", cfg)
    return cfg, data, edm, tmp_path


def test_train_probe_counterfactual_manipulation(setup):
    cfg, data, edm, tmp = setup
    specs = {m: train_representation(cfg, m, data, edm, tmp / "models" / m, tmp / "ckpt" / m) for m in ("diti", "pdae")}
    assert specs["diti"]["chunk_ends"] == [2, 4, 6, 8] and specs["pdae"]["chunk_ends"] == [8]
    assert specs["pdae"]["params"]["diti"]["k"] == 1
    rep = Representation(tmp / "models" / "diti")
    assert rep.encode(torch.zeros(3, 3, 8, 8, dtype=torch.uint8)).shape == (3, 8)
    run = mlflow.get_run(specs["diti"]["mlflow_run_id"])
    assert run.data.params["method.name"] == "diti" and run.data.params["diti.lr_effective"] == str(cfg.diti.lr)
    assert run.data.params["train.lr"] == str(cfg.diti.lr) and run.info.status == "FINISHED"

    seed1 = diti_config(**{"diti.seed": 1})
    train_representation(seed1, "diti", data, edm, tmp / "models" / "diti-seed1", tmp / "ckpt" / "diti-seed1")
    report = run_probe(cfg, data, [tmp / "models" / "diti", tmp / "models" / "pdae", tmp / "models" / "diti-seed1"],
                       tmp / "metrics" / "probe.json", progress=False, plots=tmp / "plots" / "probe.json",
                       full_pixels=True)
    reps = report["representations"]
    assert set(reps) == {"diti", "pdae", "random", "pca_pixels", "pixels"}
    assert reps["diti"]["n_seeds"] == 2 and reps["pdae"]["n_seeds"] == 1 and reps["random"]["n_seeds"] == 1
    assert reps["diti"]["probe_map_drawn_sd"] > 0 and reps["pdae"]["probe_map_drawn_sd"] == 0
    assert reps["pixels"]["whitened_dim"] <= 3 * 8 * 8 and reps["pca_pixels"]["whitened_dim"] == cfg.diti.latent_dim
    e = report["effects"]["diti_minus_random"]
    assert e["difference"] == pytest.approx(reps["diti"]["probe_map_drawn"] - reps["random"]["probe_map_drawn"])
    # chunk-wise probe: cf groups [0, 500) and [500, 1000) of k = 4 chunks of 2 dims, on DiTi and on PDAE's same dims
    assert set(report["chunks"]) == {"diti", "pdae"} and set(report["chunks"]["diti"]) == {"t0-500", "t500-1000"}
    assert report["chunks"]["diti"]["t0-500"]["feature_dim"] == 4 and report["chunks"]["diti"]["t0-500"]["n_seeds"] == 2
    assert json.loads((tmp / "metrics" / "probe.json").read_text()) == json.loads(json.dumps(report))
    assert len(json.loads((tmp / "plots" / "probe.json").read_text())) == 40
    metrics = mlflow.get_run(specs["diti"]["mlflow_run_id"]).data.metrics
    assert {"probe_map", "probe_map_drawn", "probe_map.pdae", "probe_map.random", "probe_map_sd.diti",
            "probe_map.pixels"} <= set(metrics)
    assert "probe_map" in mlflow.get_run(specs["pdae"]["mlflow_run_id"]).data.metrics

    layout = run_counterfactual(cfg, data, tmp / "models" / "diti", tmp / "cf", progress=False)
    assert (tmp / "cf" / "grid.png").exists() and len(layout["rows"]) == 2 * 2 and len(layout["columns"]) == 3
    featurenet = write_featurenet(tmp / "featurenet", cfg.featurenet.attributes)
    m = run_manipulation(cfg, data, tmp / "models" / "diti", featurenet, tmp / "manip", tmp / "metrics" / "manip.json",
                         progress=False)
    assert 0 <= m["manip_change_rate"] <= 1 and len(m["manip_mask_dims"]) == cfg.diti.manip_dims
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(specs["diti"]["mlflow_run_id"])}
    assert {"representation", "probe", "counterfactual", "manipulation"} <= artifacts


def test_a_changed_k_or_edm_model_never_resumes_old_checkpoints(setup, capsys):
    cfg, data, edm, tmp = setup
    kw = dict(stop_after_steps=1)
    train_representation(cfg, "diti", data, edm, tmp / "m", tmp / "ckpt", **kw)
    train_representation(cfg, "diti", data, edm, tmp / "m", tmp / "ckpt", **kw)
    assert "starting fresh" not in capsys.readouterr().out
    train_representation(diti_config(**{"diti.k": 2}), "diti", data, edm, tmp / "m", tmp / "ckpt", **kw)
    assert "starting fresh" in capsys.readouterr().out


def test_pdae_training_config_and_validation():
    cfg = diti_config(**{"diti.k": 4, "diti.mode": "dual", "diti.lr": 3e-4, "diti.batch_size": 8})
    t = training_config(cfg, "pdae")
    assert (t.method.name, t.diti.k, t.diti.mode, t.train.lr, t.train.batch_size) == ("pdae", 1, "base", 3e-4, 8)
    assert training_config(cfg, "diti").diti.k == 4
    with pytest.raises(ConfigError, match=r"diti\.dims_per_stage: must sum to diti\.latent_dim \(8\)"):
        diti_config(**{"diti.allocation": "stages", "diti.stages": [500, 1000], "diti.dims_per_stage": [4, 5]})
    with pytest.raises(ConfigError, match=r"diti\.k: must be an integer >= 1"):
        diti_config(**{"diti.k": 0})
    with pytest.raises(ConfigError, match=r"diti\.manip_attribute: must be one of featurenet\.attributes"):
        diti_config(**{"diti.manip_attribute": "Wavy_Hair"})
    with pytest.raises(ConfigError, match=r"diti\.cf_t_to\[0\]"):
        diti_config(**{"diti.cf_t_from": [500], "diti.cf_t_to": [100]})


def test_representation_refuses_another_edm_model(setup):
    cfg, data, edm, tmp = setup
    train_representation(cfg, "pdae", data, edm, tmp / "m", tmp / "ckpt")
    other = write_edm_model(tmp / "edm2", diti_config(**{"train.seed": 5}))
    with pytest.raises(ValueError, match="not the EDM model"):
        Representation(tmp / "m", edm_dir=other).load_dpm()
    assert json.loads((tmp / "m" / "diti.json").read_text())["method"] == "pdae"

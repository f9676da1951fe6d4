"""erd_compare: every arm trains and is scored at each checkpoint, nested MLflow runs hold the curves, the
table pairs arms by seed, and a rerun resumes without retraining or rescoring."""
import json

import mlflow
import pytest

from diffops.config import ConfigError
from diffops.stages import erd_compare

from ..conftest import tiny_config, write_prepared
from tests.helpers.tiw import ATTRIBUTES, write_featurenet

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")     # 8 samples of 16-d features


TINY_TRAIN = {"duration_kimg": 0.04, "batch_size": 4, "checkpoint_every_kimg": 0.02, "grid_every_kimg": 1.0,
              "log_every_steps": 2, "num_workers": 0, "lr_rampup_kimg": 0.01}     # tiny_config's train.*


def config(**overrides):
    return tiny_config(**{**{f"erd_train.{k}": v for k, v in TINY_TRAIN.items()}, "method.name": "ddpm", "featurenet.attributes": ATTRIBUTES, "featurenet.feature_dim": 16,
                          "erd.weightings": ["constant", "lambda"], "erd.seeds": [0, 1],
                          "evaluate.checkpoint_num_images": 8, "evaluate.checkpoint_steps": 2, "tracking.log_checkpoints": "none",
                          **overrides})


def test_arms_curves_table_and_resume(tmp_path, mlflow_uri):
    data = write_prepared(tmp_path / "data", counts=(32, 8, 8))
    featurenet = write_featurenet(tmp_path / "featurenet")
    cfg = config()
    args = (data, featurenet, tmp_path / "models", tmp_path / "state", tmp_path / "erd.json", tmp_path / "plots")
    result = erd_compare.run(cfg, *args)

    assert set(result["weightings"]) == {"constant", "lambda"}
    lam = result["weightings"]["lambda"]
    per_seed = result["per_seed"]
    d = [per_seed["lambda"][s]["final_fd"] - per_seed["constant"][s]["final_fd"] for s in ("0", "1")]
    assert lam["final_fd_minus_baseline"] == pytest.approx(sum(d) / 2)
    assert lam["final_fd_minus_baseline_se"] == pytest.approx(abs(d[0] - d[1]) / 2)   # sd/sqrt(2) of two values
    rows = json.loads((tmp_path / "plots" / "lambda.json").read_text())
    assert [r["kimg"] for r in rows] == [0.02, 0.04]                     # a point per checkpoint
    assert json.loads((tmp_path / "erd.json").read_text()) == json.loads(json.dumps(result))

    # MLflow: one parent, four nested ddpm runs, each with its curve and the weights it applied.
    client = mlflow.MlflowClient()
    runs = json.loads((tmp_path / "state" / "runs.json").read_text())
    parent = client.get_run(runs["parent"]["run_id"])
    assert parent.info.status == "FINISHED" and "lambda.final_fd_mean" in parent.data.metrics
    for name in ("constant-seed0", "constant-seed1", "lambda-seed0", "lambda-seed1"):
        run = client.get_run(runs[name]["run_id"])
        assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert run.data.params["ddpm.loss_weight"] == name.split("-")[0] and run.info.status == "FINISHED"
        history = client.get_metric_history(run.info.run_id, erd_compare.CURVE_METRIC)
        assert [m.step for m in history] == [5, 10]
        weights = run.data.metrics
        if name.startswith("constant"):
            assert weights["loss_weight_min"] == weights["loss_weight_max"] == 1.0
        else:                                                            # lambda = sigma_t in (0, 1]
            assert 0 < weights["loss_weight_min"] < weights["loss_weight_mean"] < weights["loss_weight_max"] <= 1

    # A rerun trains and scores nothing: the same table from the kept curves, the same runs.
    again = erd_compare.run(cfg, *args)
    assert again == json.loads(json.dumps(result))
    assert json.loads((tmp_path / "state" / "runs.json").read_text()) == runs
    assert len(client.get_metric_history(runs["lambda-seed0"]["run_id"], erd_compare.CURVE_METRIC)) == 2

    # Another attribute net: the curves are not reused; every arm gets a new run.
    other = write_featurenet(tmp_path / "featurenet2", seed=1)
    erd_compare.run(cfg, data, other, *args[2:])
    rerun = json.loads((tmp_path / "state" / "runs.json").read_text())
    assert all(rerun[k]["run_id"] != runs[k]["run_id"] for k in runs)


def test_kimg_to_threshold_and_missing_arms():
    cfg = config(**{"erd.fd_threshold": 5.0})
    curves = {"constant-seed0": {1.0: 9.0, 2.0: 6.0}, "constant-seed1": {1.0: 8.0, 2.0: 4.0},
              "lambda-seed0": {1.0: 5.0, 2.0: 3.0}, "lambda-seed1": {1.0: 4.0, 2.0: 2.0}}
    table = erd_compare.comparison(cfg, curves)["weightings"]
    assert table["lambda"]["kimg_to_threshold_mean"] == 1.0 and table["lambda"]["seeds_reaching_threshold"] == 2
    assert table["constant"]["kimg_to_threshold_mean"] == 2.0 and table["constant"]["seeds_reaching_threshold"] == 1
    assert table["constant"]["kimg_to_threshold_se"] is None            # one seed reached it: no spread
    assert table["lambda"]["mean_fd_minus_baseline"] == pytest.approx(((4 - 7.5) + (3 - 6)) / 2)
    # fd_threshold 0: the baseline's mean final fd (5.0) is the threshold
    default = erd_compare.comparison(config(), curves)
    assert default["protocol"]["fd_threshold"] == 5.0 and default["weightings"]["constant"]["seeds_reaching_threshold"] == 1


def test_weighting_undefined_for_the_target_fails_before_compute(tmp_path):
    cfg = config(**{"ddpm.target": "x0", "ddpm.loss_weight": "constant", "erd.weightings": ["constant", "p2"]})
    with pytest.raises(ConfigError, match=r"erd.weightings\[1\]: 'p2' is not defined for the x0 target"):
        erd_compare.run(cfg, tmp_path / "nothing", tmp_path / "nothing", tmp_path / "m", tmp_path / "s",
                        tmp_path / "e.json", tmp_path / "p")
    assert not (tmp_path / "s").exists()

"""The train stage with --featurenet: each checkpoint's fd_attrnet, in the run and as a dvc plots file."""
import json

import mlflow
import pytest

from diffops.stages.train import CURVE_METRIC, run as train

from ..conftest import tiny_config, write_prepared
from tests.helpers.tiw import ATTRIBUTES, write_featurenet

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")     # 8 samples of 16-d features


def test_every_checkpoint_is_scored(tmp_path, mlflow_uri):
    data = write_prepared(tmp_path / "data")
    featurenet = write_featurenet(tmp_path / "featurenet")
    cfg = tiny_config(**{"featurenet.attributes": ATTRIBUTES, "featurenet.feature_dim": 16,
                         "evaluate.checkpoint_num_images": 8, "evaluate.checkpoint_steps": 2})
    train(cfg, data, tmp_path / "model", tmp_path / "state", featurenet=featurenet, fd_plots=tmp_path / "fd.json")
    rows = json.loads((tmp_path / "fd.json").read_text())
    assert [r["kimg"] for r in rows] == [0.02, 0.04] and all(r[CURVE_METRIC] > 0 for r in rows)
    run_id = json.loads((tmp_path / "model" / "model.json").read_text())["mlflow_run_id"]
    history = mlflow.MlflowClient().get_metric_history(run_id, CURVE_METRIC)
    assert [(m.step, m.value) for m in history] == [(5, rows[0][CURVE_METRIC]), (10, rows[1][CURVE_METRIC])]

    off = tiny_config(**{"evaluate.checkpoint_num_images": 0})
    train(off, data, tmp_path / "model2", tmp_path / "state2", featurenet=featurenet, fd_plots=tmp_path / "fd2.json")
    assert json.loads((tmp_path / "fd2.json").read_text()) == []

"""The tiw_extractor stage end to end on a tiny prepared container: the folder, its spec, the MLflow run, and a
discriminator trained over it."""
import json

import mlflow
import pytest
import torch

from diffops.artifacts.discriminator import load_extractor
from diffops.nets.extractor import TimeAttrNet
from diffops.stages.tiw_discriminator import run as train_discriminator
from diffops.stages.tiw_extractor import run as train_extractor

from tests.conftest import write_prepared
from tests.helpers.tiw import ATTRIBUTES, tiw_config, write_group_container

pytestmark = pytest.mark.usefixtures("one_thread")


def test_extractor_stage_writes_a_loadable_noise_aware_net(tmp_path, mlflow_uri):
    data = write_prepared(tmp_path / "prepared", resolution=8, counts=(32, 8, 8))
    cfg = tiw_config(**{"tiw_extractor.steps": 6, "tiw_extractor.log_every_steps": 3})
    spec = train_extractor(cfg, data, tmp_path / "extractor")
    assert not (tmp_path / "extractor.tmp").exists()
    assert {"extractor.json", "extractor.safetensors"} <= {p.name for p in (tmp_path / "extractor").iterdir()}
    assert json.loads((tmp_path / "extractor" / "extractor.json").read_text()) == spec
    assert spec["resolution"] == 8 // cfg.bias_split.downsample and spec["attributes"] == ATTRIBUTES
    assert {"val_acc_sigma0", "val_acc_sigma1", "val_acc_sigma2"} <= set(spec["validation"])
    net, loaded = load_extractor(tmp_path / "extractor")
    assert isinstance(net, TimeAttrNet) and loaded == spec and not any(p.requires_grad for p in net.parameters())
    x = torch.randn(2, 3, spec["resolution"], spec["resolution"])
    assert net.features(x, torch.tensor([0.1, 0.9])).shape == (2, cfg.tiw_extractor.feature_dim)

    run = mlflow.get_run(spec["mlflow_run_id"])
    assert run.info.status == "FINISHED" and run.info.run_name == "extractor"
    assert {"train_bce", "val_acc_sigma1", "val_acc_sigma2"} <= set(run.data.metrics)
    assert run.data.params["tiw_extractor.steps"] == "6"

    # the discriminator stage reads the folder (its 8 px inputs resized to the extractor's side)
    obs = write_group_container(tmp_path / "obs")
    disc = train_discriminator(cfg, obs, tmp_path / "extractor", tmp_path / "disc")
    assert disc["extractor_resolution"] == spec["resolution"] and disc["extractor"]["mlflow_run_id"] == run.info.run_id

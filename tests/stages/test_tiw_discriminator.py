"""Discriminator training: 1:1 BCE on diffused images learns a separable toy split; checkpoints load."""
import json

import mlflow
import pytest
import torch

from diffops.config import ConfigError
from diffops.nets.discriminator import TimeDiscriminator
from diffops.artifacts.discriminator import load_discriminator
from diffops.stages.tiw_discriminator import run as train_discriminator

from tests.helpers.tiw import tiw_config, write_featurenet, write_group_container

pytestmark = pytest.mark.usefixtures("one_thread")


def test_discriminator_learns_and_checkpoints(tmp_path, mlflow_uri):
    data = write_group_container(tmp_path / "obs")
    cfg = tiw_config(**{"discriminator.steps": 120, "discriminator.checkpoint_every_steps": 60,
                        "discriminator.batch_size": 16, "discriminator.lr": 3e-3, "discriminator.log_every_steps": 30,
                        "tiw.discriminator_step": 60})
    spec = train_discriminator(cfg, data, write_featurenet(tmp_path / "featurenet"), tmp_path / "disc")
    assert set(spec["checkpoints"]) == {"60", "120"} and not (tmp_path / "disc.tmp").exists()
    last = spec["checkpoints"]["120"]
    assert last["val_acc_clean"] > 0.75 and last["val_bce_clean"] < 0.6       # chance: 0.5 and ln 2 = 0.693
    assert json.loads((tmp_path / "disc" / "discriminator.json").read_text()) == spec
    net, entry = load_discriminator(tmp_path / "disc", 120)
    assert isinstance(net, TimeDiscriminator) and {k: v for k, v in entry.items() if k != "extractor_sha256"} == last
    assert not any(p.requires_grad for p in net.parameters())
    x = torch.zeros(2, 3, 8, 8)
    assert net(x, torch.tensor([0.1, 0.9])).shape == (2,)
    with pytest.raises(ConfigError, match="tiw.discriminator_step"):
        load_discriminator(tmp_path / "disc", 90)
    run = mlflow.search_runs(experiment_names=["test-tiw"], filter_string="tags.mlflow.runName = 'discriminator'",
                             output_format="list")[0]
    assert run.info.status == "FINISHED" and "val_bce" in run.data.metrics


def test_extractor_stays_frozen_and_in_eval_mode(tmp_path):
    from diffops.artifacts.featurenet import load_featurenet
    net = TimeDiscriminator(load_featurenet(write_featurenet(tmp_path / "f"))[0], hidden=8, time_dim=8).train()
    assert not net.extractor.training and net.head.training
    assert all(not p.requires_grad for p in net.extractor.parameters())

"""Discriminator training: 1:1 BCE on diffused images learns a separable toy split over the frozen noise-aware
extractor; checkpoints load; val scores carry the gates (accuracy at sigma 1, 2 vs a noisy linear probe, E_bias[w])."""
import json

import mlflow
import pytest
import torch

from diffops.config import ConfigError
from diffops.nets.discriminator import TimeDiscriminator
from diffops.artifacts.discriminator import load_discriminator, load_extractor
from diffops.stages.tiw_discriminator import run as train_discriminator

from tests.helpers.tiw import tiw_config, write_extractor, write_group_container

pytestmark = pytest.mark.usefixtures("one_thread")

GATES = {"acc_sigma1", "acc_sigma2", "w_bias_sigma1", "w_bias_sigma2", "w_bias"}


def test_discriminator_learns_and_checkpoints(tmp_path, mlflow_uri):
    data = write_group_container(tmp_path / "obs")
    cfg = tiw_config(**{"discriminator.steps": 120, "discriminator.checkpoint_every_steps": 60,
                        "discriminator.batch_size": 16, "discriminator.lr": 3e-3, "discriminator.log_every_steps": 30,
                        "tiw.discriminator_step": 60})
    spec = train_discriminator(cfg, data, write_extractor(tmp_path / "extractor"), tmp_path / "disc")
    assert set(spec["checkpoints"]) == {"60", "120"} and not (tmp_path / "disc.tmp").exists()
    last = spec["checkpoints"]["120"]
    assert last["val_acc_clean"] > 0.75 and last["val_bce_clean"] < 0.6       # chance: 0.5 and ln 2 = 0.693
    # gates: the fields, the probe baseline, pass/fail per checkpoint consistent with the numbers
    for sigma in ("1", "2"):
        assert 0 <= last[f"val_acc_sigma{sigma}"] <= 1 and last[f"val_w_bias_sigma{sigma}"] > 0
        assert last[f"val_w_bias_se_sigma{sigma}"] >= 0
        assert 0 <= spec["probe"][f"probe_val_acc_sigma{sigma}"] <= 1
        assert last["gates"][f"acc_sigma{sigma}"] == (last[f"val_acc_sigma{sigma}"] > spec["probe"][f"probe_val_acc_sigma{sigma}"])
    assert set(last["gates"]) == GATES and last["val_w_bias"] > 0
    assert last["gates"]["w_bias"] == (abs(last["val_w_bias"] - 1) <= spec["w_tolerance"])
    assert json.loads((tmp_path / "disc" / "discriminator.json").read_text()) == spec
    net, entry = load_discriminator(tmp_path / "disc", 120)
    assert isinstance(net, TimeDiscriminator) and {k: v for k, v in entry.items() if k != "extractor_sha256"} == last
    assert entry["extractor_sha256"] == spec["extractor"]["sha256"]
    assert not any(p.requires_grad for p in net.parameters())
    x = torch.zeros(2, 3, 8, 8)
    assert net(x, torch.tensor([0.1, 0.9])).shape == (2,)
    with pytest.raises(ConfigError, match="tiw.discriminator_step"):
        load_discriminator(tmp_path / "disc", 90)
    run = mlflow.search_runs(experiment_names=["test-tiw"], filter_string="tags.mlflow.runName = 'discriminator'",
                             output_format="list")[0]
    m = run.data.metrics
    assert run.info.status == "FINISHED" and "val_bce" in m
    assert {"val_acc_sigma1", "val_acc_sigma2", "val_w_bias", "val_w_bias_sigma1", "val_w_bias_sigma2",
            "probe_val_acc_sigma1", "probe_val_acc_sigma2"} <= set(m)
    assert {f"gate_{g}" for g in GATES} <= set(m)


def test_extractor_stays_frozen_and_in_eval_mode(tmp_path):
    net = TimeDiscriminator(load_extractor(write_extractor(tmp_path / "f"))[0], hidden=8, time_dim=8).train()
    assert not net.extractor.training and net.head.training
    assert all(not p.requires_grad for p in net.extractor.parameters())

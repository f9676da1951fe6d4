"""TIW-DSM through the one training loop: method_inputs reach the method, and a checkpoint made with
another discriminator is never resumed."""
import json

import pytest

from diffops.training import checkpoint as ckpt
from diffops.stages.train import run as train

from tests.helpers.tiw import tiw_config, write_discriminator, write_group_container

pytestmark = pytest.mark.usefixtures("one_thread")


def test_tiw_dsm_trains_and_restarts_on_another_discriminator(tmp_path, mlflow_uri):
    data = write_group_container(tmp_path / "obs", n_ref=8, n_bias=8)
    disc_a = write_discriminator(tmp_path / "a", seed=0)
    disc_b = write_discriminator(tmp_path / "b", seed=1)
    cfg = tiw_config(**{"method.name": "tiw_dsm"})
    train(cfg, data, tmp_path / "out", tmp_path / "state", discriminator=disc_a,
          stop_after_steps=6)
    first = [p.name for p in ckpt.list_checkpoints(tmp_path / "state")]
    assert first == ["checkpoint-000000020"]
    hash_a = json.loads((tmp_path / "state" / first[0] / "state.json").read_text())["config_hash"]
    # Same params, other discriminator: the old checkpoint is discarded and training starts over.
    train(cfg, data, tmp_path / "out", tmp_path / "state", discriminator=disc_b)
    names = [p.name for p in ckpt.list_checkpoints(tmp_path / "state")]
    assert names == ["checkpoint-000000020", "checkpoint-000000040"]
    hash_b = json.loads((tmp_path / "state" / names[0] / "state.json").read_text())["config_hash"]
    assert hash_a != hash_b
    spec = json.loads((tmp_path / "out" / "model.json").read_text())
    assert spec["method"] == "tiw_dsm"
    import mlflow
    run = mlflow.get_run(spec["mlflow_run_id"])
    assert run.data.tags["diffops.method_input.discriminator"] == str(disc_b)


def test_checkpoints_are_scored_at_the_losses_resolution(tmp_path, mlflow_uri):
    """16-px-style losses (here 4 px) against an 8-px attribute net: samples and reference are resized alike."""
    from diffops.stages.tiw_train import run as tiw_train
    from tests.helpers.tiw import write_featurenet
    data = write_group_container(tmp_path / "obs", n_ref=8, n_bias=8, resolution=4)
    cfg = tiw_config(**{"evaluate.checkpoint_num_images": 8, "evaluate.checkpoint_steps": 2,
                        "featurenet.feature_dim": 16, "featurenet.width": 8})
    tiw_train(cfg, "dsm_obs", data, None, tmp_path / "out", tmp_path / "state",
              featurenet=write_featurenet(tmp_path / "featurenet"), fd_plots=tmp_path / "fd.json")
    rows = json.loads((tmp_path / "fd.json").read_text())
    assert [r["kimg"] for r in rows] == [0.02, 0.04] and all(r["fd_attrnet_checkpoint"] > 0 for r in rows)

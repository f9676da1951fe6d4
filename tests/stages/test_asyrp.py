"""The Asyrp stages end to end on tiny data: invert -> train Delta h -> edit, with their MLflow runs and the
metrics file; a stale inversion cache is refused by name."""
import json

import mlflow
import pytest
import torch

from diffops.artifacts.asyrp import load_delta_h, load_inversion
from diffops.config import load_params
from diffops.methods import METHODS
from diffops.stages.asyrp_edit import run as run_edit
from diffops.stages.asyrp_invert import run as run_invert
from diffops.stages.asyrp_train import run as run_train

from ..conftest import write_prepared
from tests.helpers.diti import write_edm_model, write_featurenet

pytestmark = pytest.mark.usefixtures("one_thread")

ASYRP = {"train_images": 4, "test_images": 2, "inversion_steps": 4, "train_steps": 4, "edit_steps": 6,
         "epochs": 2, "batch_size": 2, "lr": 0.1, "t_edit": 400, "t_boost": 200, "grid_images": 2}


def asyrp_config(**asyrp):
    return load_params({"data": {"resolution": 8, "crop": 8},
                        "model": {"block_channels": [8, 8], "attention": [False, True], "norm_num_groups": 4},
                        "tracking": {"experiment": "test-asyrp", "system_metrics": False},
                        "asyrp": {**ASYRP, **asyrp}}, methods=METHODS)


@pytest.fixture
def setup(tmp_path, mlflow_uri, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = asyrp_config()
    data = write_prepared(tmp_path / "data", resolution=8, counts=(8, 4, 12))
    edm = write_edm_model(tmp_path / "edm", cfg)
    featurenet = write_featurenet(tmp_path / "featurenet", cfg.featurenet.attributes)
    return cfg, data, edm, featurenet, tmp_path


def test_invert_train_edit(setup):
    cfg, data, edm, featurenet, tmp = setup
    inv = run_invert(cfg, data, edm, tmp / "inversion", progress=False)
    spec, splits = load_inversion(tmp / "inversion")
    assert spec["key"]["inversion_steps"] == 4 and len(spec["ids"]["train"]) == 4 and len(spec["ids"]["test"]) == 2
    assert splits["test"]["x_T"].shape == (2, 3, 8, 8) and splits["test"]["images"].dtype == torch.uint8
    assert mlflow.get_run(inv["mlflow_run_id"]).info.status == "FINISHED"

    trained = run_train(cfg, tmp / "inversion", edm, featurenet, tmp / "model", progress=False)
    assert trained["optimizer_steps"] == 2 * 2 * 2                # epochs x batches x the steps t >= t_edit (999, 666)
    assert trained["t_edit"] == 400 and trained["t_rule"].startswith("explicit")
    net, _ = load_delta_h(tmp / "model")
    assert net.conv1.in_channels == 8
    run = mlflow.get_run(trained["mlflow_run_id"])
    assert run.info.status == "FINISHED" and run.data.params["asyrp.t_edit_used"] == "400"
    assert run.data.tags["asyrp.t_rule"].startswith("explicit") and "loss" in run.data.metrics

    m = run_edit(cfg, tmp / "inversion", edm, featurenet, [tmp / "model"], tmp / "edit", tmp / "metrics.json",
                 progress=False)
    saved = json.loads((tmp / "metrics.json").read_text())
    for key in ("change_rate", "change_rate_random", "other_attr_change"):
        assert 0 <= saved[key] <= 1 and f"{key}_se" in saved
    assert saved["num_images"] == 2 and "fd_attrnet" in saved and saved == json.loads(json.dumps(m))
    assert saved["protocol"]["coefficients"] == [4 / 6]
    assert (tmp / "edit" / "grid.png").exists()
    assert len(json.loads((tmp / "edit" / "grid.json").read_text())["rows"]) == 4
    run = mlflow.get_run(trained["mlflow_run_id"])
    assert run.data.metrics["asyrp.change_rate"] == m["change_rate"]
    assert {a.path for a in mlflow.MlflowClient().list_artifacts(run.info.run_id)} >= {"asyrp", "edit"}

    # Two edits combine, each at 1 / sqrt(2); the metrics are about the first one's attribute.
    m2 = run_edit(cfg, tmp / "inversion", edm, featurenet, [tmp / "model", tmp / "model"], tmp / "edit2",
                  tmp / "metrics2.json", progress=False)
    assert m2["protocol"]["coefficients"] == pytest.approx([4 / 6 / 2**0.5] * 2)

    # A Delta h of another attribute than the one the inverted test images lack is refused.
    spec = json.loads((tmp / "model" / "asyrp.json").read_text())
    (tmp / "model" / "asyrp.json").write_text(json.dumps({**spec, "attribute": "Male"}))
    with pytest.raises(ValueError, match="edits Male, but .* holds the test images without Smiling"):
        run_edit(cfg, tmp / "inversion", edm, featurenet, [tmp / "model"], tmp / "edit3", tmp / "m3.json",
                 progress=False)


def test_a_stale_inversion_is_refused_by_name(setup):
    cfg, data, edm, featurenet, tmp = setup
    run_invert(cfg, data, edm, tmp / "inversion", progress=False)
    with pytest.raises(ValueError, match="asyrp.inversion_steps = 4, the params say 6"):
        run_train(asyrp_config(inversion_steps=6), tmp / "inversion", edm, featurenet, tmp / "model", progress=False)
    with pytest.raises(ValueError, match="asyrp.test_images: 50 asked"):
        run_invert(asyrp_config(test_images=50), data, edm, tmp / "inv2", progress=False)


@pytest.mark.parametrize("pipeline", ["asyrp-quickstart", "celeba64"])
def test_every_param_an_asyrp_stage_lists_is_in_its_params_file(pipeline):
    """DVC refuses a stage whose params file lacks a listed key (it does not know diffops' defaults)."""
    import yaml
    from pathlib import Path
    root = Path(__file__).resolve().parents[2] / "pipelines" / pipeline
    params = yaml.safe_load((root / "params.yaml").read_text())
    stages = yaml.safe_load((root / "dvc.yaml").read_text())["stages"]
    for name in ("asyrp_invert", "asyrp_train", "asyrp_edit"):
        for key in stages[name]["params"]:
            section, _, field = key.partition(".")
            assert section in params and (not field or field in params[section]), f"{pipeline} {name}: {key}"
    load_params(root / "params.yaml", methods=METHODS)


def test_lpips_rule_chooses_the_interval_from_the_inversion_tables(setup, monkeypatch):
    """With asyrp.lpips_weights the invert stage records mean LPIPS(P_t, x0) and LPIPS(x_t, x0) per step, and the
    train and edit stages take t_edit / t_boost from the paper's rules (a stand-in distance replaces LPIPS)."""
    import diffops.stages.asyrp_invert as invert_stage
    cfg, data, edm, featurenet, tmp = setup
    monkeypatch.setattr(invert_stage, "load_lpips", lambda path: lambda x, y: (x - y).abs().flatten(1).mean(1))
    cfg = asyrp_config(lpips_weights=str(tmp / "alex.pth"), lpips_edit_threshold=0.05, lpips_boost_threshold=0.05)
    spec = run_invert(cfg, data, edm, tmp / "inversion", progress=False)
    table = spec["lpips"]
    assert table["t"] == [333, 666, 999] and len(table["lpips_P_t"]) == 3
    trained = run_train(cfg, tmp / "inversion", edm, featurenet, tmp / "model", progress=False)
    first = lambda values: next(t for t, v in zip(table["t"], values) if v >= 0.05)     # noqa: E731
    assert trained["t_edit"] == first(table["lpips_P_t"]) and trained["t_rule"].startswith("lpips")
    m = run_edit(cfg, tmp / "inversion", edm, featurenet, [tmp / "model"], tmp / "edit", tmp / "m.json",
                 progress=False)
    assert m["protocol"]["t_boost"] == first(table["lpips_x_t"]) and m["protocol"]["t_boost_rule"].startswith("lpips")


def test_clip_direction_trains_and_scores_with_a_stand_in_clip(setup, monkeypatch):
    """asyrp.direction clip through both stages, with a tiny stand-in for the local open_clip model: the training
    steps log the directional cosine, the L1 term is weighted by the prompts' cosine, and the edit reports
    clip_directional_similarity (open_clip itself is not installed here; its loader is tested for its errors)."""
    import diffops.stages.asyrp_edit as edit_stage
    import diffops.stages.asyrp_train as train_stage
    from torch.nn import functional as F
    from diffops.artifacts.perceptual import Clip
    cfg, data, edm, featurenet, tmp = setup
    W = torch.randn(6, 3 * 8 * 8, generator=torch.Generator().manual_seed(0))
    words = {"face": torch.tensor([1.0, 0, 0, 0, 0, 0]), "smiling face": torch.tensor([0.6, 0.8, 0, 0, 0, 0])}
    stand_in = Clip(encode_image=lambda x: F.normalize(x.flatten(1) @ W.T, dim=-1),
                    encode_text=lambda prompts: torch.stack([words[p] for p in prompts]))
    for stage in (train_stage, edit_stage):
        monkeypatch.setattr(stage, "load_clip", lambda folder, arch: stand_in)
    cfg = asyrp_config(direction="clip", clip_model=str(tmp / "clip"))
    run_invert(cfg, data, edm, tmp / "inversion", progress=False)
    trained = run_train(cfg, tmp / "inversion", edm, featurenet, tmp / "model", progress=False)
    assert trained["prompts"] == ["face", "smiling face"] and trained["rec_cosine"] == pytest.approx(0.6)
    assert "clip_directional_similarity" in mlflow.get_run(trained["mlflow_run_id"]).data.metrics
    m = run_edit(cfg, tmp / "inversion", edm, featurenet, [tmp / "model"], tmp / "edit", tmp / "m.json",
                 progress=False)
    assert -1 <= m["clip_directional_similarity"] <= 1 and "clip_directional_similarity_se" in m

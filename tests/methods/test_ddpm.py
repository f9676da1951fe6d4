"""The ddpm method (ERD's formulation): contract, the loss it computes, and an exported model that samples."""
import pytest
import torch

from diffops.diffusion.ddpm import DDPMSchedule
from diffops.diffusion.loss_weight import loss_weight

from .common import MethodContract


class TestDDPM(MethodContract):
    method_name = "ddpm"


class TestDDPMV(MethodContract):
    method_name = "ddpm"
    overrides = {"ddpm.target": "v", "ddpm.schedule": "linear", "ddpm.loss_weight": "min_snr_5"}


@pytest.mark.parametrize("target,weight", [("eps", "lambda"), ("x0", "trunc_snr"), ("v", "constant")])
def test_loss_is_the_weighted_target_mse(target, weight):
    """Redraw t and eps from the same generator and recompute the reference's loss by hand."""
    contract = TestDDPM()
    contract.overrides = {"ddpm.target": target, "ddpm.loss_weight": weight}
    model, cfg = contract.make()
    batch = contract.batch()
    loss = model(batch, torch.Generator().manual_seed(3))
    stats = model.method.step_stats["loss_weight"]

    g = torch.Generator().manual_seed(3)
    x0 = batch["image"]
    t = torch.randint(0, 1000, [4], generator=g)
    eps = torch.randn(x0.shape, generator=g)
    abar = DDPMSchedule(schedule=cfg.ddpm.schedule).alphas_cumprod[t]
    a, s = abar.sqrt(), (1 - abar).sqrt()
    w = loss_weight(weight, target, a, s).float()
    a4, s4 = a.float().reshape(-1, 1, 1, 1), s.float().reshape(-1, 1, 1, 1)
    with torch.no_grad():
        pred = model.D.predict(a4 * x0 + s4 * eps, t)
    tgt = {"eps": eps, "x0": x0, "v": a4 * eps - s4 * x0}[target]
    expected = w * ((pred - tgt) ** 2).flatten(1).mean(1)
    assert torch.allclose(loss.detach(), expected, rtol=1e-5)
    assert torch.equal(stats, w)


def test_bad_weighting_is_a_params_error():
    from diffops.config import ConfigError
    from tests.conftest import tiny_config
    with pytest.raises(ConfigError, match="ddpm.loss_weight.*not defined for the x0 target"):
        tiny_config(**{"method.name": "ddpm", "ddpm.target": "x0", "ddpm.loss_weight": "p2"})
    with pytest.raises(ConfigError, match=r"erd.weightings\[1\]: lambda is listed twice"):
        tiny_config(**{"erd.weightings": ["lambda", "lambda"]})
    with pytest.raises(ConfigError, match="edm.loss_weight"):
        tiny_config(**{"edm.loss_weight": "min_snr"})


def test_exported_model_samples_through_the_edm_sampler(tmp_path, mlflow_uri):
    """train -> model.json names the DDPM wrapping -> load_denoiser / untrained_denoiser rebuild it -> sample."""
    import json

    from diffops.artifacts.denoiser import load_denoiser, untrained_denoiser
    from diffops.diffusion.ddpm import DDPMPrecond
    from diffops.sampling.sample_set import read_sample_set
    from diffops.stages import sample
    from diffops.stages.train import run as train
    from tests.conftest import tiny_config, write_prepared

    cfg = tiny_config(**{"method.name": "ddpm", "ddpm.target": "v", "ddpm.loss_weight": "lambda"})
    train(cfg, write_prepared(tmp_path / "data"), tmp_path / "model", tmp_path / "state")
    spec = json.loads((tmp_path / "model" / "model.json").read_text())
    assert spec["precond"] == {"kind": "ddpm", "schedule": "cosine", "target": "v"}
    D, _ = load_denoiser(tmp_path / "model")
    assert isinstance(D, DDPMPrecond) and D.target == "v" and isinstance(untrained_denoiser(spec, 0), DDPMPrecond)
    sample.run(cfg, tmp_path / "model", tmp_path / "samples")
    images = read_sample_set(tmp_path / "samples")
    assert images.shape == (8, 3, 8, 8) and images.std() > 0

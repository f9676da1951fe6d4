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

"""The method contract for DiTi in its three modes (the loop freezes D for freeze_denoiser methods)."""
import torch

from diffops.training.loop import build_trainable

from tests.helpers.diti import diti_config
from .common import MethodContract


class FrozenDPMContract(MethodContract):
    def make(self):
        cfg = diti_config(**{"method.name": self.method_name, **self.overrides})
        model = build_trainable(cfg)
        model.D.requires_grad_(False)               # as training/loop.py does for freeze_denoiser
        return model, cfg

    def test_denoiser_is_frozen_and_the_shift_branch_starts_at_zero(self):
        model, _ = self.make()
        assert model.method.freeze_denoiser
        model(self.batch(resolution=8), torch.Generator().manual_seed(0)).mean().backward()
        assert all(p.grad is None for p in model.D.parameters())
        assert model.extra["shift"].conv_out.weight.abs().sum() == 0


class TestDiTi(FrozenDPMContract):
    method_name = "diti"


class TestDiTiStopGrad(FrozenDPMContract):
    method_name = "diti"
    overrides = {"diti.mode": "stop_grad"}


class TestDiTiDual(FrozenDPMContract):
    method_name = "diti"
    overrides = {"diti.mode": "dual", "diti.allocation": "stages", "diti.stages": [300, 1000],
                 "diti.dims_per_stage": [3, 5]}

"""The method contract for every TIW-DSM mode (one class, five registry names)."""
import tempfile
from pathlib import Path

import torch

from diffops.artifacts.discriminator import load_discriminator
from diffops.training.loop import build_trainable

from tests.helpers.tiw import tiw_config, write_discriminator
from .common import MethodContract

_DISC = {}


def _discriminator_dir() -> Path:
    if "dir" not in _DISC:
        _DISC["tmp"] = tempfile.TemporaryDirectory()
        _DISC["dir"] = write_discriminator(Path(_DISC["tmp"].name) / "disc")
    return _DISC["dir"]


class TIWContract(MethodContract):
    needs_discriminator = True

    def make(self):
        cfg = tiw_config(**{"method.name": self.method_name, **self.overrides})
        inputs = ({"discriminator": load_discriminator(_discriminator_dir(), cfg.tiw.discriminator_step)}
                  if self.needs_discriminator else None)
        return build_trainable(cfg, inputs), cfg

    def batch(self, n=4, resolution=8, seed=0):
        b = super().batch(n, resolution, seed)
        b["group"] = torch.tensor([1, 0, 1, 0][:n], dtype=torch.uint8)
        return b

    def test_discriminator_stays_frozen(self):
        model, _ = self.make()
        model(self.batch(), torch.Generator().manual_seed(0)).mean().backward()
        disc = dict(model.extra).get("discriminator")
        if disc is not None:
            assert all(not p.requires_grad and p.grad is None for p in disc.parameters())


class TestDSMRef(TIWContract):
    method_name = "dsm_ref"
    needs_discriminator = False


class TestDSMObs(TIWContract):
    method_name = "dsm_obs"
    needs_discriminator = False


class TestIWDSM(TIWContract):
    method_name = "iw_dsm"


class TestTIWDSM(TIWContract):
    method_name = "tiw_dsm"


class TestTIWCompat(TIWContract):
    method_name = "tiw_compat"

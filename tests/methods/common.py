"""Contract every method in diffops.methods.METHODS satisfies (diffusers' shared-test pattern).

A method's test file subclasses MethodContract and sets `method_name` (and `overrides` if needed).
"""
import torch

from diffops.training.loop import build_trainable

from ..conftest import tiny_config


class MethodContract:
    method_name: str = ""
    overrides: dict = {}

    def make(self):
        cfg = tiny_config(**{"method.name": self.method_name, **self.overrides})
        return build_trainable(cfg), cfg

    def batch(self, n=4, resolution=8, seed=0):
        g = torch.Generator().manual_seed(seed)
        return {"image": torch.rand(n, 3, resolution, resolution, generator=g) * 2 - 1,
                "attrs": torch.randint(0, 2, (n, 40), generator=g, dtype=torch.uint8)}

    def test_loss_is_per_sample_and_finite(self):
        model, _ = self.make()
        loss = model(self.batch(), torch.Generator().manual_seed(0))
        assert loss.shape == (4,) and torch.isfinite(loss).all()

    def test_gradients_reach_every_trainable_parameter(self):
        model, _ = self.make()
        model(self.batch(), torch.Generator().manual_seed(0)).mean().backward()
        missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
        assert not missing, missing

    def test_loss_is_a_function_of_the_generator(self):
        model, _ = self.make()
        a = model(self.batch(), torch.Generator().manual_seed(1))
        b = model(self.batch(), torch.Generator().manual_seed(1))
        c = model(self.batch(), torch.Generator().manual_seed(2))
        assert torch.equal(a, b) and not torch.equal(a, c)

    def test_same_seed_same_initial_weights(self):
        (a, _), (b, _) = self.make(), self.make()
        for (n, p), (_, q) in zip(a.named_parameters(), b.named_parameters()):
            assert torch.equal(p, q), n

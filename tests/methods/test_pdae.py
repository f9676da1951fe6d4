"""The method contract for PDAE (DiTi with k = 1), and its loss against a direct transcription."""
import torch

from diffops.methods.pdae import frozen_dpm

from .test_diti import FrozenDPMContract


class TestPDAE(FrozenDPMContract):
    method_name = "pdae"

    def test_loss_is_the_reference_formula(self):
        model, _ = self.make()
        with torch.no_grad():
            torch.nn.init.normal_(model.extra["shift"].conv_out.weight, std=0.1)
        batch, m = self.batch(resolution=8), model.method
        loss = model(batch, torch.Generator().manual_seed(3))
        # Redraw t and eps from the same generator, in the same order, and write the loss out.
        g = torch.Generator().manual_seed(3)
        x0 = batch["image"]
        z = model.extra["encoder"](x0)
        t = torch.randint(0, 1000, (4,), generator=g)
        eps = torch.randn(x0.shape, generator=g)
        ab = m.sched.alphas_cumprod[t].float().reshape(-1, 1, 1, 1)
        x_t = ab.sqrt() * x0 + (1 - ab).sqrt() * eps
        eps_theta, feats = frozen_dpm(model.D, x_t, t, m.sched)
        a, ab_prev = m.sched.alphas[t].float(), m.sched.alphas_cumprod_prev[t].float()
        s_t = (-a.sqrt() * (1 - ab_prev) / (1 - ab.flatten()).sqrt()).reshape(-1, 1, 1, 1)
        snr = ab / (1 - ab)
        expected = (snr**0.1 / (1 + snr) * (eps - eps_theta - s_t * model.extra["shift"](*feats, z)) ** 2).mean((1, 2, 3))
        torch.testing.assert_close(loss, expected, rtol=1e-4, atol=1e-7)

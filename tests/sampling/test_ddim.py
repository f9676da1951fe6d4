"""sampling/ddim.py: DiTi's deterministic DDIM, forward and reverse, with z guidance."""
import torch

from diffops.diffusion.ddpm import DDPMSchedule
from diffops.methods.diti import DiTi
from diffops.methods.pdae import frozen_dpm
from diffops.sampling.ddim import ddim, ddim_timesteps, masked_guided_ddim
from diffops.training.loop import build_trainable

from tests.helpers.diti import diti_config

S = DDPMSchedule()


def test_timesteps_are_ditis_get_seq():
    assert ddim_timesteps(50) == list(range(0, 1000, 20)) and ddim_timesteps(1000) == list(range(1000))
    assert ddim_timesteps(3) == [0, 333, 666, 999]      # as the reference: T // S need not divide T


def test_exact_noise_predictor_decodes_to_its_image_and_inverts_back():
    x0 = torch.rand(2, 3, 4, 4) * 1.6 - 0.8
    oracle = lambda x, t: (x - S.at(S.alphas_cumprod, t, x).sqrt() * x0) / (1 - S.at(S.alphas_cumprod, t, x)).sqrt()  # noqa: E731
    x_T = torch.randn(2, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(ddim(oracle, x_T, S, 10), x0, rtol=1e-4, atol=1e-4)
    inverted = ddim(oracle, x0, S, 10, reverse=False)
    torch.testing.assert_close(ddim(oracle, inverted, S, 10), x0, rtol=1e-4, atol=1e-4)


def test_guidance_with_zero_shift_is_the_frozen_dpm_and_z_none_skips_it():
    model = build_trainable(diti_config(**{"method.name": "diti"}))
    m, D, G = model.method, model.D.eval(), model.extra["shift"].eval()
    x, z, t = torch.randn(2, 3, 8, 8), torch.randn(2, 8), torch.tensor([5, 900])
    with torch.no_grad():
        eps, _ = frozen_dpm(D, x, t, m.sched)
        torch.testing.assert_close(m.guided_eps(D, G, x, t, z), eps)          # G = 0 at initialisation
        torch.nn.init.normal_(G.conv_out.weight, std=0.1)
        guided = m.guided_eps(D, G, x, t, z)
        assert not torch.allclose(guided, eps) and torch.equal(m.guided_eps(D, G, x, t, None), eps)
        a = masked_guided_ddim(m, D, G, x, z, 4, batch_size=1)
        b = masked_guided_ddim(m, D, G, x, z, 4, batch_size=2)                 # batching does not change images
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
        assert isinstance(m, DiTi) and a.abs().max() <= 1 + 1e-6

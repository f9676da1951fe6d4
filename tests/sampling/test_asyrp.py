"""sampling/asyrp.py: the asymmetric reverse step, Asyrp's timesteps, inversion and generation."""
import numpy as np
import pytest
import torch

from diffops.diffusion.ddpm import DDPMSchedule
from diffops.diffusion.edm import EDMPrecond
from diffops.methods.asyrp import asyrp_eps
from diffops.nets.unet import build_unet
from diffops.sampling.asyrp import asymmetric_step, asyrp_timesteps, generate, invert, reverse_pairs
from diffops.sampling.ddim import abar, ddim_step

S = DDPMSchedule()
pytestmark = pytest.mark.usefixtures("one_thread")


def test_timesteps_are_the_reference_linspace_with_t0():
    seq = asyrp_timesteps(50)
    assert seq == [int(s + 1e-6) for s in np.linspace(0, 1, 50) * 999] and seq[0] == 0 and seq[-1] == 999
    assert reverse_pairs([0, 500, 999]) == [(999, 500), (500, 0), (0, -1)]
    with pytest.raises(ValueError):
        asyrp_timesteps(1)


@pytest.mark.parametrize("t, t_next", [(999, 979), (500, 480), (20, 0), (0, -1)])
def test_asymmetric_step_with_unedited_eps_is_the_ddim_step(t, t_next):
    g = torch.Generator().manual_seed(t)
    x, eps = torch.randn(2, 3, 4, 4, generator=g), torch.randn(2, 3, 4, 4, generator=g)
    a, a_next = abar(S, t), abar(S, t_next)
    x_next, P_t = asymmetric_step(x, eps, eps, a, a_next)
    torch.testing.assert_close(x_next, ddim_step(x, eps, a, a_next), rtol=0, atol=0)
    torch.testing.assert_close(P_t, (x - (1 - a) ** 0.5 * eps) / a**0.5)


def test_only_the_predicted_x0_uses_the_edited_eps():
    g = torch.Generator().manual_seed(1)
    x, eps, eps_edit = (torch.randn(2, 3, 4, 4, generator=g) for _ in range(3))
    a, a_next = abar(S, 600), abar(S, 580)
    x_next, P_edit = asymmetric_step(x, eps, eps_edit, a, a_next)
    P_orig = (x - (1 - a) ** 0.5 * eps) / a**0.5
    torch.testing.assert_close(x_next - ddim_step(x, eps, a, a_next), a_next**0.5 * (P_edit - P_orig))
    # eta = 1: the noise takes c1 = sqrt(beta~) and the direction c2 = sqrt(1 - abar' - c1^2) (DDPM's variance).
    noise = torch.randn(2, 3, 4, 4, generator=g)
    x_eta, _ = asymmetric_step(x, eps, eps_edit, a, a_next, eta=1.0, noise=noise)
    c1 = ((1 - a / a_next) * (1 - a_next) / (1 - a)) ** 0.5
    torch.testing.assert_close(x_eta, a_next**0.5 * P_edit + (1 - a_next - c1**2) ** 0.5 * eps + c1 * noise)


def test_inversion_then_generation_reconstructs_the_image():
    x0 = torch.rand(2, 3, 4, 4) * 1.6 - 0.8
    oracle = lambda x, t: (x - S.at(S.alphas_cumprod, t, x).sqrt() * x0) / (1 - S.at(S.alphas_cumprod, t, x)).sqrt()  # noqa: E731
    seq = asyrp_timesteps(20)
    x_T = invert(oracle, x0, S, seq)
    pair = lambda x, t, edit: (oracle(x, t),) * 2                                      # noqa: E731
    torch.testing.assert_close(generate(pair, x_T, S, seq, t_edit=1000, t_boost=0), x0, rtol=1e-4, atol=1e-4)
    # A real (random, tiny) EDM UNet read as a DDPM: inversion and reconstruction agree closely with enough steps.
    torch.manual_seed(0)
    D = EDMPrecond(build_unet(8, [8, 8], [False, True], norm_num_groups=4)).eval()
    img = torch.rand(2, 3, 8, 8) * 1.6 - 0.8
    eps_fn = lambda x, t: asyrp_eps(D, x, t, S, None)[0]                               # noqa: E731
    seq = asyrp_timesteps(50)
    recon = generate(lambda x, t, e: (eps_fn(x, t),) * 2, invert(eps_fn, img, S, seq), S, seq, 1000, 0)
    assert (recon - img).abs().mean() < 0.05                  # about 6 of 255 levels with random weights


def test_generation_noise_is_per_image_and_only_below_t_boost():
    oracle = lambda x, t: x / (1 - S.at(S.alphas_cumprod, t, x)).sqrt()               # noqa: E731  (x0 = 0)
    pair = lambda x, t, edit: (oracle(x, t),) * 2                                      # noqa: E731
    seq, x_T = asyrp_timesteps(10), torch.randn(2, 3, 4, 4)
    gens = lambda: [torch.Generator().manual_seed(s) for s in (5, 6)]                 # noqa: E731
    both = generate(pair, x_T, S, seq, 500, 300, gens())
    one = generate(pair, x_T[1:], S, seq, 500, 300, gens()[1:])
    torch.testing.assert_close(both[1:], one)                                          # independent of the batch
    assert not torch.allclose(both, generate(pair, x_T, S, seq, 500, 0, gens()))       # t_boost 0: no noise

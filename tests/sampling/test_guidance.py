"""Discriminator guidance as a denoiser wrapper: D' = D + w sigma^2 grad_x log r, only inside its tau range."""
import pytest
import torch

from diffops.diffusion import vp
from diffops.sampling.edm_sampler import edm_sampler
from diffops.sampling.guidance import GuidedDenoiser

from tests.helpers.tiw import LinearLogit, Shrink

pytestmark = pytest.mark.usefixtures("one_thread")


def test_guided_denoiser_adds_the_scaled_ratio_gradient():
    disc = LinearLogit()
    x = torch.randn(3, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    sigma = torch.tensor([0.001, 1.0, 5.0])                         # tau(0.001) < 0.01: outside DG's range
    out = GuidedDenoiser(Shrink(), disc, weight=2.0, tau_min=0.01)(x, sigma)
    s = sigma.reshape(-1, 1, 1, 1)
    expected = Shrink()(x, sigma) + 2.0 * s**2 * vp.alpha_from_sigma(s) * disc.a
    assert torch.allclose(out[1:], expected[1:], rtol=1e-5)
    assert torch.equal(out[:1], Shrink()(x, sigma)[:1])
    assert torch.equal(GuidedDenoiser(Shrink(), disc, weight=0.0)(x, sigma), Shrink()(x, sigma))


def test_guidance_runs_inside_the_no_grad_sampler():
    latents = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    plain = edm_sampler(Shrink(), latents, num_steps=4)
    guided = edm_sampler(GuidedDenoiser(Shrink(), LinearLogit(), weight=1.0), latents, num_steps=4)
    assert torch.isfinite(guided).all() and not torch.allclose(plain, guided)

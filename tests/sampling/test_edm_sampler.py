import torch

from diffops.diffusion.edm import EDMPrecond
from diffops.sampling.edm_sampler import edm_sampler, edm_sigma_steps, generate_images
from diffops.sampling.sample_set import seed_chunks


def test_sigma_steps_schedule():
    t = edm_sigma_steps(18, 0.002, 80.0, 7.0)
    assert t.dtype == torch.float64 and t.shape == (19,)
    assert abs(t[0].item() - 80.0) < 1e-9 and abs(t[17].item() - 0.002) < 1e-12 and t[18] == 0
    assert (t[1:] < t[:-1]).all()
    # Eq. 5 at an interior step.
    i = 5
    expected = (80 ** (1 / 7) + i / 17 * (0.002 ** (1 / 7) - 80 ** (1 / 7))) ** 7
    assert abs(t[i].item() - expected) < 1e-9


class CountingDenoiser(torch.nn.Module):
    """D(x; sigma) = 0: the exact denoiser when all data sit at the origin."""

    def __init__(self):
        super().__init__()
        self.calls = 0

    def forward(self, x, sigma):
        self.calls += 1
        return torch.zeros_like(x)


def test_heun_nfe_is_2n_minus_1_and_exact_for_point_mass():
    D = CountingDenoiser()
    x = edm_sampler(D, torch.randn(2, 3, 4, 4), num_steps=10)
    assert D.calls == 2 * 10 - 1
    assert torch.allclose(x, torch.zeros_like(x))          # data = {0}: the ODE ends exactly at 0


class Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 3, 3, padding=1)

    def forward(self, x, c_noise):
        return self.conv(x) * c_noise.reshape(-1, 1, 1, 1)


def test_images_depend_only_on_their_seed():
    torch.manual_seed(0)
    D = EDMPrecond(Tiny())
    kw = dict(num_steps=4, S_churn=10.0)                      # churn also draws per-seed noise
    all_at_once = generate_images(D, [3, 4, 5, 6], 8, **kw)
    one_by_one = torch.cat([generate_images(D, [s], 8, **kw) for s in [3, 4, 5, 6]])
    reordered = generate_images(D, [6, 5], 8, **kw)
    assert all_at_once.dtype == torch.uint8
    torch.testing.assert_close(all_at_once, one_by_one, atol=1, rtol=0)
    torch.testing.assert_close(reordered, all_at_once[[3, 2]], atol=1, rtol=0)
    assert not torch.equal(all_at_once[0], all_at_once[1])


def test_seed_chunks_cover_every_seed_once_for_any_world_size():
    seeds = list(range(100, 1100))
    for world in (1, 2, 3):
        got = sorted(s for r in range(world) for c in seed_chunks(seeds, 64, r, world) for s in c)
        assert got == seeds

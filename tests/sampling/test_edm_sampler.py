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


def nvlabs_edm_sampler(net, latents, randn_like, num_steps, sigma_min, sigma_max, rho, S_churn, S_min, S_max,
                       S_noise):
    """NVlabs/edm generate.py's edm_sampler, typed again from the reference (round_sigma is the identity
    for EDMPrecond): the churn noise is drawn at every step, gamma = 0 outside [S_min, S_max]."""
    import numpy as np
    step_indices = torch.arange(num_steps, dtype=torch.float64, device=latents.device)
    t_steps = (sigma_max ** (1 / rho) + step_indices / (num_steps - 1) * (sigma_min ** (1 / rho)
               - sigma_max ** (1 / rho))) ** rho
    t_steps = torch.cat([t_steps, torch.zeros_like(t_steps[:1])])
    x_next = latents.to(torch.float64) * t_steps[0]
    for i, (t_cur, t_next) in enumerate(zip(t_steps[:-1], t_steps[1:])):
        x_cur = x_next
        gamma = min(S_churn / num_steps, np.sqrt(2) - 1) if S_min <= t_cur <= S_max else 0
        t_hat = t_cur + gamma * t_cur
        x_hat = x_cur + (t_hat ** 2 - t_cur ** 2).sqrt() * S_noise * randn_like(x_cur)
        denoised = net(x_hat.to(torch.float32), t_hat.to(torch.float32).expand(len(x_hat))).to(torch.float64)
        d_cur = (x_hat - denoised) / t_hat
        x_next = x_hat + (t_next - t_hat) * d_cur
        if i < num_steps - 1:
            denoised = net(x_next.to(torch.float32), t_next.to(torch.float32).expand(len(x_hat))).to(torch.float64)
            d_prime = (x_next - denoised) / t_next
            x_next = x_hat + (t_next - t_hat) * (0.5 * d_cur + 0.5 * d_prime)
    return x_next


def test_churn_in_a_sigma_window_matches_nvlabs_bit_for_bit():
    from diffops.sampling.edm_sampler import StackedRandomGenerator
    torch.manual_seed(0)
    D = EDMPrecond(Tiny())
    kw = dict(num_steps=8, sigma_min=0.002, sigma_max=80.0, rho=7.0, S_churn=40.0, S_min=0.05, S_max=1.0,
              S_noise=1.003)                                      # churn on only some of the steps
    seeds = [0, 1, 2]
    outs = []
    for sampler in (edm_sampler, nvlabs_edm_sampler):
        rnd = StackedRandomGenerator("cpu", seeds)
        latents = rnd.randn([3, 3, 8, 8])
        outs.append(sampler(D, latents, randn_like=rnd.randn_like, **kw))
    assert torch.equal(outs[0], outs[1])

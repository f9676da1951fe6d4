"""training/asyrp.py: Delta h trains at the steps t >= t_edit only, from detached x_t, and lowers its loss."""
import pytest
import torch

from diffops.diffusion.ddpm import DDPMSchedule
from diffops.diffusion.edm import EDMPrecond
from diffops.nets.delta_h import delta_block_for
from diffops.nets.unet import build_unet
from diffops.sampling.asyrp import asyrp_timesteps
from diffops.training.asyrp import train_delta_h

pytestmark = pytest.mark.usefixtures("one_thread")


def test_delta_h_walks_t0_down_to_t_edit_and_learns_a_direction():
    torch.manual_seed(0)
    D = EDMPrecond(build_unet(8, [8, 8], [False, True], norm_num_groups=4)).eval().requires_grad_(False)
    net = delta_block_for(D.net)
    x_T, x0 = torch.randn(4, 3, 8, 8), torch.zeros(4, 3, 8, 8)
    brighter = lambda P, x0: (-P.mean(), {})                  # noqa: E731  a toy direction: raise the mean pixel
    seen = []
    steps = train_delta_h(D, net, brighter, x_T, x0, DDPMSchedule(), asyrp_timesteps(10), t_edit=500, epochs=3,
                          batch_size=2, optimizer="adamw", lr=1e-2, lr_step_epochs=2, lr_gamma=0.5,
                          weight_decay=0.0, lambda_dir=1.0, lambda_rec=0.1, on_step=lambda s, m: seen.append(m))
    ts = sorted({m["t"] for m in seen}, reverse=True)
    assert ts == [999, 888, 777, 666, 555] and steps == 3 * 2 * 5 == len(seen)   # the steps t >= t_edit
    assert [m["lr"] for m in seen][::10] == [1e-2, 1e-2, 5e-3]                       # StepLR once per epoch
    first, last = seen[:10], seen[-10:]
    assert sum(m["loss_direction"] for m in last) < sum(m["loss_direction"] for m in first)
    assert not net.training and all(p.grad is not None for p in net.parameters())

"""nets/delta_h.py: Asyrp's DeltaBlock sized from the UNet and the edited decoder pass."""
import pytest
import torch

from diffops.nets.delta_h import DeltaBlock, delta_block_for, h_space_shape, unet_with_delta_h
from diffops.nets.unet import build_unet, unet_encode

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("resolution, channels, attention, expected", [
    (16, [8, 16], [False, True], (16, 8, 8)),
    (32, [16, 32, 64], [False, False, True], (64, 8, 8)),     # the quickstart UNet
    (32, [8, 8, 16, 16], [False, False, False, True], (16, 4, 4)),
])
def test_h_space_and_delta_block_shapes_come_from_the_unet(resolution, channels, attention, expected):
    unet = build_unet(resolution, channels, attention, norm_num_groups=4).eval()
    assert h_space_shape(unet) == expected
    x, t = torch.randn(2, 3, resolution, resolution), torch.tensor([0.1, 1.0])
    with torch.no_grad():
        h_in, skips, emb = unet_encode(unet, x, t)
        h = unet.mid_block(h_in, emb)
        block = delta_block_for(unet)
        assert h.shape[1:] == expected and block(h, emb).shape == h.shape
    assert block.temb_proj.in_features == emb.shape[1] and block.norm.num_groups == 4
    assert block.conv1.kernel_size == (1, 1) and block.conv2.kernel_size == (1, 1)


def test_edited_pass_with_zero_delta_h_is_the_plain_unet_exactly():
    torch.manual_seed(0)
    unet = build_unet(16, [8, 16], [False, True], norm_num_groups=4).eval()
    x, t = torch.randn(3, 3, 16, 16), torch.tensor([0.3, -1.0, 2.0])
    with torch.no_grad():
        F_x, F_edit, h, dh = unet_with_delta_h(unet, x, t, lambda h, emb: torch.zeros_like(h))
        assert torch.equal(F_edit, F_x) and torch.equal(dh, torch.zeros_like(h))
        # The parts are UNet2DModel.forward's ops (up to the contiguous copies unet_encode makes).
        torch.testing.assert_close(F_x, unet(x, t).sample, rtol=1e-5, atol=1e-5)
        F_none, F_same, _, none = unet_with_delta_h(unet, x, t, None)
        assert none is None and F_same is F_none and torch.equal(F_none, F_x)
        F_x2, F_moved, _, _ = unet_with_delta_h(unet, x, t, lambda h, emb: torch.ones_like(h))
        assert torch.equal(F_x2, F_x) and not torch.allclose(F_moved, F_x)   # the edit moves only the edited pass


def test_delta_block_is_the_reference_layers_and_reads_the_time_embedding():
    torch.manual_seed(0)
    block = DeltaBlock(channels=8, temb_dim=12, groups=4)
    h = torch.randn(2, 8, 4, 4)
    a, b = block(h, torch.zeros(2, 12)), block(h, torch.ones(2, 12))
    assert a.shape == h.shape and not torch.allclose(a, b)
    x = block.conv1(h) + block.temb_proj(torch.nn.functional.silu(torch.ones(2, 12)))[:, :, None, None]
    torch.testing.assert_close(b, block.conv2(torch.nn.functional.silu(block.norm(x))))

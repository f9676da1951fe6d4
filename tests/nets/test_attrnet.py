"""AttrNet: shapes at the supported resolutions, feature dimension, gradient flow."""

import pytest
import torch

from diffops.nets.attrnet import AttrNet

@pytest.mark.parametrize('resolution', [16, 32, 64])
def test_shapes(resolution):
    net = AttrNet(num_attributes=5, width=8, feature_dim=24)
    x = torch.rand(3, 3, resolution, resolution, generator=torch.Generator().manual_seed(0)) * 2 - 1
    assert net.features(x).shape == (3, 24)
    assert net(x).shape == (3, 5)

def test_forward_is_head_of_features():
    net = AttrNet(num_attributes=4, width=8, feature_dim=16).eval()
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    torch.testing.assert_close(net(x), net.head(net.features(x)))

def test_default_widths():
    net = AttrNet(num_attributes=11)
    assert net.feature_dim == 64
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [32, 32, 64, 64, 128, 128]
    assert sum(c.stride == (2, 2) for c in convs) == 3

def test_gradients_flow():
    net = AttrNet(num_attributes=3, width=8, feature_dim=16)
    x = torch.rand(4, 3, 16, 16) * 2 - 1
    y = torch.randint(0, 2, (4, 3)).float()
    torch.nn.functional.binary_cross_entropy_with_logits(net(x), y).backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name

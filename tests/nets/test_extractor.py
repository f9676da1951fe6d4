"""TimeAttrNet: the noise-aware, time-conditioned extractor of the TIW-DSM discriminator."""
import torch

from diffops.nets.discriminator import TimeDiscriminator
from diffops.nets.extractor import TimeAttrNet


def test_shapes_and_head_on_features():
    net = TimeAttrNet(num_attributes=5, width=8, feature_dim=24, time_dim=16).eval()
    x, tau = torch.randn(3, 3, 16, 16), torch.tensor([0.01, 0.3, 1.0])
    assert net.features(x, tau).shape == (3, 24) and net(x, tau).shape == (3, 5)
    torch.testing.assert_close(net(x, tau), net.head(net.features(x, tau)))
    torch.testing.assert_close(net.features(x, torch.tensor(0.3)), net.features(x, torch.full([3], 0.3)))  # broadcast


def test_tau_changes_the_features():
    torch.manual_seed(0)
    net = TimeAttrNet(num_attributes=3, width=8, feature_dim=16, time_dim=8).eval()
    x = torch.randn(4, 3, 8, 8)
    a, b = net.features(x, torch.full([4], 0.05)), net.features(x, torch.full([4], 0.8))
    assert (a - b).abs().max() > 1e-3
    per_image = net.features(x, torch.tensor([0.05, 0.8, 0.05, 0.8]))       # each image its own tau
    torch.testing.assert_close(per_image[0::2], a[0::2])
    torch.testing.assert_close(per_image[1::2], b[1::2])


def test_discriminator_passes_tau_to_the_frozen_extractor():
    torch.manual_seed(0)
    net = TimeDiscriminator(TimeAttrNet(3, width=8, feature_dim=16, time_dim=8), hidden=8, time_dim=8,
                            resolution=8).train()
    assert not net.extractor.training and all(not p.requires_grad for p in net.extractor.parameters())
    x = torch.randn(2, 3, 16, 16, requires_grad=True)                        # resized to the extractor's 8 px
    tau = torch.tensor([0.1, 0.9])
    phi = net.features(x, tau)
    torch.testing.assert_close(phi, net.extractor.features(
        torch.nn.functional.interpolate(x, size=8, mode="bilinear", align_corners=False), tau))
    logit = net(x, tau)
    assert logit.shape == (2,)
    (grad,) = torch.autograd.grad(logit.sum(), x)                           # guidance / TIW need grad_x log w
    assert grad.abs().sum() > 0

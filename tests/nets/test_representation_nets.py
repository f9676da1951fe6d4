"""nets/encoder.py, nets/shift_decoder.py and the UNet in parts (nets/unet.py)."""
import torch

from diffops.nets.encoder import Encoder
from diffops.nets.shift_decoder import ShiftDecoder
from diffops.nets.unet import build_unet, unet_decode, unet_encode

SPEC = dict(resolution=16, block_channels=[8, 16], attention=[False, True], layers_per_block=1, norm_num_groups=4,
            dropout=0.0)


def test_encoder_is_the_reference_celeba64_encoder():
    assert sum(p.numel() for p in Encoder(64, 512).parameters()) == 1_487_104     # CELEBA64Encoder's count
    assert Encoder(32, 64, width=8)(torch.randn(2, 3, 32, 32)).shape == (2, 64)
    assert Encoder(8, 16, width=8)(torch.randn(2, 3, 8, 8)).shape == (2, 16)


def test_unet_in_two_halves_is_unet2dmodel_forward():
    torch.manual_seed(0)
    unet = build_unet(**SPEC).eval()
    x, t = torch.randn(3, 3, 16, 16), torch.tensor([0.3, -1.0, 2.0])
    with torch.no_grad():
        torch.testing.assert_close(unet_decode(unet, *unet_encode(unet, x, t)), unet(x, t).sample, rtol=1e-5, atol=1e-5)


def test_shift_decoder_is_zero_at_init_and_a_z_conditioned_twin_of_the_decoder():
    torch.manual_seed(0)
    unet = build_unet(**SPEC).eval()
    G = ShiftDecoder(SPEC, latent_dim=6).eval()
    x, t, z = torch.randn(2, 3, 16, 16), torch.tensor([0.1, 1.5]), torch.randn(2, 6)
    with torch.no_grad():
        feats = unet_encode(unet, x, t)
        assert torch.equal(G(*feats, z), torch.zeros(2, 3, 16, 16))
        # With the frozen decoder's weights and the z modulation switched off, G is that decoder exactly.
        decoder = {k: v for k, v in unet.state_dict().items()
                   if k.split(".")[0] in ("mid_block", "up_blocks", "conv_norm_out", "conv_out")}
        missing = G.load_state_dict(decoder, strict=False).missing_keys
        assert all(k.startswith(("z_embed", "z_proj")) for k in missing)
        for proj in G.z_proj:
            torch.nn.init.zeros_(proj[1].weight)
            torch.nn.init.zeros_(proj[1].bias)
        torch.testing.assert_close(G(*feats, z), unet(x, t).sample, rtol=1e-6, atol=1e-6)
        torch.nn.init.normal_(G.z_proj[0][1].weight)
        assert not torch.allclose(G(*feats, z), G(*feats, -z))       # z modulates the output


def test_shift_decoder_trains_on_frozen_channels_last_skips():
    # Attention blocks leave channels-last features; backward through G from them used to segfault (torch 2.13).
    unet = build_unet(**SPEC).requires_grad_(False)
    with torch.no_grad():
        feats = unet_encode(unet, torch.randn(8, 3, 16, 16), torch.randn(8))
    G = ShiftDecoder(SPEC, latent_dim=6)
    torch.nn.init.normal_(G.conv_out.weight)
    z = torch.randn(8, 6, requires_grad=True)
    G(*feats, z).square().mean().backward()
    assert z.grad is not None and all(p.grad is not None for p in G.parameters())

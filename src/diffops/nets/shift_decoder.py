"""PDAE's trainable "shift" branch G_psi(x_t, z, t) on a frozen diffusers UNet2DModel.

PDAE (ckczzj/PDAE `model/unet/shift_unet.py`, reused by DiTi) duplicates the decoder half of the
pre-trained UNet: a fresh middle block, fresh output blocks and a zero-initialised output conv, fed
with the *frozen* encoder half's skip activations and the frozen timestep embedding, and conditioned
on z through a second adaptive GroupNorm in every ResBlock:

    h <- (1 + z_scale) * AdaGN_t(h) + z_shift,     (z_scale, z_shift) = Linear(SiLU(Linear(z)))

Here the backbone is diffusers' UNet2DModel (nets/unet.py), whose ResnetBlock2D adds the timestep
embedding before GroupNorm ("default" time_embedding_norm), so AdaGN_t(h) = GN(h + temb) and z enters
as the outer scale/shift, exactly where PDAE puts it. nets/unet.py runs the frozen UNet in two halves
(unet_encode, unet_decode) so that one pass of the encoder half feeds both decoders.
Pure modules: they know nothing of noise levels beyond the scalar timestep they are given.
"""
from __future__ import annotations

import torch
from torch import nn

from .unet import build_unet


# ----------------------------------------------------------------------------

def _resnet_z(block, x: torch.Tensor, temb: torch.Tensor, z_mod: torch.Tensor) -> torch.Tensor:
    """diffusers ResnetBlock2D.forward ("default" time norm) with PDAE's z scale/shift after norm2."""
    h = block.conv1(block.nonlinearity(block.norm1(x)))
    h = h + block.time_emb_proj(block.nonlinearity(temb))[:, :, None, None]
    z_scale, z_shift = z_mod[:, :, None, None].chunk(2, dim=1)
    h = (1 + z_scale) * block.norm2(h) + z_shift
    h = block.conv2(block.dropout(block.nonlinearity(h)))
    if block.conv_shortcut is not None:
        x = block.conv_shortcut(x)
    return (x + h) / block.output_scale_factor


class ShiftDecoder(nn.Module):
    """G(h, skips, emb, z): a z-conditioned twin of the UNet's decoder half, zero output at init."""

    def __init__(self, unet_spec: dict, latent_dim: int):
        super().__init__()
        twin = build_unet(**unet_spec)                 # same architecture, fresh weights (PDAE: strict=False load)
        self.mid_block, self.up_blocks = twin.mid_block, twin.up_blocks
        self.conv_norm_out, self.conv_act, self.conv_out = twin.conv_norm_out, twin.conv_act, twin.conv_out
        nn.init.zeros_(self.conv_out.weight)           # G = 0 at the start: the frozen DPM is untouched
        nn.init.zeros_(self.conv_out.bias)
        temb_dim = twin.time_embedding.linear_2.out_features
        self.latent_dim = latent_dim
        self.z_embed = nn.Linear(latent_dim, temb_dim)                     # PDAE's label_emb
        self.z_proj = nn.ModuleList()                                      # PDAE's emb_z_layers, one per ResBlock
        for block in self._resnets():
            if block.time_embedding_norm != "default" or block.upsample is not None or block.downsample is not None:
                raise ValueError("ShiftDecoder supports UNet2DModel ResnetBlock2D with default time norm only")
            self.z_proj.append(nn.Sequential(nn.SiLU(), nn.Linear(temb_dim, 2 * block.out_channels)))

    def _resnets(self):
        yield from self.mid_block.resnets
        for block in self.up_blocks:
            yield from block.resnets

    def forward(self, h: torch.Tensor, skips: tuple, emb: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        z_emb = self.z_embed(z)
        z_mods = iter([proj(z_emb) for proj in self.z_proj])
        # Middle block: resnet, then (attention, resnet) pairs (UNetMidBlock2D.forward).
        mid = self.mid_block
        h = _resnet_z(mid.resnets[0], h, emb, next(z_mods))
        for attn, resnet in zip(mid.attentions, mid.resnets[1:]):
            if attn is not None:
                h = attn(h, temb=emb).contiguous()
            h = _resnet_z(resnet, h, emb, next(z_mods))
        # Up blocks: concatenate the frozen skip, resnet, optional attention; then upsample (UpBlock2D / AttnUpBlock2D).
        for block in self.up_blocks:
            attentions = getattr(block, "attentions", [None] * len(block.resnets))
            for resnet, attn in zip(block.resnets, attentions):
                h = torch.cat([h, skips[-1]], dim=1)
                skips = skips[:-1]
                h = _resnet_z(resnet, h, emb, next(z_mods))
                if attn is not None:
                    h = attn(h).contiguous()
            for up in block.upsamplers or []:
                h = up(h)
        return self.conv_out(self.conv_act(self.conv_norm_out(h)))

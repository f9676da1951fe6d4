"""The UNet backbone: a diffusers UNet2DModel built from the `model` params block.

The network knows nothing about noise levels beyond the scalar it is given (DiT's seam): the
diffusion method decides what that scalar is (EDM feeds c_noise = ln(sigma) / 4).

The forward pass also runs in parts (UNet2DModel.forward, for the block types build_unet uses), so that one
pass of the encoder half feeds several decoders: PDAE's shift branch (nets/shift_decoder.py) reads the
middle block's input, Asyrp's h-space (nets/delta_h.py) is the middle block's output.

    unet_encode     steps 1-3: time embedding, conv_in, down blocks -> (middle-block input, skips, emb)
    unet.mid_block  step 4: -> h, Asyrp's h-space
    unet_decode_h   steps 5-6: up blocks with the skips, output conv -> F
"""
from __future__ import annotations

import torch
from diffusers import UNet2DModel


def build_unet(resolution: int, block_channels, attention, layers_per_block: int = 1,
               norm_num_groups: int = 8, dropout: float = 0.0, channels: int = 3) -> UNet2DModel:
    """UNet2DModel with len(block_channels) resolutions; attention[i] puts self-attention in level i."""
    down = tuple("AttnDownBlock2D" if a else "DownBlock2D" for a in attention)
    up = tuple("AttnUpBlock2D" if a else "UpBlock2D" for a in reversed(attention))
    return UNet2DModel(
        sample_size=resolution, in_channels=channels, out_channels=channels,
        block_out_channels=tuple(block_channels), down_block_types=down, up_block_types=up,
        layers_per_block=layers_per_block, norm_num_groups=norm_num_groups, dropout=dropout,
        attention_head_dim=None if max(block_channels) < 64 else 32,
        time_embedding_type="positional", flip_sin_to_cos=True, freq_shift=0,
    )


def unet_kwargs(model_cfg, resolution: int) -> dict:
    """The build_unet arguments from a ModelConfig; also stored beside exported weights."""
    return dict(resolution=resolution, block_channels=list(model_cfg.block_channels),
                attention=list(model_cfg.attention), layers_per_block=model_cfg.layers_per_block,
                norm_num_groups=model_cfg.norm_num_groups, dropout=model_cfg.dropout)


def unet_encode(unet: UNet2DModel, sample: torch.Tensor, timestep: torch.Tensor):
    """Steps 1-3 of UNet2DModel.forward: (h, skips, emb), h being the middle block's input."""
    timesteps = timestep.reshape(-1).to(sample.device) * torch.ones(sample.shape[0], device=sample.device)
    emb = unet.time_embedding(unet.time_proj(timesteps).to(sample.dtype))
    h = unet.conv_in(sample)
    skips = (h,)
    for block in unet.down_blocks:
        h, res = block(hidden_states=h, temb=emb)
        skips += res
    # Attention blocks leave channels-last strides; made contiguous because torch 2.13's CPU GroupNorm
    # backward segfaults on a channels-last input that does not require grad (the shift branch's case).
    return h.contiguous(), tuple(s.contiguous() for s in skips), emb


def unet_decode_h(unet: UNet2DModel, h: torch.Tensor, skips: tuple, emb: torch.Tensor) -> torch.Tensor:
    """Steps 5-6 of UNet2DModel.forward from the middle block's output h: the decoder half's output F."""
    for block in unet.up_blocks:
        res, skips = skips[-len(block.resnets):], skips[:-len(block.resnets)]
        h = block(h, res, emb)
    return unet.conv_out(unet.conv_act(unet.conv_norm_out(h)))


def unet_decode(unet: UNet2DModel, h: torch.Tensor, skips: tuple, emb: torch.Tensor) -> torch.Tensor:
    """Steps 4-6 of UNet2DModel.forward from the middle block's input h: the decoder half's output F."""
    return unet_decode_h(unet, unet.mid_block(h, emb), skips, emb)

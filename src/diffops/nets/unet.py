"""The UNet backbone: a diffusers UNet2DModel built from the `model` params block.

The network knows nothing about noise levels beyond the scalar it is given (DiT's seam): the
diffusion method decides what that scalar is (EDM feeds c_noise = ln(sigma) / 4).
"""
from __future__ import annotations

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

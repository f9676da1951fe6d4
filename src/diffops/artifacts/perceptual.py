"""Local perceptual models that Asyrp may use: a CLIP model (open_clip) for the directional CLIP loss and LPIPS
for the t_edit / t_boost rules. Both are optional packages and both load from a local path only: diffops
never downloads weights. Each missing piece is one line naming what to install or which path is missing.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch.nn import functional as F

CLIP_WEIGHT_FILES = ("open_clip_pytorch_model.bin", "open_clip_model.safetensors", "model.pt")
CLIP_MEAN, CLIP_STD = (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)  # OpenAI CLIP


@dataclass
class Clip:
    """encode_image: images in [-1, 1] (N, 3, H, W) -> unit features; encode_text: prompts -> unit features."""
    encode_image: Callable[[torch.Tensor], torch.Tensor]
    encode_text: Callable[[list[str]], torch.Tensor]


def clip_weights_file(folder: Path) -> Path:
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"asyrp.clip_model: {folder}: no such folder; put a local open_clip model there "
                                f"(one of {', '.join(CLIP_WEIGHT_FILES)}); diffops never downloads one")
    found = [folder / name for name in CLIP_WEIGHT_FILES if (folder / name).is_file()]
    if not found:
        raise FileNotFoundError(f"asyrp.clip_model: {folder}: holds none of {', '.join(CLIP_WEIGHT_FILES)}")
    return found[0]


def load_clip(folder: Path, arch: str, device="cpu") -> Clip:
    """The open_clip model `arch` with the weights in `folder`, frozen."""
    weights = clip_weights_file(folder)
    try:
        import open_clip
    except ModuleNotFoundError:
        raise ValueError("asyrp.direction clip needs the open_clip package: pip install open_clip_torch") from None
    model = open_clip.create_model(arch, pretrained=str(weights), device=device).eval().requires_grad_(False)
    tokenizer = open_clip.get_tokenizer(arch)
    side = model.visual.image_size
    side = side[0] if isinstance(side, (tuple, list)) else side
    mean = torch.tensor(CLIP_MEAN, device=device).reshape(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD, device=device).reshape(1, 3, 1, 1)

    def encode_image(x: torch.Tensor) -> torch.Tensor:
        x = F.interpolate((x + 1) / 2, size=side, mode="bicubic", align_corners=False)
        return F.normalize(model.encode_image((x - mean) / std), dim=-1)

    def encode_text(prompts: list[str]) -> torch.Tensor:
        return F.normalize(model.encode_text(tokenizer(prompts).to(device)), dim=-1)

    return Clip(encode_image, encode_text)


def load_lpips(weights: Path, device="cpu") -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """LPIPS(x, y) per image for images in [-1, 1], AlexNet variant (the reference's), from a local file that holds
    a whole lpips.LPIPS(net='alex') state dict (backbone and linear layers; nothing is downloaded)."""
    weights = Path(weights)
    if not weights.is_file():
        raise FileNotFoundError(f"asyrp.lpips_weights: {weights}: no such file (a state dict of "
                                f"lpips.LPIPS(net='alex'), backbone included); or set it to null for explicit t_edit/t_boost")
    try:
        import lpips
    except ModuleNotFoundError:
        raise ValueError("asyrp.lpips_weights needs the lpips package: pip install lpips") from None
    net = lpips.LPIPS(net="alex", pretrained=False, pnet_rand=True, verbose=False)
    net.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    net = net.eval().requires_grad_(False).to(device)
    return lambda x, y: net(x, y, normalize=False).flatten()

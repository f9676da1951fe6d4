"""A deterministic random-weight Inception-v3 file in the pt_inception-2015-12-05 layout (the real file
cannot be downloaded here). BatchNorm statistics are calibrated on one batch of smooth random images, so every
layer's activations have unit scale instead of vanishing through 94 randomly initialised convolutions."""
from pathlib import Path

import torch


def write_random_inception(path: Path, seed: int = 0) -> Path:
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    class Unloaded(FeatureExtractorInceptionV3):
        def load_state_dict(self, state_dict, strict=True, assign=False):
            return None                                   # keep PyTorch's default (seeded) initialisation

    path.parent.mkdir(parents=True, exist_ok=True)
    empty = path.with_name(path.name + ".empty")
    torch.save({}, empty)
    torch.manual_seed(seed)
    net = Unloaded("random-inception", ["2048"], feature_extractor_weights_path=str(empty))
    empty.unlink()
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.momentum = None                        # running stats = this batch's statistics
    net.train()
    low = torch.rand(8, 3, 4, 4, generator=torch.Generator().manual_seed(seed))
    smooth = torch.nn.functional.interpolate(low, size=64, mode="bilinear", align_corners=False)
    with torch.no_grad():
        net((smooth * 255).round().to(torch.uint8))
    torch.save(net.state_dict(), path)
    return path

"""Tiny DiTi/PDAE configs and fixtures shared by the DiTi/PDAE tests (methods, sampling, evaluation, stages)."""
import json
from pathlib import Path

import torch

from diffops.config import load_params
from diffops.methods import METHODS


def diti_config(**overrides):
    """8-px data, a 2-level UNet, latent_dim 8 in k = 4 chunks: a training step in milliseconds."""
    raw = {
        "data": {"resolution": 8, "crop": 8},
        "model": {"block_channels": [8, 8], "attention": [False, True], "norm_num_groups": 4},
        "train": {"num_workers": 0, "log_every_steps": 1},
        "sample": {"steps": 2, "num_images": 4, "batch_size": 4},
        "tracking": {"experiment": "test", "system_metrics": False, "log_checkpoints": "none"},
        "diti": {"latent_dim": 8, "k": 4, "encoder_width": 8, "duration_kimg": 0.008, "batch_size": 4,
                 "checkpoint_every_kimg": 0.004, "ema_halflife_kimg": 0.004, "probe_max_iter": 20, "probe_random_seeds": [0],
                 "cf_pairs": 1, "cf_encode_steps": 2, "cf_decode_steps": 2, "cf_t_from": [0, 500], "cf_t_to": [500, 1000],
                 "cf_alphas": [0.0, 1.0], "manip_dims": 2, "manip_epochs": 2, "manip_images": 2,
                 "manip_encode_steps": 2, "manip_decode_steps": 2},
    }
    for dotted, value in overrides.items():
        section, key = dotted.split(".")
        raw.setdefault(section, {})[key] = value
    return load_params(raw, methods=METHODS)


def write_edm_model(root: Path, cfg) -> Path:
    """An exported EDM model (random weights) with cfg's UNet, as the train stage writes it."""
    from diffops.training.loop import build_trainable, export_model
    from diffops.training.tracker import NullTracker
    from dataclasses import replace
    edm_cfg = replace(cfg, method=replace(cfg.method, name="edm"))
    export_model(root, edm_cfg, build_trainable(edm_cfg), NullTracker())
    return root


def write_featurenet(root: Path, attributes, resolution: int = 8) -> Path:
    """A featurenet folder (random AttrNet) in the layout of artifacts/featurenet.py."""
    from safetensors.torch import save_file
    from diffops.nets.attrnet import AttrNet
    torch.manual_seed(0)
    net = AttrNet(len(attributes), width=4, feature_dim=8)
    root.mkdir(parents=True)
    save_file(net.state_dict(), root / "attrnet.safetensors")
    (root / "featurenet.json").write_text(json.dumps({"attributes": list(attributes), "width": 4, "feature_dim": 8,
                                                      "resolution": resolution}))
    return root

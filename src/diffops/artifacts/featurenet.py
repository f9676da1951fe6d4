"""The featurenet output: attrnet.safetensors + featurenet.json (attributes, architecture, resolution,
validation scores). Its penultimate features define fd_attrnet."""
from __future__ import annotations

import json
from pathlib import Path

from safetensors.torch import save_file

from ..nets.attrnet import AttrNet
from . import load_weights, read_spec


def save_featurenet(out_dir: Path, net: AttrNet, spec: dict) -> None:
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, Path(out_dir) / "attrnet.safetensors")
    (Path(out_dir) / "featurenet.json").write_text(json.dumps(spec, indent=2))


def featurenet_spec(featurenet_dir: Path) -> dict:
    return read_spec(Path(featurenet_dir) / "featurenet.json", "the featurenet stage")


def load_featurenet(featurenet_dir: Path) -> tuple[AttrNet, list[str]]:
    """The frozen attribute net and its attribute names."""
    spec = featurenet_spec(featurenet_dir)
    net = AttrNet(len(spec["attributes"]), width=spec["width"], feature_dim=spec["feature_dim"])
    load_weights(net, Path(featurenet_dir) / "attrnet.safetensors", Path(featurenet_dir) / "featurenet.json")
    return net.eval().requires_grad_(False), spec["attributes"]

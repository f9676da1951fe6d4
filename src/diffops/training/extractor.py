"""Train the discriminator's noise-aware extractor: TimeAttrNet (nets/extractor.py) on VP-noised images.

The stand-in for ADM's noise-aware classifier that TIW-DSM's discriminator is built on: an attribute
classifier of x_tau = alpha(tau) (x0 + sigma n), tau drawn as the discriminator draws it (density
beta(tau) / sigma_vp(tau)^2 on [1e-5, 1], training/discriminator.py), trained with multi-label BCE on the
featurenet.attributes labels of the prepared train split, box-downsampled by bias_split.downsample to the
resolution the TIW losses (and so the discriminator's inputs) use.

Output folder (artifacts/discriminator.py): extractor.safetensors + extractor.json (architecture, resolution,
VP convention, held-out attribute accuracy at sigma = 0, 1, 2 on the prepared val split).
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F
from tqdm import tqdm

from ..artifacts.discriminator import save_extractor
from ..config import flatten
from ..data.bias_split import box_downsample
from ..data.celeba import ATTRIBUTE_NAMES
from ..data.prepare import load_split
from ..diffusion import vp
from ..nets.extractor import TimeAttrNet
from .discriminator import diffuse, tau_at_sigma

VAL_SIGMAS = (0.0, 1.0, 2.0)       # held-out accuracy at these EDM noise levels (0 = tau_eps)


def _split(data_dir: Path, split: str, columns: list[int], downsample: int) -> tuple[torch.Tensor, torch.Tensor]:
    images, attrs = load_split(data_dir, split)
    images = box_downsample(images, downsample)
    return torch.from_numpy(np.ascontiguousarray(images)), torch.from_numpy(attrs[:, columns].astype(np.float32))


@torch.no_grad()
def validate(net: TimeAttrNet, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 512) -> dict:
    """Mean attribute accuracy and BCE on held-out images at each of VAL_SIGMAS (one noise draw, fixed seed)."""
    out = {}
    for sigma in VAL_SIGMAS:
        g = torch.Generator().manual_seed(12345)
        bce, correct = 0.0, 0.0
        for i in range(0, len(images), batch_size):
            x0 = images[i:i + batch_size].to(torch.float32) / 127.5 - 1
            y = labels[i:i + batch_size]
            tau = tau_at_sigma(sigma, len(x0))
            logits = net(diffuse(x0, tau, g), tau)
            bce += F.binary_cross_entropy_with_logits(logits, y, reduction="sum").item()
            correct += ((logits > 0) == (y > 0.5)).sum().item()
        n = len(images) * labels.shape[1]
        out[f"val_bce_sigma{sigma:g}"], out[f"val_acc_sigma{sigma:g}"] = bce / n, correct / n
    return out


def train_extractor(cfg, data_dir, out_dir, tracker, progress: bool = True) -> dict:
    """Train TimeAttrNet on the prepared container data_dir into out_dir (the stage's temporary folder);
    report through `tracker`; return its spec."""
    e, attributes = cfg.tiw_extractor, list(cfg.featurenet.attributes)
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    meta = json.loads((data_dir / "meta.json").read_text())
    columns = [ATTRIBUTE_NAMES.index(a) for a in attributes]
    images, labels = _split(data_dir, "train", columns, cfg.bias_split.downsample)
    val_images, val_labels = _split(data_dir, "val", columns, cfg.bias_split.downsample)

    torch.manual_seed(e.seed)
    net = TimeAttrNet(len(attributes), width=e.width, feature_dim=e.feature_dim, time_dim=e.time_dim)
    optimizer = torch.optim.Adam(net.parameters(), lr=e.lr, weight_decay=e.weight_decay)
    g = torch.Generator().manual_seed(e.seed)
    B = e.batch_size

    tracker.log_params({k: v for k, v in flatten(cfg).items()
                        if k.startswith("tiw_extractor.") or k in ("featurenet.attributes", "bias_split.downsample")})
    tracker.log_dataset("prepared-train", meta["content_sha256"], data_dir, "training")
    net.train()
    t_start = t0 = time.perf_counter()
    losses = []
    for step in tqdm(range(1, e.steps + 1), desc="extractor", unit="step", disable=not progress):
        # B images, each flipped w.p. 1/2 and diffused at its own importance-sampled tau.
        idx = torch.randint(len(images), [B], generator=g)
        x0, y = images[idx].to(torch.float32) / 127.5 - 1, labels[idx]
        if e.xflip:
            flip = torch.rand([B, 1, 1, 1], generator=g) < 0.5
            x0 = torch.where(flip, x0.flip(3), x0)
        tau = vp.sample_tau_importance(B, g)
        loss = F.binary_cross_entropy_with_logits(net(diffuse(x0, tau, g), tau), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if step % e.log_every_steps == 0 or step == e.steps:
            tracker.log_metrics({"train_bce": float(np.mean(losses)),
                                 "steps_per_sec": len(losses) / (time.perf_counter() - t0)}, step=step)
            t0, losses = time.perf_counter(), []

    net.eval()
    scores = validate(net, val_images, val_labels)
    tracker.log_metrics({**scores, "train_time_sec": time.perf_counter() - t_start}, step=e.steps)
    spec = {"attributes": attributes, "width": e.width, "feature_dim": e.feature_dim, "time_dim": e.time_dim,
            "resolution": int(images.shape[-1]), "beta_min": vp.BETA_MIN, "beta_max": vp.BETA_MAX,
            "tau_eps": vp.TAU_EPS, "time_input": "999 * tau, VP-scaled input alpha * (x0 + sigma n)",
            "train": {"num_images": len(images), "steps": e.steps, "data_content_sha256": meta["content_sha256"]},
            "validation": {"num_images": len(val_images), **scores}, "mlflow_run_id": tracker.run_id}
    save_extractor(out_dir, net, spec)
    tracker.log_dict(spec, "extractor.json")
    return spec

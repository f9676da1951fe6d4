"""Train the time-dependent discriminator d(x_tau, tau) of TIW-DSM (alsdudrla10/TIW-DSM train_classifier.py).

Reference images are labelled 1, biased images 0; every step draws `batch_size` of each (1:1 batches, so
d -> p_ref / (p_ref + p_bias) and d / (1 - d) estimates p_ref / p_bias without a prior correction).
Each image is diffused at its own VP time tau drawn with density beta(tau) / sigma_vp(tau)^2 on
[1e-5, 1] (diffusion/vp.py), fed as x_tau = alpha (x0 + sigma n), and scored with binary cross-entropy.
Only the head trains; the extractor (the pipeline's attribute net) is frozen.

A checkpoint of the head is written every `checkpoint_every_steps` steps (the released code's early
checkpoints, e.g. step 500, are what it uses: early stopping regularises the ratio), each scored on the
held-out val split of D_obs. Which checkpoint the losses use is the param `tiw.discriminator_step`.

Output folder (written to `<out>.tmp`, renamed when complete):
    attrnet.safetensors, featurenet.json      a copy of the frozen extractor (the folder is self-contained)
    head-<step, 6 digits>.safetensors         the head at each checkpoint
    discriminator.json                        architecture, time convention, per-checkpoint val scores
"""
from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file
from torch.nn import functional as F
from tqdm import tqdm

from ..config import flatten
from ..data.prepare import load_split
from ..diffusion import vp
from ..artifacts.featurenet import load_featurenet
from ..nets.discriminator import TimeDiscriminator
from ..utils.io import file_sha256

VAL_REPEATS = 4            # noise draws per val image, to steady the held-out scores


def _groups(data_dir: Path, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(reference images, biased images) of one split of an obs container, uint8."""
    images, _ = load_split(data_dir, split)
    group = np.load(Path(data_dir) / f"{split}_group.npy")
    return torch.from_numpy(images[group == 1]), torch.from_numpy(images[group == 0])


def diffuse(x0: torch.Tensor, tau: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """x_tau = alpha (x0 + sigma n): the VP-scaled noisy image at VP time tau (B,)."""
    sigma = vp.sigma_from_tau(tau.to(torch.float64)).to(x0.dtype).reshape(-1, 1, 1, 1)
    n = torch.randn(x0.shape, generator=generator, device=x0.device)
    return vp.alpha_from_sigma(sigma) * (x0 + sigma * n)


@torch.no_grad()
def validate(net: TimeDiscriminator, ref: torch.Tensor, bias: torch.Tensor, batch_size: int = 512) -> dict:
    """Class-balanced BCE and accuracy on held-out images: at importance-sampled tau, and clean (tau = 1e-5)."""
    out = {}
    for name, clean in (("", False), ("_clean", True)):
        per_class = []
        for label, images in ((1.0, ref), (0.0, bias)):
            g = torch.Generator().manual_seed(12345)
            bce, correct, n = 0.0, 0.0, 0
            for _ in range(1 if clean else VAL_REPEATS):
                for i in range(0, len(images), batch_size):
                    x0 = images[i:i + batch_size].to(torch.float32) / 127.5 - 1
                    tau = (torch.full([len(x0)], vp.TAU_EPS) if clean else vp.sample_tau_importance(len(x0), g))
                    logit = net(diffuse(x0, tau, g), tau)
                    target = torch.full_like(logit, label)
                    bce += F.binary_cross_entropy_with_logits(logit, target, reduction="sum").item()
                    correct += ((logit > 0) == (target > 0.5)).sum().item()
                    n += len(x0)
            per_class.append((bce / max(n, 1), correct / max(n, 1)))
        out[f"val_bce{name}"] = (per_class[0][0] + per_class[1][0]) / 2
        out[f"val_acc{name}"] = (per_class[0][1] + per_class[1][1]) / 2
    return out


def train_discriminator(cfg, data_dir, featurenet_dir, out_dir, tracker, progress: bool = True) -> dict:
    """Train the head on data_dir (an obs container with a group column) into out_dir (the stage's temporary
    folder, in the layout of artifacts/discriminator.py); report through `tracker`; return its spec."""
    d = cfg.discriminator
    data_dir, featurenet_dir, out_dir = Path(data_dir), Path(featurenet_dir), Path(out_dir)
    meta = json.loads((data_dir / "meta.json").read_text())
    if "group" not in meta.get("extra_columns", []):
        raise ValueError(f"{data_dir}: no group column (reference / biased); run the tiw_split stage first")
    ref, bias = _groups(data_dir, "train")
    val_ref, val_bias = _groups(data_dir, "val")
    if not len(ref) or not len(bias):
        raise ValueError(f"{data_dir}: the train split needs both reference and biased images, "
                         f"got {len(ref)} and {len(bias)}")

    torch.manual_seed(d.seed)
    extractor, attributes = load_featurenet(featurenet_dir)
    resolution = json.loads((featurenet_dir / "featurenet.json").read_text()).get("resolution")
    net = TimeDiscriminator(extractor, hidden=d.hidden, time_dim=d.time_dim, resolution=resolution)
    optimizer = torch.optim.Adam(net.head.parameters(), lr=d.lr, weight_decay=d.weight_decay)
    g = torch.Generator().manual_seed(d.seed)
    B = d.batch_size

    for name in ("attrnet.safetensors", "featurenet.json"):
        shutil.copy(featurenet_dir / name, out_dir / name)
    spec = {"hidden": d.hidden, "time_dim": d.time_dim, "extractor_resolution": resolution,
            "input_resolution": int(ref.shape[-1]), "beta_min": vp.BETA_MIN, "beta_max": vp.BETA_MAX,
            "tau_eps": vp.TAU_EPS, "time_input": "999 * tau, VP-scaled input alpha * (x0 + sigma n)",
            "label": "1 = reference, 0 = biased; logit = log d / (1 - d)",
            "train": {"num_reference": len(ref), "num_biased": len(bias), "data_content_sha256": meta["content_sha256"]},
            "val": {"num_reference": len(val_ref), "num_biased": len(val_bias)}, "checkpoints": {}}

    tracker.log_params({k: v for k, v in flatten(cfg).items() if k.startswith(("discriminator.", "bias_split."))})
    tracker.log_dataset("tiw-obs", meta["content_sha256"], data_dir, "training")
    net.train()
    t0, losses = time.perf_counter(), []
    for step in tqdm(range(1, d.steps + 1), desc="discriminator", unit="step", disable=not progress):
        # 1:1 batch: B reference (label 1) and B biased (label 0), each diffused at its own tau.
        x0 = torch.cat([ref[torch.randint(len(ref), [B], generator=g)],
                        bias[torch.randint(len(bias), [B], generator=g)]]).to(torch.float32) / 127.5 - 1
        if d.xflip:
            flip = torch.rand([2 * B, 1, 1, 1], generator=g) < 0.5
            x0 = torch.where(flip, x0.flip(3), x0)
        tau = vp.sample_tau_importance(2 * B, g)
        x_tau = diffuse(x0, tau, g)
        with torch.no_grad():                      # frozen extractor: no graph through it
            phi = net.features(x_tau)
        logit = net.head(phi, tau)
        target = torch.cat([torch.ones(B), torch.zeros(B)])
        loss = F.binary_cross_entropy_with_logits(logit, target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())

        if step % d.log_every_steps == 0:
            tracker.log_metrics({"train_bce": float(np.mean(losses)),
                                "steps_per_sec": d.log_every_steps / (time.perf_counter() - t0)}, step=step)
            t0, losses = time.perf_counter(), []
        if step % d.checkpoint_every_steps == 0 or step == d.steps:
            path = out_dir / f"head-{step:06d}.safetensors"
            save_file({k: v.contiguous() for k, v in net.head.state_dict().items()}, path)
            net.eval()
            scores = validate(net, val_ref, val_bias) if len(val_ref) and len(val_bias) else {}
            net.train()
            spec["checkpoints"][str(step)] = {"file": path.name, "sha256": file_sha256(path), **scores}
            if scores:
                tracker.log_metrics(scores, step=step)
    best = min(spec["checkpoints"].items(), key=lambda kv: kv[1].get("val_bce", 0.0))[0]
    spec["best_val_bce_step"] = int(best)
    (out_dir / "discriminator.json").write_text(json.dumps(spec, indent=2))
    tracker.log_dict(spec, "discriminator.json")
    tracker.log_metrics({"best_val_bce_step": int(best)})
    return spec

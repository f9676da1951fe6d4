"""Train the time-dependent discriminator d(x_tau, tau) of TIW-DSM (alsdudrla10/TIW-DSM train_classifier.py).

Reference images are labelled 1, biased images 0; every step draws `batch_size` of each (1:1 batches, so
d -> p_ref / (p_ref + p_bias) and d / (1 - d) estimates p_ref / p_bias without a prior correction).
Each image is diffused at its own VP time tau drawn with density beta(tau) / sigma_vp(tau)^2 on
[1e-5, 1] (diffusion/vp.py), fed as x_tau = alpha (x0 + sigma n), and scored with binary cross-entropy.
Only the head trains; the extractor (the noise-aware, time-conditioned attribute net of the tiw_extractor
stage, nets/extractor.py) is frozen and sees (x_tau, tau).

A checkpoint of the head is written every `checkpoint_every_steps` steps (the released code's early
checkpoints, e.g. step 500, are what it uses: early stopping regularises the ratio), each scored on the
held-out val split of D_obs. Which checkpoint the losses use is the param `tiw.discriminator_step`.

Gates (per checkpoint, held-out val split; `gates` in its entry, pass = true):
    acc_sigma1, acc_sigma2    class-balanced accuracy at sigma = 1 and 2 exactly (tau = tau(sigma)) beats that
                              of a noisy linear probe (logistic regression on the VP-noised pixels at the same
                              sigma, trained on the train split; `probe` in discriminator.json)
    w_bias_sigma1, _sigma2,   E over biased images of w = d / (1 - d) is 1 +- W_TOLERANCE, as a calibrated
    w_bias                    ratio's is (E_bias[p_ref / p_bias] = 1); at sigma = 1, 2 and importance-sampled tau

Output folder (written to `<out>.tmp`, renamed when complete):
    extractor.safetensors, extractor.json     a copy of the frozen extractor (the folder is self-contained)
    head-<step, 6 digits>.safetensors         the head at each checkpoint
    discriminator.json                        architecture, time convention, per-checkpoint val scores, gates
"""
from __future__ import annotations

import json
import math
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
from ..artifacts.discriminator import EXTRACTOR_SPEC, EXTRACTOR_WEIGHTS, load_extractor
from ..nets.discriminator import TimeDiscriminator
from ..utils.io import file_sha256
from ..utils.logistic import fit_logistic

VAL_REPEATS = 4            # noise draws per val image, to steady the held-out scores
GATE_SIGMAS = (1.0, 2.0)   # EDM noise levels of the accuracy gates
W_TOLERANCE = 0.05         # gate: |E_bias[w] - 1| <= W_TOLERANCE
PROBE_L2 = (1.0, 0.3, 0.1)     # the linear probe's L2 strengths (sklearn C ~ 1e-4 .. 1e-3 here); the best on val counts
PROBE_EXAMPLES = 4096      # the probe's noisy training examples per class (at least)


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


def tau_at_sigma(sigma: float, n: int) -> torch.Tensor:
    """(n,) VP times of EDM noise level sigma (sigma = 0: the lower end tau_eps)."""
    if sigma == 0:
        return torch.full([n], vp.TAU_EPS)
    return vp.tau_from_sigma(torch.full([n], sigma, dtype=torch.float64)).to(torch.float32)


def _val_taus() -> dict:
    """Validation conditions: metric-name suffix -> (tau of n images given a generator, noise draws)."""
    taus = {"": (lambda n, g: vp.sample_tau_importance(n, g), VAL_REPEATS),
            "_clean": (lambda n, g: torch.full([n], vp.TAU_EPS), 1)}
    for sigma in GATE_SIGMAS:
        taus[f"_sigma{sigma:g}"] = (lambda n, g, sigma=sigma: tau_at_sigma(sigma, n), VAL_REPEATS)
    return taus


@torch.no_grad()
def validate(net: TimeDiscriminator, ref: torch.Tensor, bias: torch.Tensor, batch_size: int = 512) -> dict:
    """On held-out images, at importance-sampled tau, clean (tau = 1e-5) and at each of GATE_SIGMAS:
    class-balanced BCE and accuracy, E over biased images of w = d / (1 - d) = exp(logit) and its standard
    error over images (`val_w_bias_se`: with a few hundred biased images it is several hundredths)."""
    out = {}
    for name, (tau_of, repeats) in _val_taus().items():
        per_class = []
        for label, images in ((1.0, ref), (0.0, bias)):
            g = torch.Generator().manual_seed(12345)
            bce, correct, w = 0.0, 0.0, torch.zeros(len(images), dtype=torch.float64)
            for _ in range(repeats):
                for i in range(0, len(images), batch_size):
                    x0 = images[i:i + batch_size].to(torch.float32) / 127.5 - 1
                    tau = tau_of(len(x0), g)
                    logit = net(diffuse(x0, tau, g), tau)
                    target = torch.full_like(logit, label)
                    bce += F.binary_cross_entropy_with_logits(logit, target, reduction="sum").item()
                    correct += ((logit > 0) == (target > 0.5)).sum().item()
                    w[i:i + batch_size] += logit.to(torch.float64).exp() / repeats
            n = max(repeats * len(images), 1)
            per_class.append((bce / n, correct / n, w))
        w = per_class[1][2]                         # per biased image, its mean over the noise draws
        out[f"val_bce{name}"] = (per_class[0][0] + per_class[1][0]) / 2
        out[f"val_acc{name}"] = (per_class[0][1] + per_class[1][1]) / 2
        out[f"val_w_bias{name}"] = w.mean().item()
        out[f"val_w_bias_se{name}"] = (w.std() / math.sqrt(len(w))).item() if len(w) > 1 else float("nan")
    return out


def noisy_probe(ref, bias, val_ref, val_bias, sigma: float, seed: int = 0) -> dict:
    """A noisy linear probe of reference vs biased: L2 logistic regression (utils/logistic.py) on the VP-noised
    pixels alpha (x0 + sigma n) of the train split, each image and its mirror noised often enough that each
    class has >= PROBE_EXAMPLES examples (so the classes are near balanced); its class-balanced accuracy on the
    val split (VAL_REPEATS draws), the best over PROBE_L2 (chosen on val: an optimistic baseline)."""
    def noisy(images, g, draws, mirror=False):
        x0 = images.to(torch.float32) / 127.5 - 1
        x0 = torch.cat([x0, x0.flip(3)]) if mirror else x0
        return torch.cat([diffuse(x0, tau_at_sigma(sigma, len(x0)), g) for _ in range(draws)]).flatten(1).double()

    g = torch.Generator().manual_seed(seed)
    xr, xb = (noisy(images, g, math.ceil(PROBE_EXAMPLES / (2 * len(images))), mirror=True) for images in (ref, bias))
    x, y = torch.cat([xr, xb]), torch.cat([torch.ones(len(xr), 1), torch.zeros(len(xb), 1)]).double()
    val = {1: noisy(val_ref, g, VAL_REPEATS), 0: noisy(val_bias, g, VAL_REPEATS)}
    best, init = None, None
    for l2 in PROBE_L2:                                     # strongest first, warm-started
        W, b, _ = fit_logistic(x, y, l2, max_iter=500, init=init)
        init = (W, b)
        acc = float(np.mean([((val[c] @ W + b).squeeze(1) > 0).eq(bool(c)).double().mean() for c in (1, 0)]))
        if best is None or acc > best[0]:
            best = (acc, l2)
    return {f"probe_val_acc_sigma{sigma:g}": best[0], f"probe_l2_sigma{sigma:g}": best[1]}


def gates(scores: dict, probe: dict) -> dict:
    """Pass (True) / fail of each gate (module doc) for one checkpoint's val scores."""
    out = {f"acc_sigma{s:g}": scores[f"val_acc_sigma{s:g}"] > probe[f"probe_val_acc_sigma{s:g}"] for s in GATE_SIGMAS}
    for name in [f"_sigma{s:g}" for s in GATE_SIGMAS] + [""]:
        out[f"w_bias{name}"] = abs(scores[f"val_w_bias{name}"] - 1) <= W_TOLERANCE
    return out


def train_discriminator(cfg, data_dir, extractor_dir, out_dir, tracker, progress: bool = True) -> dict:
    """Train the head on data_dir (an obs container with a group column) over the frozen extractor of
    extractor_dir (a tiw_extractor output) into out_dir (the stage's temporary folder, in the layout of
    artifacts/discriminator.py); report through `tracker`; return its spec."""
    d = cfg.discriminator
    data_dir, extractor_dir, out_dir = Path(data_dir), Path(extractor_dir), Path(out_dir)
    meta = json.loads((data_dir / "meta.json").read_text())
    if "group" not in meta.get("extra_columns", []):
        raise ValueError(f"{data_dir}: no group column (reference / biased); run the tiw_split stage first")
    ref, bias = _groups(data_dir, "train")
    val_ref, val_bias = _groups(data_dir, "val")
    if not len(ref) or not len(bias):
        raise ValueError(f"{data_dir}: the train split needs both reference and biased images, "
                         f"got {len(ref)} and {len(bias)}")

    torch.manual_seed(d.seed)
    extractor, extractor_spec = load_extractor(extractor_dir)
    resolution = extractor_spec["resolution"]
    net = TimeDiscriminator(extractor, hidden=d.hidden, time_dim=d.time_dim, resolution=resolution)
    optimizer = torch.optim.Adam(net.head.parameters(), lr=d.lr, weight_decay=d.weight_decay)
    g = torch.Generator().manual_seed(d.seed)
    B = d.batch_size

    for name in (EXTRACTOR_WEIGHTS, EXTRACTOR_SPEC):
        shutil.copy(extractor_dir / name, out_dir / name)
    spec = {"hidden": d.hidden, "time_dim": d.time_dim, "extractor_resolution": resolution,
            "input_resolution": int(ref.shape[-1]), "beta_min": vp.BETA_MIN, "beta_max": vp.BETA_MAX,
            "tau_eps": vp.TAU_EPS, "time_input": "999 * tau, VP-scaled input alpha * (x0 + sigma n)",
            "label": "1 = reference, 0 = biased; logit = log d / (1 - d)",
            "train": {"num_reference": len(ref), "num_biased": len(bias), "data_content_sha256": meta["content_sha256"]},
            "val": {"num_reference": len(val_ref), "num_biased": len(val_bias)},
            "extractor": {"sha256": file_sha256(extractor_dir / EXTRACTOR_WEIGHTS),
                          "mlflow_run_id": extractor_spec.get("mlflow_run_id")},
            "w_tolerance": W_TOLERANCE, "probe": {}, "checkpoints": {}}

    tracker.log_params({k: v for k, v in flatten(cfg).items() if k.startswith(("discriminator.", "bias_split."))})
    tracker.log_dataset("tiw-obs", meta["content_sha256"], data_dir, "training")
    validating = bool(len(val_ref) and len(val_bias))
    if validating:                                 # the baseline of the accuracy gates
        for sigma in GATE_SIGMAS:
            spec["probe"].update(noisy_probe(ref, bias, val_ref, val_bias, sigma, seed=d.seed))
        tracker.log_metrics(spec["probe"])
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
            phi = net.features(x_tau, tau)
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
            scores = validate(net, val_ref, val_bias) if validating else {}
            net.train()
            entry = spec["checkpoints"][str(step)] = {"file": path.name, "sha256": file_sha256(path), **scores}
            if scores:
                entry["gates"] = gates(scores, spec["probe"])
                tracker.log_metrics({**scores, **{f"gate_{k}": float(v) for k, v in entry["gates"].items()}}, step=step)
    best = min(spec["checkpoints"].items(), key=lambda kv: kv[1].get("val_bce", 0.0))[0]
    spec["best_val_bce_step"] = int(best)
    (out_dir / "discriminator.json").write_text(json.dumps(spec, indent=2))
    tracker.log_dict(spec, "discriminator.json")
    tracker.log_metrics({"best_val_bce_step": int(best)})
    return spec

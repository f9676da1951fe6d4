"""Counterfactual generation and ProbMask attribute manipulation with a trained DiTi model.

Counterfactuals (yue-zhongqi/diti `eval/counterfactual_generation.py`): DDIM-invert two images A, B
with their masked z; for a set of chunks (here: the chunks whose first timestep lies in [t_from, t_to))
interpolate those chunks of z_A towards z_B with weight alpha while slerping x_T from A's to B's, and
decode with the masked DDIM sampler. Row 1 keeps A's other chunks, row 2 B's (`lerp_seg`, opp_dir).
If DiTi disentangles by time, early-t chunks change fine details and late-t chunks coarse ones.

ProbMask manipulation (`eval/manipulation.py`, `eval/src/eval_utils.py: ProMask`): standardise z with
train-split statistics, train a one-attribute linear classifier through a Gumbel-sigmoid mask whose keep
rate decays cubically from 1 to d'/d between 10 % and 40 % of training (temperature annealed 1 -> 1/0.03,
scores projected back to a sum of d * rate by bisection after every step), then edit
z_norm + scale * sqrt(d) * w / |w| with w the masked weight, de-standardise and decode from the DDIM
inversion. Deviations: the final mask is the d' highest scores (the reference samples a Bernoulli mask),
and the decoding uses DiTi's masks at every step as in training (the reference manipulation script
decodes with the unmasked z). The attribute net (featurenet stage) measures the edit: `change_rate` is
the fraction of edited images whose predicted attribute differs from the reconstruction's; the same
edit along a random direction on d' random dims is the control.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from ..methods.diti import chunk_starts
from ..sampling.ddim import masked_guided_ddim


def slerp(a: torch.Tensor, b: torch.Tensor, alpha: float) -> torch.Tensor:
    """Spherical interpolation of each sample, flattened (reference `slerp`)."""
    af, bf = a.flatten(1), b.flatten(1)
    cos = (af * bf).sum(1) / (af.norm(dim=1) * bf.norm(dim=1))
    theta = torch.arccos(cos.clamp(-1, 1)).reshape(-1, *[1] * (a.ndim - 1))
    return (torch.sin((1 - alpha) * theta) * a + torch.sin(alpha * theta) * b) / torch.sin(theta)


def chunk_mask(method, t_from: int, t_to: int) -> torch.Tensor:
    """(d,) 0/1: the chunks whose first timestep lies in [t_from, t_to); all of z for PDAE (k = 1)."""
    k_masks = getattr(method, "k_masks", None)
    if k_masks is None:
        return torch.ones(method.latent_dim)
    chosen = [i for i, start in enumerate(chunk_starts(len(k_masks), method.sched.T)) if t_from <= start < t_to]
    return k_masks[chosen].sum(0) if chosen else torch.zeros(method.latent_dim)


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    return ((x + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)


@torch.no_grad()
def counterfactual_grid(rep, x_a: torch.Tensor, x_b: torch.Tensor, t_ranges, alphas, encode_steps: int,
                        decode_steps: int, slerp_xT: bool = True, progress: bool = False):
    """Images (uint8, rows of 1 + len(alphas)) and one label per row. x_a, x_b: (P, 3, R, R) in [-1, 1].

    slerp_xT: x_T follows alpha from A's inversion to B's (reference lerpT=True); else each row keeps
    its own image's x_T, so that only the interpolated chunks of z change the picture."""
    m, D, G = rep.method, rep.D, rep.shift
    P = x_a.shape[0]
    x = torch.cat([x_a, x_b])
    z = rep.encoder(x)
    x_T = masked_guided_ddim(m, D, G, x, z, encode_steps, reverse=False, progress=progress)
    z_a, z_b, xT_a, xT_b = z[:P], z[P:], x_T[:P], x_T[P:]
    zs, xTs, labels, originals = [], [], [], []
    for p in range(P):
        for t_from, t_to in t_ranges:
            mask = chunk_mask(m, t_from, t_to)
            for base, own_xT, x0, name in ((z_a[p], xT_a[p], x_a[p], "A"), (z_b[p], xT_b[p], x_b[p], "B")):
                labels.append(f"pair {p}: chunks starting in t [{t_from}, {t_to}) ({int(mask.sum())} dims) "
                              f"lerped A -> B on {name}'s other chunks")
                originals.append(x0)
                for alpha in alphas:
                    lerp = (1 - alpha) * z_a[p] * mask + alpha * z_b[p] * mask
                    zs.append(base - base * mask + lerp)
                    xTs.append(slerp(xT_a[p:p + 1], xT_b[p:p + 1], alpha)[0] if slerp_xT else own_xT)
    decoded = to_uint8(masked_guided_ddim(m, D, G, torch.stack(xTs), torch.stack(zs), decode_steps, progress=progress))
    n = len(alphas)
    rows = [torch.cat([to_uint8(x0)[None], decoded[r * n:(r + 1) * n]]) for r, x0 in enumerate(originals)]
    return torch.cat(rows), labels


# ----------------------------------------------------------------------------
# ProbMask.

class ProbMask(nn.Module):
    """Gumbel-sigmoid mask over d dims keeping a scheduled fraction (reference ProMask, constant init 1)."""

    def __init__(self, dims: int, keep: int, max_iters: int, pr_start: float = 0.1, pr_end: float = 0.4):
        super().__init__()
        self.dims, self.keep, self.max_iters = dims, keep, max_iters
        self.pr_start, self.pr_end, self.min_pr = pr_start, pr_end, keep / dims
        self.scores = nn.Parameter(torch.ones(dims))
        self.temp, self.pr, self.subnet = 1.0, 1.0, None
        self.adjust(0)

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        if self.training:
            u0, u1 = torch.rand(2, self.dims, generator=generator)
            eps = 1e-20
            noise = -torch.log(torch.log(u0 + eps) / torch.log(u1 + eps) + eps)     # logistic noise
            logit = torch.log(self.scores + eps) - torch.log(1 - self.scores + eps)
            return x * torch.sigmoid((logit + noise) * self.temp)
        return x * self.subnet

    def adjust(self, it: int) -> None:
        """Temperature 1 -> 1/0.03; keep rate 1 until pr_start, cubic decay to d'/d until pr_end."""
        self.temp = 1 / ((1 - 0.03) * (1 - it / self.max_iters) + 0.03)
        ts, te = int(self.pr_start * self.max_iters), int(self.pr_end * self.max_iters)
        if it < ts:
            self.pr = 1.0
        elif it < te:
            self.pr = self.min_pr + (1 - self.min_pr) * (1 - (it - ts) / (te - ts)) ** 3
        else:
            self.pr = self.min_pr

    @torch.no_grad()
    def constrain(self) -> None:
        """Project the scores to sum(clamp(scores - v, 0, 1)) = d * pr (bisection on v, as the reference)."""
        target = self.dims * self.pr
        f = lambda v: (self.scores - v).clamp(0, 1).sum() - target           # noqa: E731
        v = 0.0
        if f(0.0) >= 0:
            a, b = 0.0, float(self.scores.max())
            for _ in range(20):
                v = (a + b) / 2
                obj = float(f(v))
                if abs(obj) < 1e-3:
                    break
                a, b = (v, b) if obj > 0 else (a, v)
        self.scores.sub_(max(v, 0.0)).clamp_(0, 1)

    def fix(self) -> None:
        self.subnet = torch.zeros(self.dims)
        self.subnet[self.scores.detach().topk(self.keep).indices] = 1.0


def train_probmask_classifier(z: torch.Tensor, y: torch.Tensor, keep: int, *, epochs: int, lr: float,
                              batch_size: int = 128, seed: int = 0):
    """Masked linear classifier on standardised z (N, d), labels y (N,). Returns (classifier, mask)."""
    g = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        classifier = nn.Linear(z.shape[1], 1)
    steps_per_epoch = math.ceil(len(z) / batch_size)
    mask = ProbMask(z.shape[1], keep, epochs * steps_per_epoch + 1)
    opt = torch.optim.Adam(list(classifier.parameters()) + list(mask.parameters()), lr=lr)
    it = 0
    for _ in range(epochs):
        order = torch.randperm(len(z), generator=g)
        for i in range(0, len(z), batch_size):
            idx = order[i:i + batch_size]
            loss = F.binary_cross_entropy_with_logits(classifier(mask(z[idx], g))[:, 0], y[idx].float())
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(mask.parameters(), 3)
            opt.step()
            it += 1
            mask.adjust(it)
            mask.constrain()
    mask.eval()
    mask.fix()
    return classifier, mask


@torch.no_grad()
def manipulate(rep, attrnet, attr_index: int, train_images: torch.Tensor, train_y: torch.Tensor,
               test_images: torch.Tensor, test_y: torch.Tensor, *, keep: int, epochs: int, lr: float, scale: float,
               num_images: int, encode_steps: int, decode_steps: int, seed: int = 0, progress: bool = False):
    """Edit test images without the attribute towards it. Returns (metrics, grid images uint8, ncols)."""
    from .probe import average_precision
    from .featurenet import extract
    z_train = rep.encode(train_images)
    mean, std = z_train.mean(0), z_train.std(0).clamp_min(1e-6)
    with torch.enable_grad():
        classifier, mask = train_probmask_classifier((z_train - mean) / std, train_y, keep, epochs=epochs, lr=lr, seed=seed)
    z_test = rep.encode(test_images)
    clf_ap = average_precision(test_y.numpy(), classifier(mask((z_test - mean) / std))[:, 0].numpy())

    pick = torch.nonzero(test_y == 0)[:num_images, 0]
    x = test_images[pick].to(torch.float32) / 127.5 - 1
    z = z_test[pick]
    d = z.shape[1]
    w = (classifier.weight[0] * mask.subnet)
    step = scale * math.sqrt(d) * w / w.norm()
    g = torch.Generator().manual_seed(seed)
    rand_dims = torch.randperm(d, generator=g)[:keep]
    r = torch.zeros(d)
    r[rand_dims] = torch.randn(keep, generator=g)
    rand_step = scale * math.sqrt(d) * r / r.norm()
    z_edit, z_rand = ((z - mean) / std + step) * std + mean, ((z - mean) / std + rand_step) * std + mean

    m, D, G = rep.method, rep.D, rep.shift
    x_T = masked_guided_ddim(m, D, G, x, z, encode_steps, reverse=False, progress=progress)
    decoded = masked_guided_ddim(m, D, G, torch.cat([x_T] * 3), torch.cat([z, z_edit, z_rand]), decode_steps,
                                 progress=progress)
    n = len(pick)
    recon, edited, randomed = (to_uint8(decoded[i * n:(i + 1) * n]) for i in range(3))
    original = test_images[pick]
    pred = {name: extract(attrnet, imgs, 500)[1][:, attr_index] > 0.5
            for name, imgs in (("original", original), ("recon", recon), ("edited", edited), ("random", randomed))}
    metrics = {"manip_classifier_test_ap": clf_ap, "manip_num_images": n,
               "manip_rate_original": float(pred["original"].mean()), "manip_rate_recon": float(pred["recon"].mean()),
               "manip_rate_edited": float(pred["edited"].mean()), "manip_rate_random": float(pred["random"].mean()),
               "manip_change_rate": float((pred["edited"] != pred["recon"]).mean()),
               "manip_change_rate_random": float((pred["random"] != pred["recon"]).mean()),
               "manip_mask_dims": [int(i) for i in torch.nonzero(mask.subnet)[:, 0]]}
    cols = min(n, 8)
    grid = torch.cat([original[:cols], recon[:cols], edited[:cols], randomed[:cols]])
    return metrics, grid, cols

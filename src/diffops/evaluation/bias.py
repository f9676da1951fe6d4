"""Bias of generated images: subgroup proportions vs the unbiased distribution, and the TIW-DSM results table.

Subgroups are the 2^k combinations of `bias_split.attributes` (data/bias_split.py). A sample's subgroup is
read by the attribute net (probability > 0.5 per attribute); the unbiased distribution is the test split,
classified by the same net, so that classifier errors affect both sides alike (the label proportions are
reported too). Images smaller than the net's resolution (the quickstart's 16 px split) are bilinearly
resized to it, samples and references alike, before features and attributes are read. The bias metric is the total-variation distance

    subgroup_tv = 1/2 sum_g | p_samples(g) - p_test(g) |          (0 = unbiased, 1 = disjoint)

reported with `fd_attrnet`, the Fréchet distance to the test split in the attribute net's features (not FID),
and `subgroup_confidence`, the mean over images of prod_j max(p_j, 1 - p_j) for the subgroup attributes:
how sure the net is of the subgroups it reads. Samples far from the data (short trainings) get low
confidence, and then their proportions say more about the classifier than about the model.
`subgroup_tv_se` is the bootstrap standard error of subgroup_tv over the sample images (the test proportions
held fixed).

The headline bias reads each biased attribute's rate (Blond_Hair by default: an attribute the models
reproduce at their budget; the 4-subgroup TV over Male x Black_Hair was polluted by Male, which the net
reads on immature samples far more often than the data has it):

    rate.<a>  = fraction of images whose p(a) > 0.5,      rate_se.<a> = sqrt(rate (1 - rate) / n)
    bias      = mean over bias_split.attributes of |rate.<a> - rate of the test split|
    bias_se   = sqrt(sum_a rate_se.<a>^2) / k            (binomial; the test rates are the fixed target)

With one attribute, bias equals subgroup_tv. The table's validity gate: dsm_obs's rates must reproduce
D_obs's and dsm_ref's D_ref's within 2 combined standard errors (a model that cannot reproduce its own
training data's rate says nothing about debiasing); `bias` is reported for the losses only where the
gate holds, and `tiw_dsm_bias_gap_in_se` is the dsm_obs - tiw_dsm bias gap in combined standard errors.
The results table has the shape of the paper's (method rows; FD and subgroup proportions as columns), plus
data rows for scale: the test split itself, D_obs and D_ref.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from ..data.bias_split import box_downsample, proportions, subgroup_ids, subgroup_names
from ..data.prepare import load_split
from ..sampling.sample_set import read_sample_set
from .featurenet import extract, to_resolution
from ..artifacts.featurenet import load_featurenet
from .frechet import fd_features

LOSSES = ("dsm_ref", "dsm_obs", "iw_dsm", "tiw_dsm")      # the paper's table rows, in its order
GUIDED = "dsm_obs_dg"     # dsm_obs sampled with discriminator guidance: the discriminator's own gate


def predicted_subgroups(probs: np.ndarray, net_attributes, attributes) -> np.ndarray:
    """Subgroup ids from attribute probabilities (N, A): bit j = [p(attribute_j) > 0.5]."""
    cols = [list(net_attributes).index(a) for a in attributes]
    return sum(((probs[:, c] > 0.5).astype(np.int64) << j) for j, c in enumerate(cols))


def subgroup_confidence(probs: np.ndarray, net_attributes, attributes) -> float:
    """Mean over images of prod_j max(p_j, 1 - p_j) over the subgroup attributes (1 = certain, 2^-k = chance)."""
    cols = [list(net_attributes).index(a) for a in attributes]
    p = probs[:, cols]
    return float(np.maximum(p, 1 - p).prod(axis=1).mean()) if len(p) else 0.0


def total_variation(p, q) -> float:
    return 0.5 * float(np.abs(np.asarray(p) - np.asarray(q)).sum())


def bootstrap_tv_se(groups: np.ndarray, num_groups: int, reference, num_resamples: int = 1000, seed: int = 0) -> float:
    """Standard error of total_variation(proportions(groups), reference) over bootstrap resamples of the
    images (reference held fixed): how much of a difference in subgroup_tv the sample count can resolve."""
    if len(groups) < 2:
        return float("nan")
    rng = np.random.default_rng(seed)
    onehot = np.eye(num_groups)[groups]                                 # (n, G)
    idx = rng.integers(0, len(groups), (num_resamples, len(groups)))
    props = onehot[idx].mean(axis=1)                                    # (num_resamples, G)
    return float((0.5 * np.abs(props - np.asarray(reference)).sum(axis=1)).std(ddof=1))


class BiasScorer:
    """The attribute net and the test split's features / subgroup proportions, computed once."""

    def __init__(self, cfg, data_dir, featurenet_dir):
        torch.manual_seed(0)
        self.net, self.net_attributes = load_featurenet(featurenet_dir)
        self.resolution = json.loads((Path(featurenet_dir) / "featurenet.json").read_text()).get("resolution")
        self.attributes = list(cfg.bias_split.attributes)
        self.num_groups = 2 ** len(self.attributes)
        self.batch_size = cfg.evaluate.batch_size
        images, attrs = load_split(data_dir, "test")
        self.test_features, probs = self.extract(images)
        self.test_proportions = proportions(self.groups(probs), self.num_groups)
        self.test_rates = self.rates(probs)
        self.test_confidence = subgroup_confidence(probs, self.net_attributes, self.attributes)
        self.test_label_proportions = proportions(subgroup_ids(attrs, self.attributes), self.num_groups)

    def extract(self, images: np.ndarray):
        x = to_resolution(torch.from_numpy(np.ascontiguousarray(images)), self.resolution)
        return extract(self.net, x, self.batch_size)

    def groups(self, probs: np.ndarray) -> np.ndarray:
        return predicted_subgroups(probs, self.net_attributes, self.attributes)

    def rates(self, probs: np.ndarray) -> dict[str, float]:
        """Fraction of images the net reads as having each bias_split attribute (p > 0.5)."""
        return {a: float((probs[:, list(self.net_attributes).index(a)] > 0.5).mean()) for a in self.attributes}

    def score(self, images: np.ndarray, with_fd: bool = True) -> dict:
        features, probs = self.extract(images)
        groups = self.groups(probs)
        p = proportions(groups, self.num_groups)
        rates, n = self.rates(probs), len(images)
        se = {a: float(np.sqrt(r * (1 - r) / n)) for a, r in rates.items()}
        out = {"bias": float(np.mean([abs(r - self.test_rates[a]) for a, r in rates.items()])),
               "bias_se": float(np.sqrt(sum(v ** 2 for v in se.values())) / len(se)),
               **{f"rate.{a}": r for a, r in rates.items()}, **{f"rate_se.{a}": v for a, v in se.items()},
               "subgroup_tv": total_variation(p, self.test_proportions), "num_images": len(images),
               "subgroup_tv_se": bootstrap_tv_se(groups, self.num_groups, self.test_proportions),
               "subgroup_confidence": subgroup_confidence(probs, self.net_attributes, self.attributes),
               **{f"subgroup.g{g}": v for g, v in enumerate(p)}}
        if with_fd:
            out["fd_attrnet"] = fd_features(features, self.test_features)
        return out


def score_loss(scorer: BiasScorer, samples_dir, loss: str) -> dict:
    """One loss's row: fd_attrnet and subgroup proportions of its samples vs the test split."""
    return {"loss": loss, **scorer.score(read_sample_set(samples_dir)), "num_reference": len(scorer.test_features)}


def results_table(cfg, scorer: BiasScorer, data_dir, losses: dict, prepared_dir=None) -> dict:
    """The table of every loss's row (losses: loss -> score_loss(...)) with data rows: the test split itself,
    D_obs and D_ref of the obs container data_dir (its ref sibling is read too), and, with prepared_dir
    (the unsplit container), the FD floor: as many unbiased real images as samples."""
    data_dir = Path(data_dir)
    n = max((m["num_images"] for m in losses.values()), default=cfg.tiw.sample_num_images)

    # Data rows at the samples' count where there are enough images (FD depends on the count).
    rng = np.random.default_rng(0)
    obs, _ = load_split(data_dir, "train")
    group = np.load(data_dir / "train_group.npy")
    ref_dir = data_dir.parent / "ref"
    ref, _ = load_split(ref_dir, "train") if (ref_dir / "meta.json").exists() else (obs[group == 1], None)
    pick = np.sort(rng.permutation(len(obs))[:n])
    data_rows = {
        "test (unbiased)": {"subgroup_tv": 0.0, **{f"rate.{a}": r for a, r in scorer.test_rates.items()},
                            **{f"subgroup.g{g}": v for g, v in enumerate(scorer.test_proportions)},
                            "num_images": len(scorer.test_features), "subgroup_confidence": scorer.test_confidence},
        "test labels": {"subgroup_tv": total_variation(scorer.test_label_proportions, scorer.test_proportions),
                        **{f"subgroup.g{g}": v for g, v in enumerate(scorer.test_label_proportions)},
                        "num_images": len(scorer.test_features)},
        "D_obs": scorer.score(obs[pick]),
        "D_ref": scorer.score(ref, with_fd=len(ref) >= n),
    }
    if prepared_dir is not None:
        real, _ = load_split(prepared_dir, "train")
        real = real[np.sort(rng.permutation(len(real))[:n])]
        real = box_downsample(real, real.shape[-1] // obs.shape[-1])
        data_rows["real (unbiased)"] = scorer.score(real)
    rows = {k: {kk: vv for kk, vv in v.items() if kk != "loss"} for k, v in losses.items()}
    checks = gated_checks(rows, data_rows, scorer.attributes)
    return {"subgroups": subgroup_names(scorer.attributes), "attributes": scorer.attributes, "losses": rows,
            "data": data_rows, "checks": checks, "num_test": len(scorer.test_features)}


def gated_checks(rows: dict, data_rows: dict, attributes, max_se: float = 2.0) -> dict:
    """The validity gate's verdicts and, where it holds, the dsm_obs - tiw_dsm bias gap in combined standard
    errors and the FD comparison. Where the gate fails, `bias` and `bias_se` are removed from rows."""
    gate = validity_gate(rows, data_rows, attributes, max_se)
    checks = {f"{loss}_reproduces_{data}": ok for (loss, data), ok in gate.items()}
    if gate and not all(gate.values()):
        for row in rows.values():                                   # no bias reading where the gate fails
            row.pop("bias", None), row.pop("bias_se", None)
    if {GUIDED, "dsm_obs"} <= set(rows) and "test (unbiased)" in data_rows:
        checks |= guidance_checks(rows["dsm_obs"], rows[GUIDED], data_rows["test (unbiased)"], attributes)
    if {"tiw_dsm", "dsm_obs"} <= set(rows) and rows["tiw_dsm"].get("bias_se") is not None:
        tiw, obs = rows["tiw_dsm"], rows["dsm_obs"]
        se = np.hypot(obs["bias_se"], tiw["bias_se"])
        checks |= {"tiw_dsm_bias_gap_in_se": round(float((obs["bias"] - tiw["bias"]) / se), 2) if se > 0 else None,
                   "tiw_dsm_fd_at_most_dsm_obs": tiw["fd_attrnet"] <= obs["fd_attrnet"]}
    return checks


def guidance_checks(obs: dict, guided: dict, test: dict, attributes, most: float = 0.5) -> dict:
    """How far discriminator guidance moves dsm_obs's rate towards the unbiased rate, per attribute
    (rate_dg - rate_obs) / (rate_test - rate_obs): 0 = not at all, 1 = all the way, averaged over the
    attributes; the gate asks for most of the way (>= `most`). None where dsm_obs already has the test rate."""
    fractions = [(guided[f"rate.{a}"] - obs[f"rate.{a}"]) / (test[f"rate.{a}"] - obs[f"rate.{a}"])
                 for a in attributes if test[f"rate.{a}"] != obs[f"rate.{a}"]]
    if not fractions:
        return {"guidance_fraction_of_the_way": None, "guidance_moves_most_of_the_way": None}
    fraction = float(np.mean(fractions))
    return {"guidance_fraction_of_the_way": round(fraction, 3), "guidance_moves_most_of_the_way": fraction >= most}


def validity_gate(rows: dict, data_rows: dict, attributes, max_se: float = 2.0) -> dict:
    """(loss, data) -> whether the loss's samples reproduce that data set's rate of every attribute within
    max_se combined binomial standard errors: dsm_obs against D_obs, dsm_ref against D_ref."""
    gate = {}
    for loss, data in (("dsm_obs", "D_obs"), ("dsm_ref", "D_ref")):
        if loss in rows and data in data_rows:
            m, d = rows[loss], data_rows[data]
            gate[(loss, data)] = all(abs(m[f"rate.{a}"] - d[f"rate.{a}"])
                                     <= max_se * np.hypot(m[f"rate_se.{a}"], d[f"rate_se.{a}"]) for a in attributes)
    return gate


def _pm(value, se=None, scale: float = 1, digits: int = 3) -> str:
    """'value ± se' for a table cell ('' when there is no value)."""
    if value is None:
        return ""
    return f"{scale * value:.{digits}f}" + (f" ± {scale * se:.{digits}f}" if se is not None else "")


def markdown_table(table: dict) -> str:
    """Rows: losses then data; columns: fd_attrnet, each biased attribute's rate (in %) ± its binomial
    standard error, bias ± its standard error, subgroup_tv ± its bootstrap one, one proportion per subgroup
    (in %), confidence."""
    names, attributes = table["subgroups"], table.get("attributes", [])
    head = ("| | fd_attrnet | " + "".join(f"{a} % | " for a in attributes) + "bias | subgroup_tv | "
            + " | ".join(names) + " | confidence | images |")
    lines = [head, "|" + "---|" * (len(names) + len(attributes) + 6)]
    for section in ("losses", "data"):
        for row, m in table[section].items():
            cells = [_pm(m.get("fd_attrnet"))]
            cells += [_pm(m.get(f"rate.{a}"), m.get(f"rate_se.{a}"), 100, 1) for a in attributes]
            cells += [_pm(m.get("bias"), m.get("bias_se")), _pm(m.get("subgroup_tv"), m.get("subgroup_tv_se"))]
            cells += [f"{100 * m[f'subgroup.g{g}']:.1f}" for g in range(len(names))]
            cells += [_pm(m.get("subgroup_confidence"), digits=2), str(m["num_images"])]
            lines.append(f"| {row} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def seeds_table(tables: list[dict], max_se: float = 2.0) -> dict:
    """The comparison over training seeds from one results_table per seed (same split, test set and scorer).

    Per loss and attribute a: rate = mean over seeds; bias = mean over seeds of |rate_s - test rate|, and
    bias_se = sd over seeds / sqrt(n), which holds the training seed's spread and the sampling noise alike.
    The validity gate (gated_checks) compares dsm_obs's (dsm_ref's) mean rate with D_obs's (D_ref's) within
    max_se combined standard errors; `bias` is left out where it fails, as in results_table."""
    attributes, n = tables[0]["attributes"], len(tables)
    test = tables[0]["data"]["test (unbiased)"]
    losses = {}
    for loss in tables[0]["losses"]:
        rows = [t["losses"][loss] for t in tables]
        gaps = np.array([np.mean([abs(r[f"rate.{a}"] - test[f"rate.{a}"]) for a in attributes]) for r in rows])
        fds = np.array([r["fd_attrnet"] for r in rows])
        se_of = lambda v: float(v.std(ddof=1) / np.sqrt(n)) if n > 1 else None              # noqa: E731
        out = {"n_seeds": n, "bias": float(gaps.mean()), "bias_se": se_of(gaps), "bias_per_seed": gaps.tolist(),
               "fd_attrnet": float(fds.mean()), "fd_attrnet_se": se_of(fds)}
        for a in attributes:
            rates = np.array([r[f"rate.{a}"] for r in rows])
            out[f"rate.{a}"] = float(rates.mean())
            out[f"rate_se.{a}"] = float(rates.std(ddof=1) / np.sqrt(n)) if n > 1 else rows[0][f"rate_se.{a}"]
        losses[loss] = out
    data = {k: tables[0]["data"][k] for k in ("test (unbiased)", "D_obs", "D_ref") if k in tables[0]["data"]}
    checks = gated_checks(losses, data, attributes, max_se)
    return {"attributes": attributes, "n_seeds": n, "losses": losses, "data": data, "checks": checks}


def seeds_markdown(table: dict) -> str:
    """Rows: losses then data; columns: fd_attrnet, rate (in %) and bias, each ± its standard error."""
    attributes = table["attributes"]
    lines = ["| | fd_attrnet | " + "".join(f"{a} % | " for a in attributes) + "bias | seeds |",
             "|" + "---|" * (len(attributes) + 4)]
    for section in ("losses", "data"):
        for row, m in table[section].items():
            cells = [_pm(m.get("fd_attrnet"), m.get("fd_attrnet_se"), digits=2)]
            cells += [_pm(m.get(f"rate.{a}"), m.get(f"rate_se.{a}"), 100, 1) for a in attributes]
            cells += [_pm(m.get("bias"), m.get("bias_se")), str(m.get("n_seeds", ""))]
            lines.append(f"| {row} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"

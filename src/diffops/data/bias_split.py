"""Biased and reference sets from a prepared container: the weak-supervision setting of TIW-DSM.

D_obs = D_bias ∪ D_ref (Choi et al. 2020; Kim et al. 2024): a large set from a biased distribution and
a small reference set from the data distribution. Subgroups are the 2^k combinations of k binary
attributes (e.g. Male x Black_Hair); subgroup g is the integer whose bit j is attribute j.

Construction, for the train and the val split separately (val gives the discriminator a held-out set):
  1. n_ref rows drawn uniformly at random: the reference set, unbiased by construction;
  2. of the remaining rows, each subgroup g keeps round(keep_g * count_g) rows drawn at random, with
     keep_g proportional to factor^-(number of listed attributes that are 1 in g), the largest 1: every
     listed attribute's positives are under-represented by `factor` relative to its negatives
     (factor > 1), or over-represented by 1 / factor (factor < 1: the negatives are thinned);
  3. n_ref = reference_fraction * n_bias (solved before drawing, so that the ratio holds); on the val
     split n_ref = n_bias, so that the discriminator's held-out scores rest on as many reference images
     as biased ones (val is never trained on).
The test split is copied unchanged: it is the unbiased distribution that evaluation compares with.
Images are box-downsampled by the integer factor `downsample`: the quickstart compares its four losses
at 16 px, where a small UNet learns the subgroups within its budget.

Output (written to `<out>.tmp`, renamed when complete):
    out/obs/    prepared container of D_obs (train and val), with the extra column `group`
                ({split}_group.npy, uint8: 1 = reference, 0 = biased); test = the full test split
    out/ref/    prepared container of D_ref only (group all 1), for DSM on the reference set
    out/split.json   the construction and the realised subgroup proportions of every set
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from ..utils.io import atomic_dir
from .celeba import ATTRIBUTE_NAMES
from .prepare import FORMAT, load_split

GROUP_REFERENCE = 1            # group column: 1 = reference, 0 = biased


def subgroup_ids(attrs: np.ndarray, attributes) -> np.ndarray:
    """Subgroup of each row of attrs (N, 40) in {0, 1}: sum_j attrs[:, attribute_j] * 2^j."""
    cols = [ATTRIBUTE_NAMES.index(a) for a in attributes]
    return sum((attrs[:, c].astype(np.int64) << j) for j, c in enumerate(cols))


def subgroup_names(attributes) -> list[str]:
    """Readable names of the 2^k subgroups, e.g. 'Male=0,Black_Hair=1' for g = 2."""
    return [",".join(f"{a}={(g >> j) & 1}" for j, a in enumerate(attributes)) for g in range(2 ** len(attributes))]


def keep_probabilities(num_attributes: int, factor: float) -> np.ndarray:
    """keep_g = factor^-popcount(g) / max_g factor^-popcount(g), shape (2^k,)."""
    keep = np.array([factor ** -bin(g).count("1") for g in range(2**num_attributes)])
    return keep / keep.max()


def proportions(groups: np.ndarray, num_groups: int) -> list[float]:
    counts = np.bincount(groups, minlength=num_groups)
    return (counts / max(len(groups), 1)).tolist()


def split_rows(groups: np.ndarray, num_groups: int, factor: float, reference_fraction: float,
               rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(reference row indices, biased row indices), both sorted, disjoint."""
    keep = keep_probabilities(int(np.log2(num_groups)), factor)
    n = len(groups)
    expected_bias = float((keep[groups]).sum())                 # n_bias if every row were available
    # n_ref = f * n_bias with n_bias ~ expected_bias * (n - n_ref) / n  =>  n_ref = f E / (1 + f E / n)
    n_ref = int(round(reference_fraction * expected_bias / (1 + reference_fraction * expected_bias / n)))
    order = rng.permutation(n)
    ref, rest = np.sort(order[:n_ref]), order[n_ref:]
    biased = []
    for g in range(num_groups):
        rows = rest[groups[rest] == g]                          # already in random order
        biased.append(rows[:int(round(keep[g] * len(rows)))])
    return ref, np.sort(np.concatenate(biased))


def box_downsample(images: np.ndarray, f: int) -> np.ndarray:
    """uint8 (N, C, R, R) -> (N, C, R/f, R/f) by averaging f x f blocks, rounded."""
    R = images.shape[-1]
    if f == 1:
        return images
    if R % f:
        raise ValueError(f"downsample {f} does not divide the resolution {R}")
    resolution = R // f
    n, c = images.shape[:2]
    x = images.reshape(n, c, resolution, f, resolution, f).astype(np.float32).mean(axis=(3, 5))
    return np.round(x).astype(np.uint8)


def _write_container(root: Path, splits: dict, meta_extra: dict) -> str:
    """splits: name -> (images, attrs, files, group or None). Returns the content sha256."""
    root.mkdir(parents=True)
    sha, counts = hashlib.sha256(), {}
    extra = []
    for split, (images, attrs, files, group) in splits.items():
        images, attrs = np.ascontiguousarray(images), np.ascontiguousarray(attrs)
        np.save(root / f"{split}_images.npy", images)
        np.save(root / f"{split}_attrs.npy", attrs)
        (root / f"{split}_files.txt").write_text("".join(f + "\n" for f in files))
        sha.update(images.tobytes())
        sha.update(attrs.tobytes())
        if group is not None:
            np.save(root / f"{split}_group.npy", group.astype(np.uint8))
            sha.update(group.astype(np.uint8).tobytes())
            extra = ["group"]
        counts[split] = len(attrs)
    if extra and any(g is None for *_, g in splits.values()):
        raise ValueError("every split of a container needs the group column once one has it")
    meta = {"format": FORMAT, "resolution": int(next(iter(splits.values()))[0].shape[-1]), "counts": counts,
            "attribute_names": list(ATTRIBUTE_NAMES), "extra_columns": extra,
            "content_sha256": sha.hexdigest(), **meta_extra}
    (root / "meta.json").write_text(json.dumps(meta, indent=2))
    return meta["content_sha256"]


def bias_split(prepared_dir, out_dir, attributes, factor: float, reference_fraction: float, seed: int,
               downsample: int = 1) -> dict:
    """Write out_dir/{obs, ref, split.json} from a prepared container (see module doc); return split.json."""
    prepared_dir, out_dir = Path(prepared_dir), Path(out_dir)
    attributes = list(attributes)
    num_groups = 2 ** len(attributes)
    source = json.loads((prepared_dir / "meta.json").read_text())
    report = {"attributes": attributes, "subgroups": subgroup_names(attributes), "factor": factor,
              "reference_fraction": reference_fraction, "seed": seed, "downsample": downsample,
              "keep_probability": keep_probabilities(len(attributes), factor).tolist(),
              "source_content_sha256": source["content_sha256"], "splits": {}}
    obs, ref = {}, {}
    for i, split in enumerate(("train", "val")):
        images, attrs = load_split(prepared_dir, split)
        images = box_downsample(images, downsample)
        files = (prepared_dir / f"{split}_files.txt").read_text().splitlines()
        groups = subgroup_ids(attrs, attributes)
        fraction = reference_fraction if split == "train" else 1.0
        r, b = split_rows(groups, num_groups, factor, fraction, np.random.default_rng([seed, i]))
        rows = np.concatenate([r, b])
        rows_sorted = np.sort(rows)
        group = np.isin(rows_sorted, r).astype(np.uint8)          # 1 = reference
        obs[split] = (images[rows_sorted], attrs[rows_sorted], [files[j] for j in rows_sorted], group)
        ref[split] = (images[r], attrs[r], [files[j] for j in r], np.full(len(r), GROUP_REFERENCE, np.uint8))
        report["splits"][split] = {
            "num_all": len(groups), "num_reference": len(r), "num_biased": len(b),
            "realised_reference_fraction": len(r) / max(len(b), 1),
            "proportions_all": proportions(groups, num_groups),
            "proportions_reference": proportions(groups[r], num_groups),
            "proportions_biased": proportions(groups[b], num_groups),
            "proportions_obs": proportions(groups[rows], num_groups)}
    images, attrs = load_split(prepared_dir, "test")
    images = box_downsample(images, downsample)
    test_files = (prepared_dir / "test_files.txt").read_text().splitlines()
    report["splits"]["test"] = {"num_all": len(attrs),
                                "proportions_all": proportions(subgroup_ids(attrs, attributes), num_groups)}
    for container in (obs, ref):     # test: the unbiased distribution (group column 1 = "reference-like")
        container["test"] = (images, attrs, test_files, np.full(len(attrs), GROUP_REFERENCE, np.uint8))

    report["resolution"] = int(images.shape[-1])
    bias_meta = {"source": str(prepared_dir.resolve()), "bias_split": {k: report[k] for k in
                 ("attributes", "factor", "reference_fraction", "seed", "downsample", "resolution", "source_content_sha256")}}
    empty = [f"{name}/{split}" for name, c in (("obs", obs), ("ref", ref)) for split in ("train", "val")
             if len(c[split][1]) == 0]
    if empty:                   # the TIW stages train and validate on each of them
        raise ValueError(f"bias_split: {', '.join(empty)} would be empty ({prepared_dir}: "
                         f"{report['splits']['train']['num_all']} train images); raise bias_split.reference_fraction "
                         f"or move bias_split.factor toward 1, or prepare more images. Nothing was written")
    with atomic_dir(out_dir) as tmp:
        report["obs_content_sha256"] = _write_container(tmp / "obs", obs, {**bias_meta, "set": "obs"})
        report["ref_content_sha256"] = _write_container(tmp / "ref", ref, {**bias_meta, "set": "ref"})
        (tmp / "split.json").write_text(json.dumps(report, indent=2))
    return report

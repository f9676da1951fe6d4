"""dvc stage `diti_probe`: the linear probe (evaluation/probe.py) of every trained representation, of the
baselines and of DiTi's time-chunks, with the effect DiTi - random in pooled standard deviations.

Representations are grouped by method (diti.json): several training seeds of a method give its mean and
sample sd. Baselines: the encoder architecture as initialised under each of diti.probe_random_seeds
(`random`), the pixels PCA-reduced to the code's dimension (`pca_pixels`) and, with --full-pixels, all
pixels (`pixels`, an upper reference). The chunk-wise probe reads the dims of the DiTi chunks whose first
timestep lies in each [diti.cf_t_from, diti.cf_t_to) (the counterfactual rows' groups) and the same dims
of PDAE's code, which has no time order (the control). Each model's numbers go into its training run; the
comparison into the first one's.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import click
import mlflow
import numpy as np
import torch

from ..artifacts.representation import Representation
from ..config.diti import chunk_starts
from ..data.celeba import ATTRIBUTE_NAMES
from ..data.prepare import load_split
from ..data.synthetic_celeba import COARSE_ATTRIBUTES, DRAWN_ATTRIBUTES, FINE_ATTRIBUTES
from ..evaluation.probe import encode_splits, pca_features, probe_features
from ..tracking.mlflow_run import tracked_run
from ..training.loop import build_trainable
from ..utils.io import write_json_atomic
from .common import PARAMS, load, path, output_file

LOGGED = ("probe_map", "probe_map_drawn", "probe_map_undrawn", "probe_map_coarse", "probe_map_fine",
          "val_map", "l2", "participation_ratio")
EFFECT_METRIC = "probe_map_drawn"


def aggregate(results: list[dict]) -> dict:
    """Mean of each number over results (seeds), its sample sd as <key>_sd, n_seeds; test_ap averaged."""
    out = {"n_seeds": len(results)}
    for key in results[0]:
        if key == "test_ap":
            out[key] = {a: float(np.mean([r[key][a] for r in results])) for a in results[0][key]}
        else:
            values = np.array([r[key] for r in results], dtype=np.float64)
            out[key] = float(values.mean())
            out[f"{key}_sd"] = float(values.std(ddof=1)) if len(values) > 1 else 0.0
    return out


def chunk_groups(spec: dict, t_from, t_to) -> dict[str, list[int]]:
    """{"t<from>-<to>": dims of the chunks whose first timestep lies in [from, to)} of a DiTi spec."""
    ends = spec["chunk_ends"]
    starts, prev = chunk_starts(len(ends)), [0] + ends[:-1]
    return {f"t{lo}-{hi}": [d for s, a, b in zip(starts, prev, ends) if lo <= s < hi for d in range(a, b)]
            for lo, hi in zip(t_from, t_to)}


def random_encoder(rep_cfg, seed: int):
    """The encoder exactly as training seed `seed` initialises it (same RNG order as build_trainable)."""
    cfg = replace(rep_cfg, train=replace(rep_cfg.train, seed=seed))
    with torch.random.fork_rng(devices=[]):
        return build_trainable(cfg).extra["encoder"].eval().requires_grad_(False)


def effect(reps: dict, treated: str, control: str = "random", metric: str = EFFECT_METRIC) -> dict | None:
    if treated not in reps or control not in reps:
        return None
    a, b = reps[treated], reps[control]
    dof = a["n_seeds"] + b["n_seeds"] - 2                 # pooled sd: sqrt(((n_a-1) s_a^2 + (n_b-1) s_b^2) / dof)
    pooled = float(np.sqrt(((a["n_seeds"] - 1) * a[f"{metric}_sd"] ** 2 + (b["n_seeds"] - 1) * b[f"{metric}_sd"] ** 2)
                           / dof)) if dof > 0 else None
    diff = a[metric] - b[metric]
    return {"metric": metric, "difference": diff, "pooled_sd": pooled,
            "in_pooled_sd": diff / pooled if pooled else None,
            "n_seeds": a["n_seeds"], "n_seeds_control": b["n_seeds"]}


def run(cfg, data_dir: Path, model_dirs: list[Path], metrics_path: Path, baselines: bool = True,
        progress: bool = True, plots=None, full_pixels: bool = False) -> dict:
    """Writes metrics_path (per representation: the mAPs, their sd over seeds, the chosen L2; the chunk-wise
    probe; the effects) and plots (per-attribute test AP); logs into the representations' runs."""
    splits = {s: load_split(data_dir, s) for s in ("train", "val", "test")}
    say = print if progress else (lambda *a, **k: None)
    reps = [Representation(m) for m in model_dirs]
    per_seed, runs, features = {}, [], []
    for model_dir, rep in zip(model_dirs, reps):
        feats = encode_splits(splits, rep.encoder)
        result = probe_features(cfg, splits, feats)
        per_seed.setdefault(rep.spec["method"], []).append(result)
        runs.append((rep.spec["method"], rep.run_id, result))
        features.append((rep, feats))
        say(_line(f"{rep.spec['method']} ({Path(model_dir).name})", result))
    if baselines:
        latent_dim = reps[0].cfg.diti.latent_dim
        for seed in cfg.diti.probe_random_seeds:
            per_seed.setdefault("random", []).append(
                probe_features(cfg, splits, encode_splits(splits, random_encoder(reps[0].cfg, seed))))
            say(_line(f"random (init seed {seed})", per_seed["random"][-1]))
        pixels = pca_features(encode_splits(splits, None))
        per_seed["pca_pixels"] = [probe_features(cfg, splits, pixels, columns=list(range(latent_dim)))]
        say(_line(f"pixels (PCA {latent_dim})", per_seed["pca_pixels"][0]))
        if full_pixels:                        # every non-degenerate pixel direction: minutes on a CPU
            per_seed["pixels"] = [probe_features(cfg, splits, pixels)]
            say(_line("pixels (all)", per_seed["pixels"][0]))
    results = {name: aggregate(rs) for name, rs in per_seed.items()}
    chunks = _chunk_probe(cfg, splits, features, say)
    report = {"split_sizes": {s: int(len(v[1])) for s, v in splits.items()},
              "attributes": {"drawn": list(DRAWN_ATTRIBUTES), "coarse": list(COARSE_ATTRIBUTES),
                             "fine": list(FINE_ATTRIBUTES)},
              "representations": {n: {k: v for k, v in r.items() if k != "test_ap"} for n, r in results.items()},
              "effects": {f"{n}_minus_random": e for n in ("diti", "pdae") if (e := effect(results, n))},
              "chunks": chunks}
    write_json_atomic(Path(metrics_path), report)
    positive_rate = {a: float(r) for a, r in zip(ATTRIBUTE_NAMES, splits["test"][1].mean(0))}
    if plots is not None:
        write_json_atomic(Path(plots), [{"attribute": a, "test_positive_rate": positive_rate[a],
                                         **{name: r["test_ap"][a] for name, r in results.items()}}
                                        for a in ATTRIBUTE_NAMES])
    _log(cfg, runs, results, Path(metrics_path), {**report, "test_positive_rate": positive_rate})
    return report


def _chunk_probe(cfg, splits, features, say) -> dict:
    """{method: {group: aggregate over that method's seeds}} on the first DiTi model's chunk groups."""
    diti = next((rep for rep, _ in features if rep.spec["method"] == "diti"), None)
    if diti is None:
        return {}
    groups = chunk_groups(diti.spec, cfg.diti.cf_t_from, cfg.diti.cf_t_to)
    out = {}
    for rep, feats in features:
        for group, dims in groups.items():
            if dims:
                r = probe_features(cfg, splits, feats, columns=dims)
                out.setdefault(rep.spec["method"], {}).setdefault(group, []).append(
                    {k: r[k] for k in ("probe_map_drawn", "probe_map_coarse", "probe_map_fine", "feature_dim")})
    for method, by_group in out.items():
        for group, rs in by_group.items():
            by_group[group] = aggregate(rs)
            say(f"chunks {method:>5} {group:>10} ({by_group[group]['feature_dim']:.0f} dims): coarse "
                f"{by_group[group]['probe_map_coarse']:.4f}  fine {by_group[group]['probe_map_fine']:.4f}")
    return out


def _line(name: str, r: dict) -> str:
    return (f"probe {name:>24}: mAP drawn {r['probe_map_drawn']:.4f}  undrawn {r['probe_map_undrawn']:.4f}"
            f"  (l2 {r['l2']:g}, PR {r['participation_ratio']:.1f}, {r['lbfgs_iterations']} it)")


def _log(cfg, runs: list, results: dict, metrics_path: Path, report: dict) -> None:
    probe_params = {f"diti.{k}": str(getattr(cfg.diti, k))
                    for k in ("probe_l2", "probe_max_iter", "probe_random_seeds")}
    for i, (method, run_id, result) in enumerate(runs):
        if not run_id:
            continue
        with tracked_run(cfg.tracking.experiment, run_id=run_id):
            mlflow.log_metrics({k: float(v) for k, v in result.items() if k in LOGGED})
            mlflow.set_tags({f"probed_with.{k}": v for k, v in probe_params.items()})
            if i == 0:                               # the first run holds the comparison (means over seeds)
                mlflow.log_metrics({f"{k}.{n}": float(v) for n, r in results.items() for k, v in r.items()
                                    if k in LOGGED or k.removesuffix("_sd") in LOGGED})
                mlflow.log_artifact(str(metrics_path), "probe")
                mlflow.log_dict(report, "probe/report.json")


@click.command("probe")
@PARAMS
@click.option("--data", type=path(exists=True), default="data/prepared", show_default=True)
@click.option("--model", "models", type=path(exists=True), multiple=True, default=["models/diti", "models/pdae"],
              show_default=True, help="Trained representations (repeat; several seeds of a method are averaged); "
              "the first run receives the comparison.")
@click.option("--metrics", type=output_file(), default="metrics/diti_probe.json", show_default=True)
@click.option("--no-baselines", is_flag=True, help="Skip the random-encoder and pixel baselines.")
@click.option("--full-pixels", is_flag=True, help="Also probe all pixels (the upper reference; slow on a CPU).")
@click.option("--plots", type=output_file(), default=None,
              help="Write the per-attribute test APs here (JSON rows for `dvc plots`), e.g. plots/diti/probe_ap.json.")
def command(params_path, data, models, metrics, no_baselines, full_pixels, plots):
    """Linear probe (mean AP over the 40 attributes) of DiTi, PDAE, random encoders and the pixels.

    \b
    Example:  diffops diti probe --model models/diti --model models/pdae --metrics metrics/diti_probe.json
    """
    run(load(params_path), data, [Path(m) for m in models], metrics, baselines=not no_baselines, plots=plots,
        full_pixels=full_pixels)

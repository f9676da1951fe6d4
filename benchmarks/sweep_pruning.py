"""Compute saved by pruning: one small study run twice, without and with the median pruner.

    .venv/bin/python benchmarks/sweep_pruning.py              # ~5 min on 2 shared CPU cores

Setup (in a temp folder): synthetic CelebA-format faces -> prepared at 16 px -> a small attribute net
(the fd_attrnet feature space), as the quickstart pipeline does. The study is the EDM baseline's
(train.lr log-uniform, train.ema_halflife_kimg, edm.P_mean, edm.P_std) with a short budget: 2 kimg of
training with a checkpoint every 0.5 kimg, then 256 samples at 10 steps for the final fd_attrnet. With
pruning, each checkpoint reports fd_attrnet on 64 samples at 4 steps and the median pruner (after 2
startup trials) stops trials worse than the median of earlier trials at the same step, from the
checkpoint at --warmup-kimg on (default 2: the 1-kimg proxy is too noisy here to prune on).

Both runs use a random sampler with the same seed, so they draw the same candidate params in the same
order and differ only in pruning (TPE would adapt to pruned trials' values and draw other candidates).
Each trial runs the real diffops.sweeps objective (train -> sample -> evaluate, MLflow runs included) in
this process, and records images trained, images sampled (the sweep's own samples: intermediate sets and
the final set) and wall seconds. "To reach the best" sums them over the trials up to the first one that
reached the run's best value.
"""
from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import yaml

STUDY = {
    "data": {"resolution": 16, "num_workers": 2},
    "featurenet": {"width": 16, "feature_dim": 32, "epochs": 3},
    "model": {"block_channels": [16, 32], "attention": [False, False], "norm_num_groups": 8},
    "train": {"batch_size": 32, "lr_rampup_kimg": 0.2, "log_every_steps": 20, "num_workers": 0},
    "sample": {"steps": 10, "batch_size": 128},
    "evaluate": {"batch_size": 256},
    "tracking": {"experiment": "bench-sweep-pruning", "system_metrics": False},
    "sweep": {"budget": ["train.duration_kimg=3", "train.checkpoint_every_kimg=1", "train.grid_every_kimg=3",
                         "sample.num_images=256", "evaluate.untrained_baseline=false",
                         "tracking.log_checkpoints=none"],
              "sampler": "random", "sampler_seed": 0, "pruner_startup_trials": 2, "pruner_warmup_kimg": 0.0,
              "intermediate_num_images": 128, "intermediate_steps": 6},
}


def prepare(work: Path, num_images: int) -> tuple[Path, Path]:
    if (work / "featurenet" / "featurenet.json").exists():         # --workdir of an earlier run: reuse
        return work / "prepared", work / "featurenet"
    from diffops.config import load_params
    from diffops.data.prepare import prepare_celeba
    from diffops.data.synthetic_celeba import generate_celeba_like
    from diffops.stages.featurenet import run as train_featurenet
    cfg = load_params({k: v for k, v in STUDY.items() if k != "sweep"})
    generate_celeba_like(work / "raw", num_images, 0, num_workers=2)
    prepare_celeba(work / "raw", work / "prepared", crop=cfg.data.crop, resolution=cfg.data.resolution,
                   on_error="skip", num_workers=2)
    train_featurenet(cfg, work / "prepared", work / "featurenet")
    return work / "prepared", work / "featurenet"


def run_study(work: Path, data: Path, featurenet: Path, pruner: str, warmup_kimg: float, n_trials: int,
              tag: str) -> list[dict]:
    import optuna
    from diffops.sweeps.objective import NIMG_SAMPLED, NIMG_TRAINED, SECONDS
    from diffops.sweeps.storage import make_storage
    from diffops.sweeps.worker import run_sweep
    name = f"{pruner}-warmup{warmup_kimg:g}-{tag}"
    params = work / f"params-{name}.yaml"
    raw = {**STUDY, "sweep": {**STUDY["sweep"], "study": name, "pruner": pruner, "pruner_warmup_kimg": warmup_kimg,
                              "n_trials": n_trials, "storage": str(work / f"{name}.journal")}}
    params.write_text(yaml.safe_dump(raw, sort_keys=False))
    t0 = time.perf_counter()
    run_sweep(params, data, featurenet, out_dir=work / f"out-{name}", echo=lambda *a: None)
    print(f"  ran study {name}: {time.perf_counter() - t0:.0f} s", flush=True)
    study = optuna.load_study(study_name=raw["sweep"]["study"], storage=make_storage(raw["sweep"]["storage"]))
    return [{"number": t.number, "state": t.state.name, "value": t.value, "params": t.params,
             "trained": t.user_attrs[NIMG_TRAINED], "sampled": t.user_attrs[NIMG_SAMPLED],
             "seconds": t.user_attrs[SECONDS], "intermediate": t.intermediate_values} for t in study.trials]


def to_best(trials: list[dict]) -> dict:
    best = min(t["value"] for t in trials if t["state"] == "COMPLETE")
    upto = next(i for i, t in enumerate(trials) if t["value"] == best) + 1
    total = lambda ts, k: sum(t[k] for t in ts)
    return {"best": best, "best_trial": upto - 1, **{f"{k}_to_best": total(trials[:upto], k) for k in
            ("trained", "sampled", "seconds")}, **{f"{k}_total": total(trials, k) for k in ("trained", "sampled", "seconds")}}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trials", type=int, default=8)
    ap.add_argument("--num-images", type=int, default=1500, help="synthetic faces to generate")
    ap.add_argument("--repeats", type=int, default=1, help="runs of each study (wall time: median)")
    ap.add_argument("--warmup-kimg", type=float, nargs="+", default=[2.0],
                    help="sweep.pruner_warmup_kimg of the pruned runs (one run each); 2 = prune from the 2nd checkpoint")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1: no OpenMP spinning on shared cores)")
    ap.add_argument("--workdir", type=Path, default=None)
    args = ap.parse_args()

    import torch
    torch.set_num_threads(args.threads)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench-sweep-pruning-"))
    work.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{work / 'mlflow.db'}")
    import optuna
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    t0 = time.perf_counter()
    data, featurenet = prepare(work, args.num_images)
    print(f"setup (generate {args.num_images} faces, prepare at 16 px, featurenet): {time.perf_counter() - t0:.0f} s")

    configs = [("none", 0.0)] + [("median", w) for w in args.warmup_kimg]
    runs = {c: [] for c in configs}
    for r in range(args.repeats):                       # alternate the order so load drifts hit all
        for pruner, warmup in (configs if r % 2 == 0 else configs[::-1]):
            runs[pruner, warmup].append(run_study(work, data, featurenet, pruner, warmup, args.trials, str(r)))

    print(f"\nmachine: {platform.machine()}, {os.cpu_count()} cores (shared), torch threads {args.threads}, "
          f"Python {platform.python_version()}, optuna {optuna.__version__}, torch {torch.__version__}")
    print(f"study: {args.trials} trials, random sampler seed 0, 3 kimg per trial (checkpoints at 1, 2, 3 kimg), "
          f"final fd_attrnet on 256 samples x 10 steps; intermediate on 128 samples x 6 steps\n")
    for (pruner, warmup), reps in runs.items():
        print(f"pruner={pruner}" + (f", pruner_warmup_kimg={warmup:g}" if pruner != "none" else "") + " (repeat 0)")
        print(f"  {'trial':>5} {'state':>9} {'fd_attrnet':>10} {'kimg trained':>12} {'imgs sampled':>12} "
              f"{'seconds':>8}  intermediate (kimg: value)  params")
        for t in reps[0]:
            value = f"{t['value']:.4f}" if t["value"] is not None else "-"
            params = ", ".join(f"{k.split('.')[-1]}={v:.3g}" for k, v in t["params"].items())
            inter = " ".join(f"{k / 1000:g}:{v:.3f}" for k, v in sorted(t["intermediate"].items()))
            print(f"  {t['number']:>5} {t['state']:>9} {value:>10} {t['trained'] / 1000:>12.2f} {t['sampled']:>12} "
                  f"{t['seconds']:>8.1f}  {inter:<26} {params}")
    summaries = {c: [to_best(t) for t in reps] for c, reps in runs.items()}
    med = lambda rs, k: statistics.median(r[k] for r in rs)
    print(f"\n{'':<26} {'no pruning':>12}" + "".join(f" {f'median, warmup {w:g} kimg':>24} {'saving':>7}"
                                                    for _, w in configs[1:]))
    for label, key, unit, scale in (("best fd_attrnet", "best", "", 1), ("best trial", "best_trial", "", 1),
                                    ("kimg trained to best", "trained_to_best", "", 1e-3),
                                    ("images sampled to best", "sampled_to_best", "", 1),
                                    ("wall seconds to best", "seconds_to_best", "", 1),
                                    ("kimg trained, all trials", "trained_total", "", 1e-3),
                                    ("images sampled, all trials", "sampled_total", "", 1),
                                    ("wall seconds, all trials", "seconds_total", "", 1)):
        a = med(summaries[configs[0]], key) * scale
        row = f"{label:<26} {a:>12.4g}"
        for c in configs[1:]:
            b = med(summaries[c], key) * scale
            row += f" {b:>24.4g} " + (f"{1 - b / a:>7.0%}" if key not in ("best", "best_trial") and a else " " * 7)
        print(row)
    if args.repeats > 1:
        print(f"(medians over {args.repeats} repeats; compute counts are identical across repeats, "
              f"wall seconds are not)")
    if args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

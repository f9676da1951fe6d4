"""Fréchet distance at Inception's d = 2048: scipy.linalg.sqrtm (EDM's / pytorch-fid's route) against
diffops.evaluation.frechet_distance and against a FrechetReference whose square root is cached (the
evaluate stage's case: one fixed reference, many sample sets). Same process, alternating, median.

    python benchmarks/frechet_distance.py                   # d = 2048, 5 repeats, BLAS threads as set
    python benchmarks/frechet_distance.py --threads 1 --repeats 7

The covariances are those of 10,000 correlated non-negative features, as pool features are.
Goal: frechet_distance >= 5x faster than sqrtm, agreeing to 1e-6 relative.
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

from diffops.evaluation import frechet_distance
from diffops.evaluation.frechet import FeatureStats, FrechetReference, frechet_distance_scipy


def features(rng, n: int, dim: int, mix) -> np.ndarray:
    return np.maximum(rng.standard_normal([n, dim]) @ mix + 0.5, 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dim", type=int, default=2048)
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="BLAS threads (default: the library's own)")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    mix = rng.standard_normal([args.dim, args.dim]) / np.sqrt(args.dim)
    ref = FeatureStats().update(features(rng, args.n, args.dim, mix))
    gen = FeatureStats().update(features(rng, args.n, args.dim, mix * 1.05))
    stats = ref.mu, ref.sigma, gen.mu, gen.sigma
    with threadpool_limits(args.threads):
        blas = ", ".join(f"{i['internal_api']} {i['num_threads']} threads" for i in threadpool_info()
                         if i["user_api"] == "blas")
        cached = FrechetReference(ref.mu, ref.sigma)
        routes = {"scipy sqrtm": lambda: frechet_distance_scipy(*stats),
                  "frechet_distance": lambda: frechet_distance(*stats),
                  "cached reference": lambda: cached.distance(gen.mu, gen.sigma)}
        times = {name: [] for name in routes}
        values = {}
        for _ in range(args.repeats):
            for name, route in routes.items():
                start = time.perf_counter()
                values[name] = route()
                times[name].append(time.perf_counter() - start)
    sqrtm = statistics.median(times["scipy sqrtm"])
    print(f"d = {args.dim}, N = {args.n}, {args.repeats} alternating repeats, BLAS: {blas}")
    print(f"{'route':<18} {'median s':>9} {'speed-up':>9} {'FD':>14} {'rel. diff':>10}")
    for name in routes:
        t = statistics.median(times[name])
        rel = abs(values[name] - values["scipy sqrtm"]) / abs(values["scipy sqrtm"])
        print(f"{name:<18} {t:>9.3f} {sqrtm / t:>8.2f}x {values[name]:>14.6f} {rel:>10.1e}")


if __name__ == "__main__":
    main()

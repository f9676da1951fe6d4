"""Images/s of the EDM sampler with per-image generators against a bare Heun loop, and of the sample stage.

Network: a diffusers UNet at params.yaml's model.* / data.resolution, random init (training's seed), built as
the library does (nets.unet.build_unet + artifacts.denoiser.make_denoiser, EDM preconditioning), exported with
save_denoiser and loaded back with load_denoiser as the `sample` stage does. Same batch (`--batch`, default
sample.batch_size), same steps (sample.steps, Heun, NFE = 2N - 1), S_churn = 0. Runs:
  - diffops sampler: sampling.edm_sampler.generate_images (one torch.Generator per seed: StackedRandomGenerator);
  - bare Heun loop:  EDM Algorithm 2 with S_churn = 0 re-typed here, one batched torch.randn, same network;
  - sample stage:    sampling.sample_set.write_sample_set with the stage's generate() (stages/sample.py without
                     its MLflow record): PNG per seed + grid.png, atomically, `--stage-images` images.
Runs alternate (diffops, bare, stage, diffops, ...); medians over >= 5 repeats and per-repeat ratios
diffops/bare (goal >= 0.95: per-image generators cost <= 5 %). torch threads are stated.

    .venv/bin/python benchmarks/sampler_throughput.py                          # batch 100, 18 steps
    .venv/bin/python benchmarks/sampler_throughput.py --batch 16 --steps 6 --stage-images 32 --repeats 5
"""
from __future__ import annotations

import argparse
import contextlib
import io
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

from diffops.artifacts.denoiser import load_denoiser, make_denoiser, save_denoiser
from diffops.config import load_params
from diffops.nets.unet import build_unet, unet_kwargs
from diffops.sampling.edm_sampler import edm_sigma_steps, generate_images, to_uint8
from diffops.sampling.sample_set import sampler_kwargs, write_sample_set

ROOT = Path(__file__).resolve().parents[1]


@torch.no_grad()
def bare_heun(D, seeds, R, num_steps, sigma_min, sigma_max, rho, **_):
    """EDM Algorithm 2, S_churn = 0, one batched torch.randn."""
    g = torch.Generator().manual_seed(int(seeds[0]))
    x = torch.randn([len(seeds), 3, R, R], generator=g).to(torch.float64)
    t = edm_sigma_steps(num_steps, max(sigma_min, D.sigma_min), min(sigma_max, D.sigma_max), rho)
    x = x * t[0]
    for i in range(num_steps):
        d = (x - D(x.float(), t[i].float().expand(len(x))).double()) / t[i]
        x_next = x + (t[i + 1] - t[i]) * d
        if i < num_steps - 1:
            d2 = (x_next - D(x_next.float(), t[i + 1].float().expand(len(x))).double()) / t[i + 1]
            x_next = x + (t[i + 1] - t[i]) * (0.5 * d + 0.5 * d2)
        x = x_next
    return to_uint8(x)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=None, help="default: params sample.batch_size")
    ap.add_argument("--steps", type=int, default=None, help="default: params sample.steps")
    ap.add_argument("--stage-images", type=int, default=None, help="sample-stage images per run (default: 2 batches)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = load_params(ROOT / "params.yaml")
    s, R = cfg.sample, cfg.data.resolution
    B = args.batch or s.batch_size
    kw = sampler_kwargs(s) | ({"num_steps": args.steps} if args.steps else {})
    kw["S_churn"] = 0.0
    n_stage = args.stage_images or 2 * B
    torch.manual_seed(cfg.train.seed)
    spec = {"unet": unet_kwargs(cfg.model, R), "sigma_data": cfg.edm.sigma_data}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "model").mkdir()
        save_denoiser(tmp / "model", make_denoiser(build_unet(**spec["unet"]), spec).eval(), spec)
        D, spec = load_denoiser(tmp / "model")
        seeds = list(range(B))

        def stage():
            def generate(chunk, device):
                return generate_images(D, chunk, R, device=device, **kw)
            with contextlib.redirect_stderr(io.StringIO()):
                write_sample_set(tmp / "samples", list(range(n_stage)), generate, B)
            return n_stage

        runs = {"diffops sampler": lambda: len(generate_images(D, seeds, R, **kw)),
                "bare Heun loop": lambda: len(bare_heun(D, seeds, R, **kw)),
                "sample stage": stage}
        runs["diffops sampler"](), runs["bare Heun loop"]()    # warm-up at the full batch (first-shape set-up)
        rates = {k: [] for k in runs}
        for _ in range(args.repeats):
            for name, fn in runs.items():
                t0 = time.perf_counter()
                count = fn()
                rates[name].append(count / (time.perf_counter() - t0))
    print(f"machine: {os.cpu_count()} CPUs, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}, "
          f"torch {torch.__version__}, torch.get_num_threads() = {torch.get_num_threads()}")
    print(f"network: UNet {spec['unet']['block_channels']} at {R} px, random init; batch {B}, {kw['num_steps']} steps "
          f"(NFE {2 * kw['num_steps'] - 1}), S_churn 0; sample stage {n_stage} images; {args.repeats} repeats")
    for name, r in rates.items():
        print(f"  {name:16s} median {statistics.median(r):8.1f} images/s   runs " + " ".join(f"{x:.1f}" for x in r))
    ratios = [a / b for a, b in zip(rates["diffops sampler"], rates["bare Heun loop"])]
    print(f"  diffops / bare  median {statistics.median(ratios):.3f} (goal >= 0.95)   per repeat "
          + " ".join(f"{x:.3f}" for x in ratios))
    ratios = [a / b for a, b in zip(rates["sample stage"], rates["diffops sampler"])]
    print(f"  stage / sampler median {statistics.median(ratios):.3f}   per repeat " + " ".join(f"{x:.3f}" for x in ratios))


if __name__ == "__main__":
    main()

"""What the TIW-DSM stages cost, relative to the quickstart's EDM training step, on this machine.

Times (median of interleaved repeats, so that load from other processes hits every variant alike):
  edm32      one EDM training step of the quickstart (data.resolution, batch train.batch_size)
  dsm16      one dsm_obs step at the comparison's resolution (data.resolution / bias_split.downsample)
  tiw16      one tiw_dsm step there: + the discriminator's logit and its input gradient
  disc       one discriminator step (batch_size reference + batch_size biased)
  sample16   one Heun step pair (2 NFE) on sample.batch_size images at the comparison's resolution
and, from them, the seconds each TIW stage should take given the params, in units of the EDM train stage.

    python benchmarks/tiw_budget.py [--params params.yaml] [--repeats 5] [--threads N]
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--steps", type=int, default=5, help="timed steps per repeat")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from diffops.config import load_params
    from diffops.diffusion import vp
    from diffops.artifacts.discriminator import load_discriminator
    from diffops.methods import METHODS
    from diffops.nets.discriminator import TimeDiscriminator
    from diffops.nets.extractor import TimeAttrNet
    from diffops.training.loop import build_trainable

    cfg = load_params(args.params, methods=METHODS)
    fn, ex = cfg.featurenet, cfg.tiw_extractor
    tmp = Path(tempfile.mkdtemp())
    disc_dir = _untrained_discriminator(tmp / "disc", cfg)

    B = cfg.train.batch_size
    g = torch.Generator().manual_seed(0)

    def trainer(c, inputs=None):
        model = build_trainable(c, inputs)
        opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-4)
        R = c.data.resolution
        batch = {"image": torch.rand(B, 3, R, R) * 2 - 1, "group": torch.randint(0, 2, (B,), dtype=torch.uint8)}

        def step():
            model(batch, g).mean().backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
        return step

    edm = trainer(cfg)
    dsm = trainer(METHODS["dsm_obs"].training_config(cfg))
    tiw = trainer(METHODS["tiw_dsm"].training_config(cfg), {"discriminator": load_discriminator(disc_dir, cfg.tiw.discriminator_step)})

    d = cfg.discriminator
    r16 = METHODS["dsm_obs"].training_config(cfg).data.resolution
    net = TimeDiscriminator(TimeAttrNet(len(fn.attributes), ex.width, ex.feature_dim, ex.time_dim), d.hidden, d.time_dim,
                            resolution=r16)
    opt = torch.optim.Adam(net.head.parameters(), lr=d.lr)
    x0 = torch.rand(2 * d.batch_size, 3, r16, r16) * 2 - 1

    def disc():
        tau = vp.sample_tau_importance(len(x0), g)
        with torch.no_grad():
            phi = net.features(x0, tau)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(net.head(phi, tau), torch.ones(len(x0)))
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    D = build_trainable(METHODS["dsm_obs"].training_config(cfg)).D.eval()
    xs = torch.randn(cfg.sample.batch_size, 3, r16, r16)

    @torch.no_grad()
    def sample():
        D(xs, torch.full([len(xs)], 1.0))
        D(xs, torch.full([len(xs)], 0.5))

    fns = {"edm32": edm, "dsm16": dsm, "tiw16": tiw, "disc": disc, "sample16": sample}
    times = {k: [] for k in fns}
    for f in fns.values():
        f()                                                      # warm-up
    for _ in range(args.repeats):
        for k, f in fns.items():                                 # interleaved
            t = time.perf_counter()
            for _ in range(args.steps):
                f()
            times[k].append((time.perf_counter() - t) / args.steps)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"torch threads {torch.get_num_threads()}, repeats {args.repeats} x {args.steps} steps, median seconds:")
    for k, v in med.items():
        print(f"  {k:<9} {v * 1000:8.1f} ms/step" + (f"   {B / v:6.0f} img/s" if k in ("edm32", "dsm16", "tiw16") else ""))
    print(f"  tiw16 / dsm16 = {med['tiw16'] / med['dsm16']:.2f}   dsm16 / edm32 = {med['dsm16'] / med['edm32']:.2f}")

    # Predicted stage seconds from the params (training + sampling compute only; process start-up excluded).
    t = cfg.tiw
    edm_train = cfg.train.duration_kimg * 1000 / B * med["edm32"]
    per_loss_train = cfg.tiw_train.duration_kimg * 1000 / B * med["dsm16"]
    tiw_extra = cfg.tiw_train.duration_kimg * 1000 / B * (med["tiw16"] - med["dsm16"])      # iw_dsm pays less; counted once more
    disc_s = d.steps * med["disc"]
    sample_s = t.sample_num_images / cfg.sample.batch_size * (2 * t.sample_steps - 1) / 2 * med["sample16"]
    total = disc_s + 4 * per_loss_train + 2 * tiw_extra + 4 * sample_s
    print(f"predicted: EDM train stage {edm_train:.0f} s; TIW: discriminator {disc_s:.0f} s, 4 trainings "
          f"{4 * per_loss_train + 2 * tiw_extra:.0f} s, 4 sample sets {4 * sample_s:.0f} s, "
          f"total {total:.0f} s = {total / edm_train:.2f} x the EDM train stage")


def _untrained_discriminator(root: Path, cfg) -> Path:
    """A discriminator folder with the params' architectures and random weights (cost matters, weights don't)."""
    import json

    from safetensors.torch import save_file

    from diffops.artifacts.discriminator import save_extractor
    from diffops.diffusion import vp
    from diffops.methods import METHODS
    from diffops.nets.discriminator import DiscriminatorHead
    from diffops.nets.extractor import TimeAttrNet
    fn, ex, d, step = cfg.featurenet, cfg.tiw_extractor, cfg.discriminator, cfg.tiw.discriminator_step
    r16 = METHODS["dsm_obs"].training_config(cfg).data.resolution
    root.mkdir(parents=True)
    save_extractor(root, TimeAttrNet(len(fn.attributes), ex.width, ex.feature_dim, ex.time_dim),
                   {"attributes": list(fn.attributes), "width": ex.width, "feature_dim": ex.feature_dim,
                    "time_dim": ex.time_dim, "resolution": r16, "beta_min": vp.BETA_MIN, "beta_max": vp.BETA_MAX})
    head = DiscriminatorHead(ex.feature_dim, d.hidden, d.time_dim)
    save_file({k: v.contiguous() for k, v in head.state_dict().items()}, root / f"head-{step:06d}.safetensors")
    (root / "discriminator.json").write_text(json.dumps({
        "hidden": d.hidden, "time_dim": d.time_dim, "extractor_resolution": r16,
        "beta_min": vp.BETA_MIN, "beta_max": vp.BETA_MAX,
        "checkpoints": {str(step): {"file": f"head-{step:06d}.safetensors", "sha256": "untrained"}}}))
    return root


if __name__ == "__main__":
    main()

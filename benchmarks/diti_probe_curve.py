"""Probe mAP of DiTi and PDAE along training: every checkpoint's EMA encoder, plus the baselines.

Reads the checkpoints that `diffops diti train` leaves in <project>/checkpoints/{diti,pdae}
(one every diti.checkpoint_every_kimg) and runs the probe stage's protocol (diti.probe_*) on each EMA
encoder, then on the encoder as initialised (`random`, shared by both: same seed) and on the pixels.
Prints one row per checkpoint: kimg, test mAP over the drawn attributes (the signal on the synthetic
data), over the undrawn ones (noise, should stay at the positive rate) and over all 40.

    # in a project where train_diti / train_pdae ran with e.g. diti.duration_kimg=96, checkpoint_every_kimg=12
    .venv/bin/python benchmarks/diti_probe_curve.py --project /tmp/diti-run
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from safetensors.torch import load_file

from diffops.config import load_params
from diffops.data.prepare import load_split
from diffops.evaluation.probe import probe_encoder
from diffops.methods import METHODS
from diffops.training.loop import build_trainable


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--project", type=Path, default=Path("."))
    ap.add_argument("--methods", default="diti,pdae")
    ap.add_argument("--out", type=Path, default=None, help="Also write the rows as JSON here.")
    args = ap.parse_args()
    cfg = load_params(args.project / "params.yaml", methods=METHODS)
    splits = {s: load_split(args.project / "data" / "prepared", s) for s in ("train", "val", "test")}
    rows = []

    def report(name, kimg, r):
        rows.append({"name": name, "kimg": kimg, **{k: r[k] for k in ("probe_map_drawn", "probe_map_undrawn", "probe_map")}})
        print(f"{name:>6} {kimg:>7} {r['probe_map_drawn']:12.4f} {r['probe_map_undrawn']:12.4f} {r['probe_map']:9.4f}",
              flush=True)

    print(f"{'':>6} {'kimg':>7} {'mAP drawn':>12} {'mAP undrawn':>12} {'mAP all':>9}")
    with torch.random.fork_rng(devices=[]):
        random_encoder = build_trainable(METHODS["diti"].training_config(cfg)).extra["encoder"].eval().requires_grad_(False)
    report("random", 0, probe_encoder(cfg, splits, random_encoder))
    report("pixels", "-", probe_encoder(cfg, splits, None))
    for method in args.methods.split(","):
        encoder = build_trainable(METHODS[method].training_config(cfg)).extra["encoder"].eval().requires_grad_(False)
        for ckpt in sorted((args.project / "checkpoints" / method).glob("checkpoint-*[0-9]")):
            state = load_file(ckpt / "ema.safetensors")
            encoder.load_state_dict({k[len("extra.encoder."):]: v for k, v in state.items()
                                     if k.startswith("extra.encoder.")})
            kimg = json.loads((ckpt / "state.json").read_text())["cur_nimg"] / 1000
            report(method, f"{kimg:g}", probe_encoder(cfg, splits, encoder))
    if args.out:
        args.out.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()

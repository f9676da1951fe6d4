"""Probe mAP of DiTi and PDAE along training: every checkpoint's EMA encoder, plus the baselines.

Reads the checkpoints that `diffops diti train` leaves (one every diti.checkpoint_every_kimg; default
<project>/checkpoints/{diti,pdae}) and runs the probe stage's protocol (diti.probe_*) on each EMA encoder,
after the baselines: the encoder as initialised under each diti.probe_random_seeds and the PCA-reduced pixels.
One row per encoder: test mAP over the drawn attributes (the signal on the synthetic data), the undrawn ones
(noise: stays at the positive rate), the coarse and fine drawn ones, and the code's participation ratio.

    # in a project where train_diti / train_pdae ran with e.g. diti.duration_kimg=48, checkpoint_every_kimg=8
    .venv/bin/python benchmarks/diti_probe_curve.py --project /tmp/diti-run
    .venv/bin/python benchmarks/diti_probe_curve.py --checkpoints checkpoints/diti checkpoints/diti-seed1
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from safetensors.torch import load_file

from diffops.config import load_params
from diffops.data.prepare import load_split
from diffops.evaluation.probe import encode_splits, pca_features, probe_encoder, probe_features
from diffops.methods import METHODS
from diffops.stages.diti_probe import random_encoder

COLUMNS = ("probe_map_drawn", "probe_map_undrawn", "probe_map_coarse", "probe_map_fine", "participation_ratio")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--project", type=Path, default=Path("."))
    ap.add_argument("--checkpoints", type=Path, nargs="+", default=None,
                    help="Checkpoint folders to probe [default: <project>/checkpoints/diti and pdae].")
    ap.add_argument("--out", type=Path, default=None, help="Also write the rows as JSON here.")
    args = ap.parse_args()
    cfg = load_params(args.project / "params.yaml", methods=METHODS)
    splits = {s: load_split(args.project / "data" / "prepared", s) for s in ("train", "val", "test")}
    rows = []

    def report(name, kimg, r):
        rows.append({"name": name, "kimg": kimg, **{k: r[k] for k in COLUMNS}})
        print(f"{name:>24} {kimg:>7} " + " ".join(f"{r[k]:{len(k) + 1}.4f}" for k in COLUMNS), flush=True)

    print(f"{'':>24} {'kimg':>7} " + " ".join(f"{k:>{len(k) + 1}}" for k in COLUMNS))
    tcfg = METHODS["diti"].training_config(cfg)
    for seed in cfg.diti.probe_random_seeds:
        report(f"random (init {seed})", 0, probe_encoder(cfg, splits, random_encoder(tcfg, seed)))
    pixels = pca_features(encode_splits(splits, None))
    report(f"pixels (PCA {cfg.diti.latent_dim})", "-",
           probe_features(cfg, splits, pixels, columns=list(range(cfg.diti.latent_dim))))
    for folder in args.checkpoints or [args.project / "checkpoints" / m for m in ("diti", "pdae")]:
        encoder = random_encoder(tcfg, 0)
        for ckpt in sorted(folder.glob("checkpoint-*[0-9]")):
            state = load_file(ckpt / "ema.safetensors")
            encoder.load_state_dict({k[len("extra.encoder."):]: v for k, v in state.items()
                                     if k.startswith("extra.encoder.")})
            kimg = json.loads((ckpt / "state.json").read_text())["cur_nimg"] / 1000
            report(str(folder), f"{kimg:g}", probe_encoder(cfg, splits, encoder))
    if args.out:
        args.out.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()

"""dvc stages `train_diti` and `train_pdae`: DiTi or PDAE (DiTi with k = 1) on the frozen EDM model, through
the one training loop: the loop trains the method's extra modules (encoder E, shift branch G) around D loaded
from --edm (`init_model_dir`, `freeze_denoiser`), with train.* derived from the diti section by the method's
`training_config`. The frozen model's sha256 and the diti section join the checkpoint hash.

Output (artifacts/representation.py, written atomically): encoder.safetensors, shift.safetensors, diti.json.
"""
from __future__ import annotations

from pathlib import Path

import click

from ..artifacts.representation import save_representation, stored_params
from ..methods import METHODS
from ..training.loop import train
from ..utils.io import atomic_dir, file_sha256
from .common import PARAMS, load_with, path, output_folder, output_file
from .train import tracker_for, write_curve

REPRESENTATION_METHODS = ("diti", "pdae")


def run(cfg, method: str, data_dir, edm_dir, out_dir, state_dir, run_id=None, plots=None, **loop_kwargs):
    """Train DiTi/PDAE on data_dir around the frozen EDM model in edm_dir; export the EMA modules to out_dir."""
    method_cls = METHODS[method]
    tcfg = method_cls.training_config(cfg)
    tracker = tracker_for(tcfg, "train", run_id=run_id)
    ema = train(tcfg, data_dir, None, state_dir, tracker=tracker, init_model_dir=edm_dir, **loop_kwargs)
    write_curve(tracker, plots)
    if tracker.run_id is None or not ema.finished:        # not the main process, or stopped early
        return None
    edm_dir = Path(edm_dir)
    spec = {"method": method, "params": stored_params(tcfg),
            "chunk_ends": getattr(method_cls(tcfg), "ends", [tcfg.diti.latent_dim]),
            "edm_model": {"path": str(edm_dir), "ema_sha256": file_sha256(edm_dir / "ema.safetensors")},
            "mlflow_run_id": tracker.run_id, "mlflow_tracking_uri": tracker.tracking_uri,
            "num_params": {name: sum(p.numel() for p in m.parameters()) for name, m in ema.extra.items()}}
    with atomic_dir(out_dir) as tmp:
        save_representation(tmp, ema.extra, spec)
    with tracker.start(tracker.run_id) as t:
        t.log_params({"diti.lr_effective": tcfg.train.lr, "diti.lr_scaling": "none (diti.batch_size is global)",
                      "diti.chunk_ends": str(spec["chunk_ends"]), "diti.encoder_params": spec["num_params"]["encoder"],
                      "diti.shift_params": spec["num_params"]["shift"]})
        t.set_tags({"diffops.frozen_dpm_sha256": spec["edm_model"]["ema_sha256"]})
        t.log_artifacts(Path(out_dir), "representation")
    return spec


@click.command("train")
@PARAMS
@click.option("--method", type=click.Choice(REPRESENTATION_METHODS), default="diti", show_default=True,
              help="diti: z in diti.k time-step chunks; pdae: the same with k = 1.")
@click.option("--data", type=path(exists=True), default="data/prepared", show_default=True)
@click.option("--edm", "edm_dir", type=path(exists=True), default="models/edm", show_default=True,
              help="The frozen pre-trained DPM (an exported EDM model).")
@click.option("--out", type=output_folder(), default=None, help="EMA encoder + shift branch [default: models/<method>].")
@click.option("--state", type=output_folder(), default=None, help="Resumable checkpoints [default: checkpoints/<method>].")
@click.option("--plots", type=output_file(), default=None, help="Loss against kimg for `dvc plots`.")
@click.option("--seed", type=int, default=None, help="Overrides diti.seed (one training seed of several).")
def command(params_path, method, data, edm_dir, out, state, plots, seed):
    """Train the encoder and shift branch around the frozen EDM model, logging to MLflow.

    Multi-process: `torchrun --nproc_per_node N $(which diffops) diti train`; diti.batch_size is global
    and diti.lr is used as is (the reference scales lr by local batch / 32).

    \b
    Example:  diffops diti train --method diti --data data/prepared --edm models/edm
              diffops diti train --method diti --seed 1 --out models/diti-seed1 --state checkpoints/diti-seed1
    """
    run(load_with(params_path, "diti", {"seed": seed}), method, data, edm_dir, out or Path("models") / method,
        state or Path("checkpoints") / method, plots=plots)

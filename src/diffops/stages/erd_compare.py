"""dvc stage `erd_compare`: ERD's loss weighting against its baselines, by convergence.

Every arm trains the same UNet in the DDPM formulation (method ddpm: same schedule, target, uniform t,
optimiser, data and budget: erd_train.* in place of train.*) with one `erd.weightings` entry as
ddpm.loss_weight, once per `erd.seeds` entry (the train seed: initial weights, batch order, t and noise).
After every checkpoint, the EMA model's fd_attrnet on a fixed set of seeds (the train stage's checkpoint
score: evaluate.checkpoint_num_images samples, evaluate.checkpoint_steps steps) is its point on the curve
"Frechet distance against training images seen".

MLflow: one parent run `erd-compare`, one nested run per arm holding its training and its curve
(fd_attrnet_checkpoint beside kimg at the checkpoint's step); the parent holds the table. Outputs: the
table (metrics file), one curve per weighting (mean and standard error over the seeds, for `dvc plots`),
the arms' exported models. A rerun resumes each arm from its latest checkpoint into its run, so the points
already scored stay; a changed config starts new runs.
"""
from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import replace
from pathlib import Path

import click
import mlflow
import numpy as np
from mlflow.entities import Metric
from tqdm import tqdm

from ..config import ConfigError, section_hash
from ..config.ddpm import check_weight
from ..methods import METHODS
from ..tracking.mlflow_run import metric_curve, use_experiment
from ..training.loop import train
from ..utils.io import file_sha256, write_json_atomic
from .common import PARAMS, load, one_line_errors, path, output_folder, output_file
from .train import CURVE_METRIC, checkpoint_fd, tracker_for


def arm_config(cfg, weighting: str, seed: int):
    return replace(cfg, method=replace(cfg.method, name="ddpm"), ddpm=replace(cfg.ddpm, loss_weight=weighting),
                   train=replace(cfg.erd_train, seed=seed))


def arm_name(weighting: str, seed: int) -> str:
    return f"{weighting}-seed{seed}"


def arm_hash(cfg, inputs: str) -> str:
    """What an arm's curve depends on: its training config, the scoring protocol and the input files
    (inputs: the training data's content hash and the attribute net's sha256)."""
    key = f'{section_hash(cfg, "data", "model", "method", "ddpm", "train", "sample", "evaluate")}:{inputs}'
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def run(cfg, data_dir, featurenet_dir, out_dir, state_dir, metrics_path, plots_dir) -> dict:
    for i, w in enumerate(cfg.erd.weightings):               # before any compute
        check_weight(f"erd.weightings[{i}]", w, cfg.ddpm.target)
    if cfg.evaluate.checkpoint_num_images == 0:
        raise ConfigError("evaluate.checkpoint_num_images", "must be > 0: it is the number of samples of every "
                          "point of the arms' curves")
    state_dir, out_dir = Path(state_dir), Path(out_dir)
    arms = {arm_name(w, s): arm_config(cfg, w, s) for w in cfg.erd.weightings for s in cfg.erd.seeds}
    inputs = (json.loads((Path(data_dir) / "meta.json").read_text())["content_sha256"] + ":"
              + file_sha256(Path(featurenet_dir) / "attrnet.safetensors"))
    hashes = {name: arm_hash(c, inputs) for name, c in arms.items()}
    state_dir.mkdir(parents=True, exist_ok=True)
    runs_file = state_dir / "runs.json"
    runs = json.loads(runs_file.read_text()) if runs_file.exists() else {}
    experiment_id = use_experiment(cfg.tracking.experiment)      # sets the project's tracking URI first
    client = mlflow.MlflowClient()
    comparison_hash = hashlib.sha256(json.dumps([hashes, cfg.erd.fd_threshold]).encode()).hexdigest()[:16]

    def run_for(key: str, config: str, **kwargs) -> str:
        """The MLflow run of `key` made under `config`, created (and remembered) if there is none."""
        if runs.get(key, {}).get("config") != config:
            runs[key] = {"run_id": client.create_run(experiment_id, **kwargs).info.run_id, "config": config}
            write_json_atomic(runs_file, runs)
        return runs[key]["run_id"]

    parent = run_for("parent", comparison_hash, run_name="erd-compare", tags={"diffops.stage": "erd_compare"})
    client.update_run(parent, status="RUNNING")
    try:
        curves = {}
        for name, arm_cfg in tqdm(arms.items(), desc="erd arms", unit="arm"):
            run_id = run_for(name, hashes[name], run_name=f"ddpm-{name}",
                             tags={"mlflow.parentRunId": parent, "erd.weighting": arm_cfg.ddpm.loss_weight})
            curves[name] = train_arm(arm_cfg, data_dir, featurenet_dir, out_dir / name,
                                     state_dir / name / hashes[name], run_id, client)
        result = comparison(cfg, curves)
    except KeyboardInterrupt:
        client.set_terminated(parent, "KILLED")
        raise
    except BaseException:
        client.set_terminated(parent, "FAILED")
        raise
    client.log_batch(parent, metrics=[Metric(f"{w}.{k}", v, int(time.time() * 1000), 0)
                                      for w, row in result["weightings"].items() for k, v in row.items()
                                      if isinstance(v, (int, float)) and math.isfinite(v)])
    client.log_dict(parent, result, "erd/comparison.json")
    client.set_terminated(parent, "FINISHED")
    write_json_atomic(Path(metrics_path), result)
    write_plots(Path(plots_dir), cfg, curves)
    return result


def train_arm(cfg, data_dir, featurenet_dir, out_dir: Path, state_dir: Path, run_id: str, client) -> dict[float, float]:
    """Train one arm (resuming from its checkpoints) with its checkpoints scored (train.checkpoint_fd);
    returns its curve {kimg: fd_attrnet}, read back from the arm's MLflow run. An arm whose run finished
    with the whole curve is not trained again."""
    def curve() -> dict[float, float]:
        return {row["kimg"]: row[CURVE_METRIC] for row in metric_curve(run_id, y=CURVE_METRIC)}
    if client.get_run(run_id).info.status == "FINISHED" and (out_dir / "model.json").exists():
        points = curve()
        if max(points, default=0) >= cfg.train.duration_kimg:
            return points
    tracker = tracker_for(cfg, "erd_compare", run_id=run_id)
    ema = train(cfg, data_dir, out_dir, state_dir, tracker=tracker,
                on_checkpoint=checkpoint_fd(cfg, data_dir, featurenet_dir, tracker))
    points = curve()
    if not ema.finished or max(points, default=0) < cfg.train.duration_kimg:
        raise RuntimeError(f"{state_dir}: the arm's curve ends at {max(points, default=0):g} kimg, before "
                           f"erd_train.duration_kimg; delete {state_dir} and rerun")
    return points


def _mean_se(values) -> tuple[float | None, float | None]:
    v = np.asarray([x for x in values if x is not None], dtype=np.float64)
    if len(v) == 0:
        return None, None                       # JSON null: no value (e.g. no seed reached the threshold)
    return float(v.mean()), float(v.std(ddof=1) / math.sqrt(len(v))) if len(v) > 1 else None


def comparison(cfg, curves: dict[str, dict[float, float]]) -> dict:
    """Per weighting over the seeds: final fd, mean fd over the checkpoints (the area under the curve per
    kimg: lower = converges faster), kimg to reach the threshold (erd.fd_threshold, or with 0 the
    baseline's mean final fd: how much sooner an arm reaches the quality the baseline ends at); and each
    weighting minus the baseline (erd.weightings[0]), paired by seed, with its standard error (a difference
    beyond 2 SE is told from seed noise)."""
    e = cfg.erd
    baseline = e.weightings[0]
    arm = lambda w, s: sorted(curves[arm_name(w, s)].items())        # [(kimg, fd), ...]
    threshold = e.fd_threshold or float(np.mean([arm(baseline, s)[-1][1] for s in e.seeds]))
    per = {}
    for w in e.weightings:
        rows = []
        for seed in e.seeds:
            points = arm(w, seed)
            reached = [k for k, fd in points if fd <= threshold]
            rows.append({"final_fd": points[-1][1], "mean_fd": float(np.mean([fd for _, fd in points])),
                         "kimg_to_threshold": reached[0] if reached else None})
        per[w] = rows
    table = {}
    for w, rows in per.items():
        out = {}
        for key in ("final_fd", "mean_fd", "kimg_to_threshold"):
            out[f"{key}_mean"], out[f"{key}_se"] = _mean_se(r[key] for r in rows)
        out["seeds_reaching_threshold"] = sum(r["kimg_to_threshold"] is not None for r in rows)
        if w != baseline:
            for key in ("final_fd", "mean_fd"):
                d = [r[key] - b[key] for r, b in zip(rows, per[baseline])]
                out[f"{key}_minus_baseline"], out[f"{key}_minus_baseline_se"] = _mean_se(d)
        table[w] = out
    return {"weightings": table, "per_seed": {w: dict(zip(map(str, e.seeds), rows)) for w, rows in per.items()},
            "protocol": {"metric": "fd_attrnet", "reference_split": cfg.evaluate.reference_split,
                         "num_images": cfg.evaluate.checkpoint_num_images,
                         "sampler_steps": cfg.evaluate.checkpoint_steps,
                         "seeds": list(e.seeds), "baseline": baseline, "fd_threshold": threshold,
                         "ddpm": {"schedule": cfg.ddpm.schedule, "target": cfg.ddpm.target},
                         "duration_kimg": cfg.erd_train.duration_kimg,
                         "checkpoint_every_kimg": cfg.erd_train.checkpoint_every_kimg}}


def write_plots(plots_dir: Path, cfg, curves: dict) -> None:
    """plots/<weighting>.json: rows {kimg, fd_attrnet, fd_attrnet_se} averaged over the seeds."""
    for w in cfg.erd.weightings:
        arms = [curves[arm_name(w, s)] for s in cfg.erd.seeds]
        kimg = sorted(set.intersection(*(set(c) for c in arms)))
        rows = []
        for k in kimg:
            mean, se = _mean_se(c[k] for c in arms)
            rows.append({"kimg": k, "fd_attrnet": mean, "fd_attrnet_se": se or 0.0})
        write_json_atomic(plots_dir / f"{w}.json", rows)


def _pm(row: dict, key: str) -> str:
    mean, se = row[f"{key}_mean"], row[f"{key}_se"]
    return f"{mean:7.2f}" + (f" ± {se:.2f}" if se is not None else "")


@click.command("erd-compare")
@PARAMS
@click.option("--data", type=path(exists=True), default="data/prepared", show_default=True,
              help="Prepared container the arms train on (its evaluate.reference_split is the FD reference).")
@click.option("--featurenet", "featurenet_dir", type=path(exists=True), default="models/featurenet",
              show_default=True, help="Attribute net whose features define fd_attrnet.")
@click.option("--out", type=output_folder(), default="models/erd", show_default=True,
              help="Exported EMA model of every arm (<weighting>-seed<seed>/).")
@click.option("--state", type=output_folder(), default="checkpoints/erd", show_default=True,
              help="The arms' checkpoints (<arm>/<config hash>/) and MLflow run ids; a rerun resumes from them.")
@click.option("--metrics", type=output_file(), default="metrics/erd.json", show_default=True)
@click.option("--plots", type=output_folder(), default="plots/erd", show_default=True,
              help="One curve per weighting (fd_attrnet against kimg) for `dvc plots`.")
def command(params_path, data, featurenet_dir, out, state, metrics, plots):
    """Train ddpm once per erd.weightings x erd.seeds entry and compare their fd_attrnet curves.

    \b
    Example:  dvc repro pipelines/erd-quickstart/dvc.yaml
              diffops erd-compare --params pipelines/erd-quickstart/params.yaml
    """
    cfg = load(params_path, methods=METHODS)
    with one_line_errors(ConfigError, FileNotFoundError):
        result = run(cfg, data, featurenet_dir, out, state, metrics, plots)
    for w, row in result["weightings"].items():
        click.echo(f"{w:>12}  final fd_attrnet {_pm(row, 'final_fd')}   mean over checkpoints {_pm(row, 'mean_fd')}")

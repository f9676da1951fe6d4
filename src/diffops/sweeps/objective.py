"""One trial: the trial's params as `key=value` overrides -> train -> score, in a temp folder.

The trial config is the params file with `sweep.budget` and then the trial's params applied by
diffops.config.apply_overrides, exactly what `dvc exp run -S <budget> -S <params>` would run, validated by
load_params. Training logs into the trial's nested MLflow run (run_id=), and so does the scoring: a trial calls the
same stage code (diffops.stages) that `dvc repro` runs.
What a trial runs is `sweep.objective`, the path of a pipeline stage chain:

    edm    train -> sample -> evaluate            (fd_attrnet | attr_rate_mae, on data/prepared)
    tiw    tiw_train tiw_dsm (the pipeline's discriminator) -> tiw_sample -> its row of tiw_table
           (fd_attrnet | subgroup_tv | bias vs the unbiased test split of data/tiw/obs)
    diti   train_diti on the frozen models/edm -> diti_probe (probe_val_map: the linear probe's validation
           mAP; the test mAP is logged beside it but never tuned on)
    asyrp  asyrp_invert -> asyrp_train -> asyrp_edit on the frozen models/edm (metrics/asyrp.json's
           change_rate_minus_random, change_rate, other_attr_change or fd_attrnet; no intermediate values)

Pruning: after every checkpoint the objective reports a cheap estimate of the study's metric at
step = training images of that checkpoint (the checkpoint boundary, so trials of any batch size report at
the same steps). edm/tiw: the metric on `sweep.intermediate_num_images` samples of the EMA denoiser drawn
with `sweep.intermediate_steps` sampler steps (biased by the few samples and steps); diti: the probe of
the EMA encoder at that checkpoint. The trial's value is the full score of the finished model.
"""
from __future__ import annotations

import copy
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import optuna
from mlflow.entities import Metric

from ..artifacts.representation import Representation
from ..config import apply_overrides, flatten, load_params
from ..data.prepare import load_split
from ..evaluation.bias import BiasScorer, score_loss
from ..evaluation.probe import probe_encoder
from ..methods import METHODS
from ..sampling.sample_set import quick_samples
from ..stages import (asyrp_edit, asyrp_invert, asyrp_train, evaluate, sample, tiw_sample, tiw_table, tiw_train,
                      train, train_representation)
from . import storage as st
from .space import Param, format_override


@dataclass(frozen=True)
class ObjectiveRow:
    """What a sweep.objective runs: the method whose training_config the loop sees, the default training data
    and the stage that makes it, the inputs it needs from other stages, and its stage chain (Objective.run_<name>)."""
    method: str
    data: str
    data_stage: str
    inputs: tuple[str, ...] = ()


# The one table of objectives (the metrics each may optimise are config/sweep.py's METRICS).
OBJECTIVES = {
    "edm": ObjectiveRow("edm", "data/prepared", "prepare"),
    "tiw": ObjectiveRow("tiw_dsm", "data/tiw/obs", "tiw_split", ("discriminator",)),
    "diti": ObjectiveRow("diti", "data/prepared", "prepare", ("edm",)),
    "asyrp": ObjectiveRow("edm", "data/prepared", "prepare", ("edm",)),   # trains no denoiser: train.* unused
}
INPUT_STAGES = {"edm": "train", "discriminator": "tiw_discriminator"}

NIMG_TRAINED = "diffops.nimg_trained"       # trial user attrs: compute spent by the trial
NIMG_SAMPLED = "diffops.nimg_sampled"       # intermediate sets + final sample set (+ untrained baseline)
SECONDS = "diffops.seconds"


def trial_config(raw: dict, budget, params: dict):
    """(overrides, Config) of a trial: `sweep.budget` then the trial's params, as `dvc exp run -S` applies them."""
    overrides = list(budget) + [format_override(k, v) for k, v in params.items()]
    return overrides, load_params(apply_overrides(raw, overrides), methods=METHODS)


def trained_config(cfg):
    """The Config the training loop sees for cfg.sweep.objective: its method's training_config (diti and tiw
    derive train.* from their own sections: diti.duration_kimg, tiw_train.*)."""
    return METHODS[OBJECTIVES[cfg.sweep.objective].method].training_config(cfg)


def checkpoint_step(cfg, cur_nimg: int) -> int:
    """Optuna step of a checkpoint: its kimg boundary in images (the end of training for the last one).
    cfg is the trained config (trained_config)."""
    total, every = int(cfg.train.duration_kimg * 1000), max(int(cfg.train.checkpoint_every_kimg * 1000), 1)
    return total if cur_nimg >= total else every * (cur_nimg // every)


class Objective:
    """inputs: what the objective's stages read besides data_dir / featurenet_dir: {"edm": models/edm} for
    diti, {"discriminator": models/tiw/discriminator} for tiw."""

    def __init__(self, raw: dict, sweep, space: list[Param], data_dir: Path, featurenet_dir: Path,
                 tracker, *, seed: int | None = None, workdir: Path | None = None, inputs: dict | None = None):
        self.raw, self.sweep, self.space, self.tracker = raw, sweep, space, tracker
        self.data_dir, self.featurenet_dir, self.workdir = Path(data_dir), Path(featurenet_dir), workdir
        self.seed, self.inputs = seed, {k: Path(v) for k, v in (inputs or {}).items()}
        self._reference = {}        # reference split -> (net, FeatureStats, attribute rates)
        self._scorer = None         # tiw: the bias scorer (attribute net + test split)
        self._splits = None         # diti: the probe's train/val/test splits

    def __call__(self, trial: optuna.Trial) -> float:
        st.claim_trial(trial)
        spent = {NIMG_TRAINED: 0, NIMG_SAMPLED: 0}
        t0 = time.perf_counter()
        try:
            self.tracker.start_trial(trial, tags={"optuna.sampler_seed": self.seed})
            params = {p.key: p.suggest(trial) for p in self.space}
            overrides, cfg = trial_config(self.raw, self.sweep.budget, params)
            tcfg = trained_config(cfg)
            flat = flatten(cfg)
            self.tracker.log_params(trial, {k: flat[k] for k in params})
            run_id = trial.user_attrs["mlflow.run_id"]

            def on_checkpoint(cur_nimg: int, ema) -> None:
                spent[NIMG_TRAINED] = cur_nimg
                value = self.intermediate(tcfg, ema, spent)
                self.tracker.report(trial, value, checkpoint_step(tcfg, cur_nimg))
                if trial.should_prune():
                    raise optuna.TrialPruned(f"{self.tracker.intermediate_metric} = {value:.4g} "
                                             f"after {cur_nimg / 1000:g} kimg")

            with tempfile.TemporaryDirectory(prefix=f"{trial.study.study_name}-trial{trial.number}-",
                                             dir=self.workdir) as tmp:
                run = {"edm": self.run_edm, "tiw": self.run_tiw, "diti": self.run_diti,
                       "asyrp": self.run_asyrp}[self.sweep.objective]
                result = run(cfg, tcfg, Path(tmp), on_checkpoint, run_id, spent)
            return float(result[self.sweep.metric])
        except optuna.TrialPruned:
            raise
        except KeyboardInterrupt:       # SIGINT / SIGTERM: not the params' fault; run them again later
            trial.set_user_attr(st.RETRIED, True)
            st.retry_trial(trial.study, trial.study._storage.get_trial(trial._trial_id))
            self.tracker.end_trial(trial.study._storage.get_trial(trial._trial_id), status="KILLED",
                                   reason="worker interrupted (SIGINT/SIGTERM); enqueued again")
            raise
        except Exception as e:
            trial.set_user_attr(st.FAIL_REASON, f"{type(e).__name__}: {e}"[:2000])
            raise
        finally:
            spent[SECONDS] = round(time.perf_counter() - t0, 3)
            for k, v in spent.items():
                trial.set_user_attr(k, v)

    # ------------------------------------------------------------------------
    # The stage chains (see the module doc).

    # The same stage code `dvc repro` runs, into the trial's temp folder and its nested MLflow run.

    def run_edm(self, cfg, tcfg, tmp: Path, on_checkpoint, run_id: str, spent: dict) -> dict:
        train.run(cfg, self.data_dir, tmp / "model", tmp / "state", run_id=run_id, on_checkpoint=on_checkpoint)
        sample.run(cfg, tmp / "model", tmp / "samples")
        spent[NIMG_SAMPLED] += cfg.sample.num_images * (2 if cfg.evaluate.untrained_baseline else 1)
        return evaluate.run(cfg, self.data_dir, self.featurenet_dir, tmp / "samples", tmp / "model",
                            tmp / "metrics.json", self.inputs.get("reference", Path("data/reference")))

    def run_tiw(self, cfg, tcfg, tmp: Path, on_checkpoint, run_id: str, spent: dict) -> dict:
        tiw_train.run(cfg, "tiw_dsm", self.data_dir, self._input("discriminator"), tmp / "model", tmp / "state",
                      run_id=run_id, on_checkpoint=on_checkpoint)
        tiw_sample.run(cfg, "tiw_dsm", tmp / "model", tmp / "samples")
        spent[NIMG_SAMPLED] += tcfg.sample.num_images
        metrics = score_loss(self.scorer(tcfg), tmp / "samples", "tiw_dsm")
        tiw_table.record_loss(tcfg, metrics, tmp / "model", tmp / "metrics.json")
        return metrics

    def run_diti(self, cfg, tcfg, tmp: Path, on_checkpoint, run_id: str, spent: dict) -> dict:
        train_representation.run(cfg, "diti", self.data_dir, self._input("edm"), tmp / "model", tmp / "state",
                                 run_id=run_id, on_checkpoint=on_checkpoint)
        result = self.probe(cfg, Representation(tmp / "model").encoder)
        self.tracker.client.log_batch(run_id, metrics=[
            Metric(k, float(v), int(time.time() * 1000), 0) for k, v in result.items()
            if k in ("probe_val_map", "probe_map", "probe_map_drawn", "probe_map_undrawn", "l2")])
        return result

    def run_asyrp(self, cfg, tcfg, tmp: Path, on_checkpoint, run_id: str, spent: dict) -> dict:
        edm = self._input("edm")
        asyrp_invert.run(cfg, self.data_dir, edm, tmp / "inversion", progress=False, run_id=run_id)
        asyrp_train.run(cfg, tmp / "inversion", edm, self.featurenet_dir, tmp / "model", progress=False, run_id=run_id)
        return asyrp_edit.run(cfg, tmp / "inversion", edm, self.featurenet_dir, [tmp / "model"], tmp / "edit",
                              tmp / "metrics.json", progress=False)

    def _input(self, name: str) -> Path:
        path = self.inputs.get(name)
        if path is None or not path.exists():
            stage = INPUT_STAGES[name]
            raise FileNotFoundError(f"sweep.objective {self.sweep.objective} needs {name} = {path}: run "
                                    f"`dvc repro {stage}` first (or pass --{name} DIR)")
        return path

    # ------------------------------------------------------------------------
    # Scores.

    def reference(self, cfg):
        split = cfg.evaluate.reference_split
        if split not in self._reference:
            self._reference[split] = evaluate.reference(cfg, self.data_dir, self.featurenet_dir)
        return self._reference[split]

    def scorer(self, tcfg):
        if self._scorer is None:
            self._scorer = BiasScorer(tcfg, self.data_dir, self.featurenet_dir)
        return self._scorer

    def probe(self, cfg, encoder) -> dict:
        """diti_probe's linear probe of one encoder; probe_val_map = its validation mAP at the chosen L2."""
        if self._splits is None:
            self._splits = {s: load_split(self.data_dir, s) for s in ("train", "val", "test")}
        result = probe_encoder(cfg, self._splits, encoder.eval())
        return {**result, "probe_val_map": result["val_map"]}

    def intermediate(self, tcfg, ema, spent: dict) -> float:
        """A cheap estimate of the study's metric for the EMA modules at a checkpoint (see the module doc)."""
        if self.sweep.objective == "diti":
            encoder = copy.deepcopy(ema.extra["encoder"]).requires_grad_(False)
            return float(self.probe(tcfg, encoder)["probe_val_map"])
        n = self.sweep.intermediate_num_images
        images = quick_samples(ema.D, tcfg.sample, tcfg.data.resolution, n, self.sweep.intermediate_steps)
        spent[NIMG_SAMPLED] += n
        if self.sweep.objective == "tiw":
            return float(self.scorer(tcfg).score(images.cpu().numpy())[self.sweep.metric])
        ref = self.reference(tcfg)
        feats, probs = ref.features(images)
        return ref.attr_rate_mae(probs) if self.sweep.metric == "attr_rate_mae" else ref.fd_of(feats)


def intermediate_metric(sweep) -> str:
    """What `intermediate` reports for the study's metric: the metric itself on few samples, or, for the
    Inception and precision/recall metrics (too slow or too noisy on 200 CPU samples), fd_attrnet."""
    same = {"fd_attrnet", "attr_rate_mae", "probe_val_map", "subgroup_tv", "bias"}
    return f"{sweep.metric}_intermediate" if sweep.metric in same else "fd_attrnet_intermediate"

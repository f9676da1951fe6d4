"""One trial: the trial's params as `key=value` overrides -> train -> sample -> evaluate, in a temp folder.

The trial config is the params file with `sweep.budget` and then the trial's params applied by
diffops.config.apply_overrides, exactly what `dvc exp run -S <budget> -S <params>` would run, validated by
load_params. Training logs into the trial's nested MLflow run (mlflow_run_id=), and so do sampling and
evaluation (they follow the exported model's run id).

Pruning: after every checkpoint the EMA denoiser draws `sweep.intermediate_num_images` samples with
`sweep.intermediate_steps` sampler steps, and the objective reports the study's metric on them
(fd_attrnet against the reference split, or attr_rate_mae) at step = training images of that checkpoint
(the checkpoint boundary, so trials of any batch size report at the same steps). It is a biased but
cheap estimate of the final metric (few samples, few steps); the trial's value is the real evaluate
metric on `sample.num_images` samples.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import optuna
import torch

from ..config import apply_overrides, flatten, load_params
from ..data.prepare import load_split
from ..evaluation.evaluate import evaluate
from ..evaluation.featurenet import attribute_rates, extract
from ..evaluation.featurenet_stage import load_featurenet
from ..evaluation.frechet import FeatureStats, frechet_distance
from ..methods import METHODS
from ..sampling.edm_sampler import generate_images
from ..sampling.sample_set import sample_images, sampler_kwargs
from ..training.loop import train
from . import storage as st
from .space import Param, format_override

NIMG_TRAINED = "diffops.nimg_trained"       # trial user attrs: compute spent by the trial
NIMG_SAMPLED = "diffops.nimg_sampled"       # intermediate sets + final sample set (+ untrained baseline)
SECONDS = "diffops.seconds"


def trial_config(raw: dict, budget, params: dict):
    """(overrides, Config) of a trial: `sweep.budget` then the trial's params, as `dvc exp run -S` applies them."""
    overrides = list(budget) + [format_override(k, v) for k, v in params.items()]
    return overrides, load_params(apply_overrides(raw, overrides), methods=METHODS)


def checkpoint_step(cfg, cur_nimg: int) -> int:
    """Optuna step of a checkpoint: its kimg boundary in images (the end of training for the last one)."""
    total, every = int(cfg.train.duration_kimg * 1000), max(int(cfg.train.checkpoint_every_kimg * 1000), 1)
    return total if cur_nimg >= total else every * (cur_nimg // every)


class Objective:
    def __init__(self, raw: dict, sweep, space: list[Param], data_dir: Path, featurenet_dir: Path,
                 tracker, *, seed: int | None = None, workdir: Path | None = None):
        self.raw, self.sweep, self.space, self.tracker = raw, sweep, space, tracker
        self.data_dir, self.featurenet_dir, self.workdir = Path(data_dir), Path(featurenet_dir), workdir
        self.seed = seed
        self._reference = {}        # reference split -> (net, FeatureStats, attribute rates)

    def __call__(self, trial: optuna.Trial) -> float:
        st.claim_trial(trial)
        spent = {NIMG_TRAINED: 0, NIMG_SAMPLED: 0}
        t0 = time.perf_counter()
        try:
            self.tracker.start_trial(trial, tags={"optuna.sampler_seed": self.seed})
            params = {p.key: p.suggest(trial) for p in self.space}
            overrides, cfg = trial_config(self.raw, self.sweep.budget, params)
            flat = flatten(cfg)
            self.tracker.log_params(trial, {k: flat[k] for k in params})
            run_id = trial.user_attrs["mlflow.run_id"]

            def on_checkpoint(cur_nimg: int, D) -> None:
                spent[NIMG_TRAINED] = cur_nimg
                value = self.intermediate(cfg, D, spent)
                self.tracker.report(trial, value, checkpoint_step(cfg, cur_nimg))
                if trial.should_prune():
                    raise optuna.TrialPruned(f"{self.tracker.intermediate_metric} = {value:.4g} "
                                             f"after {cur_nimg / 1000:g} kimg")

            with tempfile.TemporaryDirectory(prefix=f"{trial.study.study_name}-trial{trial.number}-",
                                             dir=self.workdir) as tmp:
                tmp = Path(tmp)
                train(cfg, self.data_dir, tmp / "model", tmp / "state", on_checkpoint=on_checkpoint,
                      mlflow_run_id=run_id)
                sample_images(cfg, tmp / "model", tmp / "samples")
                spent[NIMG_SAMPLED] += cfg.sample.num_images * (2 if cfg.evaluate.untrained_baseline else 1)
                result = evaluate(cfg, self.data_dir, self.featurenet_dir, tmp / "samples", tmp / "model",
                                  tmp / "metrics.json")
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

    def reference(self, cfg):
        split = cfg.evaluate.reference_split
        if split not in self._reference:
            net, _ = load_featurenet(self.featurenet_dir)
            images, _ = load_split(self.data_dir, split)
            feats, probs = extract(net, torch.from_numpy(np.ascontiguousarray(images)), cfg.evaluate.batch_size)
            self._reference[split] = (net, FeatureStats().update(feats), attribute_rates(probs))
        return self._reference[split]

    def intermediate(self, cfg, D, spent: dict) -> float:
        """The study's metric on a small, few-step sample set of the current EMA denoiser."""
        net, ref, ref_rates = self.reference(cfg)
        s, n = cfg.sample, self.sweep.intermediate_num_images
        seeds = list(range(s.seed_start, s.seed_start + n))
        kwargs = sampler_kwargs(s) | {"num_steps": self.sweep.intermediate_steps}
        device = next(D.parameters()).device
        images = torch.cat([generate_images(D, seeds[i:i + s.batch_size], cfg.data.resolution, device=device,
                                            **kwargs) for i in range(0, n, s.batch_size)])
        spent[NIMG_SAMPLED] += n
        feats, probs = extract(net, images, cfg.evaluate.batch_size)
        if self.sweep.metric == "attr_rate_mae":
            return float(np.abs(attribute_rates(probs) - ref_rates).mean())
        stats = FeatureStats().update(feats)
        return frechet_distance(stats.mu, stats.sigma, ref.mu, ref.sigma)

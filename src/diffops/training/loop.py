"""The one training loop: method-agnostic, Accelerate for devices/precision/processes (edm2 style).

Counters carry their unit: `cur_nimg` counts training images seen (over all processes).
Randomness is reseeded every step from (seed, rank, cur_nimg), and the batch order is a function of
(seed, step), so a run resumed from a checkpoint replays exactly what the uninterrupted run would do.
"""
from __future__ import annotations

import copy
import hashlib
import json
import tempfile
import time
from pathlib import Path

import torch
from accelerate.utils import broadcast_object_list
from tqdm import tqdm

from ..artifacts.denoiser import load_denoiser_weights, make_denoiser, save_denoiser
from ..config import flatten, section_hash, to_dict
from ..data.prepare import PreparedDataset
from ..methods import METHODS
from ..nets.unet import build_unet, unet_kwargs
from ..sampling.edm_sampler import generate_images
from ..utils.accelerator import make_accelerator
from ..utils.grid import save_image_grid
from ..utils.io import atomic_dir, file_sha256
from . import checkpoint as ckpt
from .batches import ResumableBatchSampler, training_loader
from .tracker import NullTracker

TRAIN_SECTIONS = ("data", "model", "method", "edm", "train")   # what a checkpoint must match (+ the method's section)
GRID_SEEDS = range(64)


class Trainable(torch.nn.Module):
    """Denoiser + method modules; forward returns the method's per-sample loss (so DDP syncs)."""

    def __init__(self, D: torch.nn.Module, extra: dict[str, torch.nn.Module], method):
        super().__init__()
        self.D, self.extra, self.method = D, torch.nn.ModuleDict(extra), method

    def forward(self, batch, generator):
        return self.method.loss(self.D, dict(self.extra), batch, generator)


def build_trainable(cfg, method_inputs: dict | None = None, unet_overrides: dict | None = None) -> Trainable:
    """method_inputs: keyword arguments of the method's constructor (paths, e.g. {"discriminator": dir}).
    unet_overrides: build_unet arguments replacing those of the params (a space's, e.g. latent channels)."""
    torch.manual_seed(cfg.train.seed)       # identical initial weights on every rank
    unet = build_unet(**(unet_kwargs(cfg.model, cfg.data.resolution) | (unet_overrides or {})))
    D = make_denoiser(unet, denoiser_entries(cfg))
    method = METHODS[cfg.method.name](cfg, **(method_inputs or {}))
    return Trainable(D, method.extra_modules(), method)


def denoiser_entries(cfg) -> dict:
    """model.json's entries that say how the UNet becomes a denoiser (artifacts/denoiser.py make_denoiser)."""
    precond = METHODS[cfg.method.name].precond(cfg)
    return {"sigma_data": cfg.edm.sigma_data, **({"precond": precond} if precond else {})}


def make_optimizer(params, t):
    """Adam (EDM), or AdamW when train.weight_decay > 0 (ERD's reference: AdamW, betas (0.9, 0.95))."""
    if t.weight_decay > 0:
        return torch.optim.AdamW(params, lr=t.lr, betas=t.adam_betas, eps=1e-8, weight_decay=t.weight_decay)
    return torch.optim.Adam(params, lr=t.lr, betas=t.adam_betas, eps=1e-8)


class MetricWindow:
    """The per-step values since the last log point, which it averages. Checkpoints hold it, so the first
    point after a resume averages the same steps as the uninterrupted run's (log and checkpoint
    intervals need not divide each other)."""

    def __init__(self, tensors: dict[str, torch.Tensor] | None = None):
        tensors = tensors or {}
        self.losses = tensors["loss"].tolist() if "loss" in tensors else []
        self.stats = {k.removeprefix("stat."): [v] for k, v in tensors.items() if k.startswith("stat.")}

    def add(self, loss: float, stats: dict[str, torch.Tensor]) -> None:
        """One step's mean loss and the method's step_stats (gathered from all processes)."""
        self.losses.append(loss)
        for name, values in stats.items():
            self.stats.setdefault(name, []).append(values)

    def metrics(self) -> dict[str, float]:
        """loss: the mean over the steps; <stat>_mean, _min, _max over their samples."""
        out = {"loss": sum(self.losses) / len(self.losses)}
        for name, values in self.stats.items():
            v = torch.cat(values)
            out |= {f"{name}_mean": v.mean().item(), f"{name}_min": v.min().item(), f"{name}_max": v.max().item()}
        return out

    def tensors(self) -> dict[str, torch.Tensor]:
        return {"loss": torch.tensor(self.losses, dtype=torch.float64),
                **{f"stat.{name}": torch.cat(values) for name, values in self.stats.items()}}


def step_seed(seed: int, rank: int, cur_nimg: int) -> int:
    return (seed * 1_000_003 + rank * 7_919 + cur_nimg) % (1 << 63)


def export_model(out_dir: Path, cfg, ema: Trainable, tracker, space=None) -> None:
    """Write the EMA denoiser + its architecture atomically (artifacts/denoiser.py)."""
    spec = {"unet": unet_kwargs(cfg.model, cfg.data.resolution) | (space.unet if space else {}),
            **denoiser_entries(cfg), "method": cfg.method.name, "mlflow_run_id": tracker.run_id,
            "mlflow_tracking_uri": tracker.tracking_uri, **(space.spec if space else {})}
    with atomic_dir(out_dir) as tmp:
        save_denoiser(tmp, ema.D, spec)


def train(cfg, data_dir: Path, out_dir: Path | None, state_dir: Path, *, tracker=None,
          stop_after_steps: int | None = None, on_checkpoint=None, init_model_dir: Path | None = None,
          method_inputs: dict | None = None, space=None, tags: dict | None = None):
    """Train cfg.method on data_dir's train split; resume from state_dir; export EMA to out_dir.

    on_checkpoint(cur_nimg, ema) is called on the main process after each checkpoint with the EMA
    Trainable (ema.D the denoiser, ema.extra the method's modules, e.g. DiTi's encoder) (sweeps
    report intermediate scores there; an exception it raises ends the run). tracker (training/tracker.py)
    receives params, metrics, grids and checkpoints on the main process; its run is the one the resumed
    checkpoint names, if any (default: NullTracker, nothing recorded). out_dir None: no export (the caller
    exports what it needs from the returned EMA, e.g. DiTi's modules). tags are set on a new run.
    init_model_dir starts the denoiser from an exported model (ema.safetensors + model.json); a
    method with `freeze_denoiser = True` then trains only its extra modules around it.
    method_inputs are handed to the method's constructor, loaded (e.g. {"discriminator": (net, entry)}).
    The method's params section and `fingerprint`, the initial model's and the dataset's content hashes
    join the checkpoint hash, so checkpoints made from other inputs or other data are never resumed.
    Returns the EMA Trainable; `ema.finished` says whether training reached its duration.
    space replaces the prepared-pixel data path (VAE latents, edm2/LMDB containers; training/spaces.py
    lists what it provides): its dataset, its batch -> network input, its UNet shape and its grids.
    """
    data_dir, state_dir = Path(data_dir), Path(state_dir)
    tracker = tracker or NullTracker()
    accelerator = make_accelerator(mixed_precision=cfg.train.precision)
    rank, world, device = accelerator.process_index, accelerator.num_processes, accelerator.device
    if cfg.train.batch_size % world:
        raise ValueError(f"train.batch_size: {cfg.train.batch_size} is not divisible by the "
                         f"{world} processes; choose a multiple of {world}")
    B, total_nimg = cfg.train.batch_size, int(cfg.train.duration_kimg * 1000)

    # Model, EMA, optimizer; resume from the latest matching checkpoint.
    model = build_trainable(cfg, method_inputs, space.unet if space else None)
    if init_model_dir is not None:
        load_denoiser_weights(model.D, Path(init_model_dir), unet_kwargs(cfg.model, cfg.data.resolution))
    if model.method.freeze_denoiser:
        model.D.requires_grad_(False)
    ema = copy.deepcopy(model).eval().requires_grad_(False)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = make_optimizer(trainable, cfg.train)
    meta = space.meta if space else json.loads((data_dir / "meta.json").read_text())
    sections = TRAIN_SECTIONS + ((model.method.params_section,) if model.method.params_section else ())
    init_sha = file_sha256(Path(init_model_dir) / "ema.safetensors") if init_model_dir is not None else ""
    config_hash = hashlib.sha256(f"{section_hash(cfg, *sections)}:{meta['content_sha256']}:{init_sha}:"
                                 f"{model.method.fingerprint}".encode()).hexdigest()[:16]
    if accelerator.is_main_process:
        for run_id in ckpt.open_state_dir(state_dir, config_hash):
            tracker.end_abandoned_run(run_id)
    resume = broadcast_object_list([ckpt.latest_intact(state_dir) if accelerator.is_main_process else None])[0]
    state, window = {"cur_nimg": 0, "step": 0, "mlflow_run_id": None}, MetricWindow()
    if resume is not None:
        state = ckpt.load_checkpoint(resume, model, ema, optimizer)
        window = MetricWindow({k: v.to(device) for k, v in ckpt.load_metric_window(resume).items()})
        accelerator.print(f"Resuming from {resume} ({state['cur_nimg'] / 1000:.1f} kimg)")
    previous_run = ckpt.recorded_run(state_dir) if accelerator.is_main_process else None
    if previous_run not in (None, state["mlflow_run_id"]):
        tracker.end_abandoned_run(previous_run)         # killed before it wrote the checkpoint resumed here
    cur_nimg, step = state["cur_nimg"], state["step"]
    ema.to(device)
    model, optimizer = accelerator.prepare(model, optimizer)

    # Data: uint8 images, a resumable order, per-rank slices of each global batch.
    dataset = space.dataset() if space else PreparedDataset(data_dir, "train")
    sampler = ResumableBatchSampler(len(dataset), B, cfg.train.seed, rank, world, start_step=step)
    loader = training_loader(dataset, sampler, cfg.train.num_workers, pin_memory=device.type == "cuda")

    tracker = tracker if accelerator.is_main_process else NullTracker()
    with tracker.start(state["mlflow_run_id"]) as run:
        if run.run_id is not None:
            ckpt.record_run(state_dir, run.run_id)
        if not run.resumed:
            run.log_params(flatten(cfg) | {"train.num_processes": world, "train.config_hash": config_hash,
                                           "model.num_params": sum(p.numel() for p in model.parameters())})
            run.log_dict(to_dict(cfg), "config/params.json")
            run.set_tags(tags or {})
            run.log_dataset(meta.get("name", "prepared-train"), meta["content_sha256"], data_dir, "training")
        pbar = tqdm(total=total_nimg // 1000, initial=cur_nimg // 1000, unit="kimg",
                    disable=not accelerator.is_main_process, desc="train")
        t_last, nimg_last = time.perf_counter(), cur_nimg
        for rows in loader:
            if cur_nimg >= total_nimg or (stop_after_steps is not None and step >= stop_after_steps):
                break
            # Per-step randomness: noise levels, noise and flips are a function of (seed, rank, cur_nimg).
            g = torch.Generator(device).manual_seed(step_seed(cfg.train.seed, rank, cur_nimg))
            batch = {k: v.to(device) for k, v in rows.items()}
            if space is not None and space.model_input is not None:
                batch = space.model_input(batch, g)    # e.g. latents: z drawn from the stored moments
            else:
                y = batch["image"].to(torch.float32) / 127.5 - 1
                if cfg.train.xflip:
                    flip = torch.rand([y.shape[0], 1, 1, 1], generator=g, device=device) < 0.5
                    y = torch.where(flip, y.flip(3), y)
                batch["image"] = y

            # Forward, backward, update with the linear lr ramp-up (edm training_loop.py).
            with accelerator.autocast():
                loss = model(batch, g)
            accelerator.backward(loss.mean())
            lr = cfg.train.lr * min((cur_nimg + B) / max(cfg.train.lr_rampup_kimg * 1000, 1e-8), 1)
            for group in optimizer.param_groups:
                group["lr"] = lr
            for p in model.parameters():
                if p.grad is not None:
                    torch.nan_to_num(p.grad, nan=0, posinf=1e5, neginf=-1e5, out=p.grad)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            cur_nimg += B
            step += 1

            # EMA with half-life in images, ramped up early in training (EDM).
            ema_halflife_nimg = min(cfg.train.ema_halflife_kimg * 1000, cur_nimg * cfg.train.ema_rampup_ratio)
            ema_beta = 0.5 ** (B / max(ema_halflife_nimg, 1e-8))
            with torch.no_grad():
                for p_ema, p in zip(ema.parameters(), accelerator.unwrap_model(model).parameters()):
                    p_ema.copy_(p.detach().lerp(p_ema, ema_beta))

            # Progress and metrics.
            window.add(accelerator.reduce(loss.detach().mean(), "mean").item(),
                       {name: accelerator.gather(values.detach().float())
                        for name, values in accelerator.unwrap_model(model).method.step_stats.items()})
            pbar.update(cur_nimg // 1000 - pbar.n)
            if step % cfg.train.log_every_steps == 0:
                now = time.perf_counter()
                ips = (cur_nimg - nimg_last) / (now - t_last)
                averages = window.metrics()
                run.log_metrics(averages | {"lr": lr, "images_per_sec": ips, "kimg": cur_nimg / 1000,
                                            "ema_beta": ema_beta}, step=step)
                pbar.set_postfix(loss=f"{averages['loss']:.4f}", img_s=f"{ips:.0f}")
                t_last, nimg_last, window = now, cur_nimg, MetricWindow()

            # Sample grids and checkpoints at their kimg intervals, and at the end.
            done = cur_nimg >= total_nimg
            if run.run_id and (done or _crossed(cur_nimg, B, cfg.train.grid_every_kimg)):
                _log_grid(run, ema, cfg, device, cur_nimg, space)
            if done or _crossed(cur_nimg, B, cfg.train.checkpoint_every_kimg):
                accelerator.wait_for_everyone()
                if accelerator.is_main_process:
                    run.flush()                             # the metrics up to here are stored first
                    path = ckpt.save_checkpoint(state_dir, accelerator.unwrap_model(model), ema, optimizer,
                                                {"cur_nimg": cur_nimg, "step": step,
                                                 "config_hash": config_hash, "mlflow_run_id": run.run_id},
                                                window.tensors())
                    pbar.write(f"Saved {path} (by process {rank} of {world})")
                    if cfg.tracking.log_checkpoints == "all" or (done and cfg.tracking.log_checkpoints == "last"):
                        run.log_artifacts(path, f"checkpoints/{path.name}")
                    if on_checkpoint is not None:
                        on_checkpoint(cur_nimg, ema)
                accelerator.wait_for_everyone()
        pbar.close()

        # Export the EMA model: a DVC output plus an MLflow model that generates images.
        if accelerator.is_main_process and cur_nimg >= total_nimg and out_dir is not None:
            export_model(Path(out_dir), cfg, ema, run, space)
            if not (space and space.generate):           # the pyfunc generator samples pixels only
                run.log_generator_model(Path(out_dir), cfg)
        accelerator.wait_for_everyone()
    ema.finished = cur_nimg >= total_nimg
    return ema


def _crossed(cur_nimg: int, batch: int, every_kimg: float) -> bool:
    every = max(int(every_kimg * 1000), 1)
    return cur_nimg // every != (cur_nimg - batch) // every


def _log_grid(run, ema: Trainable, cfg, device, cur_nimg: int, space=None) -> None:
    s = cfg.sample
    sampler = dict(num_steps=s.steps, sigma_min=s.sigma_min, sigma_max=s.sigma_max, rho=s.rho)
    if space is not None and space.generate is not None:
        images = space.generate(ema.D, list(GRID_SEEDS), device=device, **sampler)
    else:
        images = generate_images(ema.D, list(GRID_SEEDS), cfg.data.resolution, device=device, **sampler)
    with tempfile.TemporaryDirectory() as tmp:
        path = save_image_grid(images, Path(tmp) / f"grid-{cur_nimg // 1000:06d}kimg.png", ncols=8)
        run.log_artifact(path, "grids")

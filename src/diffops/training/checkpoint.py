"""Training-state checkpoints: written atomically, matched to their config, resumed exactly.

Layout of one checkpoint (a directory, renamed into place only when complete):
  checkpoint-<images seen, 9 digits>/
    model.safetensors      trainable modules (denoiser + method modules)
    ema.safetensors        their EMA
    optimizer.pt           optimizer state (tensors and numbers only; loaded with weights_only=True)
    metric_window.safetensors  the per-step values since the last log point (training/loop.py MetricWindow)
    state.json             cur_nimg, step, config_hash, mlflow_run_id; files: each file's bytes and sha256

Only the newest KEEP checkpoints stay. The state folder carries diffops's MARKER (utils/io.py): a folder without it is the user's and is
refused; in a marked one diffops removes checkpoint folders only, never other files.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from ..utils.io import MARKER, file_sha256, is_ours, mark, naming_disk_errors, write_json_atomic

PREFIX = "checkpoint-"
RUN_FILE = "run.json"   # the MLflow run of the training that writes here (also before its first checkpoint)
KEEP = 2            # the newest and the one before it: a resume falls back to it when the newest is damaged
METRIC_WINDOW = "metric_window.safetensors"


def save_checkpoint(state_dir: Path, model: torch.nn.Module, ema: torch.nn.Module,
                    optimizer: torch.optim.Optimizer, state: dict,
                    metric_window: dict[str, torch.Tensor] | None = None) -> Path:
    """Write a checkpoint that survives a crash: each file and the folder are on disk before the rename,
    and state.json records each file's size and sha256 (checkpoint_problem checks them)."""
    final = Path(state_dir) / f"{PREFIX}{state['cur_nimg']:09d}"
    tmp = final.with_name(final.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        with naming_disk_errors(tmp):
            _write_files(tmp, model, ema, optimizer, state, metric_window)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)      # a full disk leaves no half checkpoint behind
        raise
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    _fsync(final.parent)                      # the new name itself is on disk
    for old in list_checkpoints(state_dir)[:-KEEP]:
        shutil.rmtree(old)
    return final


def _write_files(tmp: Path, model, ema, optimizer, state: dict, metric_window) -> None:
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, tmp / "model.safetensors")
    save_file({k: v.contiguous() for k, v in ema.state_dict().items()}, tmp / "ema.safetensors")
    torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
    if metric_window is not None:
        save_file({k: v.contiguous().cpu() for k, v in metric_window.items()}, tmp / METRIC_WINDOW)
    files = {p.name: {"bytes": p.stat().st_size, "sha256": file_sha256(p)} for p in sorted(tmp.iterdir())}
    (tmp / "state.json").write_text(json.dumps(state | {"files": files}, indent=2))
    for p in tmp.iterdir():
        _fsync(p)
    _fsync(tmp)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def checkpoint_problem(path: Path) -> str | None:
    """What makes a checkpoint unusable (a missing, truncated or corrupt file), or None when it is intact."""
    state = read_state(path)
    if state is None or "files" not in state:
        return "state.json is missing, unreadable or records no file digests"
    for name, record in state["files"].items():
        f = Path(path) / name
        if not f.is_file():
            return f"{name} is missing"
        size = f.stat().st_size
        if size != record["bytes"]:
            return f"{name} is {'truncated' if size < record['bytes'] else 'longer than written'} " \
                   f"({size} of {record['bytes']} bytes)"
        if file_sha256(f) != record["sha256"]:
            return f"{name} is corrupt (its sha256 differs from the one recorded)"
    return None


def latest_intact(state_dir: Path) -> Path | None:
    """The newest intact checkpoint; each newer one that is not is reported in one line and skipped."""
    for path in reversed(list_checkpoints(state_dir)):
        problem = checkpoint_problem(path)
        if problem is None:
            return path
        print(f"{path}: {problem}; resuming from the checkpoint before it")
    return None


def list_checkpoints(state_dir: Path) -> list[Path]:
    """Checkpoints renamed into place, oldest first (half-written `.tmp` folders are not)."""
    if not Path(state_dir).is_dir():
        return []
    return sorted(p for p in Path(state_dir).glob(f"{PREFIX}*") if p.is_dir() and not p.name.endswith(".tmp"))


def open_state_dir(state_dir: Path, config_hash: str) -> list[str]:
    """Make state_dir a marked diffops state folder whose checkpoints all belong to config_hash; returns
    the MLflow run ids of the checkpoints it removed. A folder diffops did not create (not empty, no
    MARKER) is refused untouched; in a marked one, files other than checkpoints stay."""
    state_dir = Path(state_dir)
    if not is_ours(state_dir):
        raise FileExistsError(f"{state_dir}: exists without diffops's {MARKER} marker, so diffops did not create "
                              f"it and will not write or clean checkpoints in it; choose another state folder")
    state_dir.mkdir(parents=True, exist_ok=True)
    if not (state_dir / MARKER).is_file():
        mark(state_dir)
    return discard_stale(state_dir, config_hash)


def discard_stale(state_dir: Path, config_hash: str) -> list[str]:
    """Remove half-written checkpoints and those of another config (checkpoint folders only); returns
    the MLflow run ids that only the removed checkpoints named."""
    folders = [p for p in state_dir.glob(f"{PREFIX}*") if p.is_dir()]
    half_written = [p for p in folders if p.name.endswith(".tmp")]
    states = {p: read_state(p) for p in folders if p not in half_written}
    other_config = [p for p, s in states.items() if s is not None and s.get("config_hash") != config_hash]
    if other_config:
        print(f"{state_dir}: {len(other_config)} checkpoints of another training config removed; starting fresh")
    for p in half_written + other_config:
        shutil.rmtree(p)
    kept = {s.get("mlflow_run_id") for p, s in states.items() if s is not None and p not in other_config}
    return sorted({states[p].get("mlflow_run_id") for p in other_config} - kept - {None})


def record_run(state_dir: Path, run_id: str) -> None:
    write_json_atomic(Path(state_dir) / RUN_FILE, {"mlflow_run_id": run_id})


def recorded_run(state_dir: Path) -> str | None:
    """The run the last training in state_dir opened (a killed one may not have reached a checkpoint)."""
    try:
        return json.loads((Path(state_dir) / RUN_FILE).read_text()).get("mlflow_run_id")
    except (OSError, ValueError, AttributeError):
        return None


def read_state(path: Path) -> dict | None:
    """A checkpoint's state.json, or None when it is missing or unreadable."""
    try:
        return json.loads((Path(path) / "state.json").read_text())
    except (OSError, ValueError):
        return None


def load_checkpoint(path: Path, model: torch.nn.Module, ema: torch.nn.Module,
                    optimizer: torch.optim.Optimizer) -> dict:
    model.load_state_dict(load_file(path / "model.safetensors"))
    ema.load_state_dict(load_file(path / "ema.safetensors"))
    optimizer.load_state_dict(torch.load(path / "optimizer.pt", weights_only=True, map_location="cpu"))
    return json.loads((path / "state.json").read_text())


def load_metric_window(path: Path) -> dict[str, torch.Tensor]:
    return load_file(path / METRIC_WINDOW) if (path / METRIC_WINDOW).is_file() else {}

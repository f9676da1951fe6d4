"""Training-state checkpoints: written atomically, matched to their config, resumed exactly.

Layout of one checkpoint (a directory, renamed into place only when complete):
  checkpoint-<images seen, 9 digits>/
    model.safetensors      trainable modules (denoiser + method modules)
    ema.safetensors        their EMA
    optimizer.pt           optimizer state (tensors and numbers only; loaded with weights_only=True)
    state.json             cur_nimg, step, config_hash, mlflow_run_id
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

PREFIX = "checkpoint-"


def save_checkpoint(state_dir: Path, model: torch.nn.Module, ema: torch.nn.Module,
                    optimizer: torch.optim.Optimizer, state: dict) -> Path:
    final = Path(state_dir) / f"{PREFIX}{state['cur_nimg']:09d}"
    tmp = final.with_name(final.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, tmp / "model.safetensors")
    save_file({k: v.contiguous() for k, v in ema.state_dict().items()}, tmp / "ema.safetensors")
    torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
    (tmp / "state.json").write_text(json.dumps(state, indent=2))
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    return final


def list_checkpoints(state_dir: Path) -> list[Path]:
    """Complete checkpoints, oldest first (half-written `.tmp` directories are ignored)."""
    if not Path(state_dir).is_dir():
        return []
    done = [p for p in Path(state_dir).iterdir()
            if p.name.startswith(PREFIX) and not p.name.endswith(".tmp") and (p / "state.json").exists()]
    return sorted(done)


def discard_stale(state_dir: Path, config_hash: str) -> None:
    """Remove checkpoints written under another training config (they must not be resumed)."""
    ckpts = list_checkpoints(state_dir)
    if ckpts and json.loads((ckpts[-1] / "state.json").read_text()).get("config_hash") == config_hash:
        return
    if Path(state_dir).exists():
        if ckpts:
            print(f"{state_dir}: checkpoints belong to another training config; starting fresh")
        shutil.rmtree(state_dir)


def load_checkpoint(path: Path, model: torch.nn.Module, ema: torch.nn.Module,
                    optimizer: torch.optim.Optimizer) -> dict:
    model.load_state_dict(load_file(path / "model.safetensors"))
    ema.load_state_dict(load_file(path / "ema.safetensors"))
    optimizer.load_state_dict(torch.load(path / "optimizer.pt", weights_only=True, map_location="cpu"))
    return json.loads((path / "state.json").read_text())

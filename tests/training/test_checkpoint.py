"""Checkpoints survive crashes: durable before they are renamed into place, verified before they are
resumed (issue 15, part 2)."""
import json
import os

import pytest
import torch
from safetensors.torch import load_file

from diffops.training import checkpoint as ckpt
from diffops.training.loop import train

from ..conftest import single_thread, tiny_config, write_prepared

pytestmark = pytest.mark.usefixtures("one_thread")

CFG = {"train.duration_kimg": 0.06}          # 15 steps of 4 images; checkpoints at steps 5, 10 and 15


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    root = tmp_path_factory.mktemp("uninterrupted")
    data = write_prepared(root / "data")
    with single_thread():
        train(tiny_config(**CFG), data, root / "out", root / "state")
    return data, load_file(root / "out" / "ema.safetensors")


def truncate(path):
    os.truncate(path, path.stat().st_size // 2)


def flip_a_byte(path):
    raw = bytearray(path.read_bytes())
    raw[-100] ^= 0xFF                          # in the tensor data, past the safetensors header
    path.write_bytes(bytes(raw))


@pytest.mark.parametrize("damage", [truncate, flip_a_byte])
def test_a_damaged_latest_checkpoint_resumes_from_the_one_before(damage, uninterrupted, tmp_path, capsys):
    data, expected = uninterrupted
    train(tiny_config(**CFG), data, tmp_path / "out", tmp_path / "state", stop_after_steps=12)
    first, latest = ckpt.list_checkpoints(tmp_path / "state")
    assert latest.name == "checkpoint-000000040"
    damage(latest / "model.safetensors")
    capsys.readouterr()

    train(tiny_config(**CFG), data, tmp_path / "out", tmp_path / "state")
    out = capsys.readouterr().out
    reports = [line for line in out.splitlines() if str(latest) in line and "model.safetensors" in line]
    assert len(reports) == 1, out
    assert f"Resuming from {first} " in out
    got = load_file(tmp_path / "out" / "ema.safetensors")
    assert got.keys() == expected.keys() and all(torch.equal(got[k], expected[k]) for k in got)
    assert all(ckpt.checkpoint_problem(p) is None for p in ckpt.list_checkpoints(tmp_path / "state"))


def test_each_file_is_recorded_and_synced_before_the_rename(tmp_path, monkeypatch):
    model, ema = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    optimizer = torch.optim.Adam(model.parameters())
    events = []
    fsync, replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
                        or fsync(fd))
    monkeypatch.setattr(os, "replace", lambda a, b: events.append(("rename", str(b))) or replace(a, b))
    path = ckpt.save_checkpoint(tmp_path, model, ema, optimizer, {"cur_nimg": 8, "step": 2})

    state = json.loads((path / "state.json").read_text())
    files = sorted(p.name for p in path.iterdir())
    assert sorted(state["files"]) == [f for f in files if f != "state.json"]
    for name, record in state["files"].items():
        assert record["bytes"] == (path / name).stat().st_size and len(record["sha256"]) == 64
    tmp = f"{path}.tmp"
    synced_before = {p for kind, p in events[:events.index(("rename", str(path)))] if kind == "fsync"}
    assert synced_before == {f"{tmp}/{f}" for f in files} | {tmp}
    assert events[-1] == ("fsync", str(tmp_path))           # the parent folder holds the new name

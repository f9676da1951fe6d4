"""Atomic outputs and file digests: one copy of each, used by every stage and writer.

A stage writes into `<out>.tmp` and renames it over `<out>` only when complete, so an interrupted
stage never leaves a folder or file that looks finished.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from pathlib import Path


def tmp_path(out: Path) -> Path:
    out = Path(out)
    return out.with_name(out.name + ".tmp")


@contextlib.contextmanager
def atomic_dir(out_dir: Path):
    """Yield an empty `<out_dir>.tmp`; on success it replaces out_dir, on error it is removed."""
    out_dir = Path(out_dir)
    tmp = tmp_path(out_dir)
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    replace_dir(tmp, out_dir)


def replace_dir(tmp: Path, out_dir: Path) -> None:
    """Move a complete tmp folder into place (os.replace cannot replace a non-empty folder)."""
    shutil.rmtree(out_dir, ignore_errors=True)
    os.replace(tmp, out_dir)


def write_text_atomic(path: Path, text: str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_path(path)
    tmp.write_text(text)
    os.replace(tmp, path)
    return path


def write_json_atomic(path: Path, obj) -> Path:
    return write_text_atomic(path, json.dumps(obj, indent=2) + "\n")


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()

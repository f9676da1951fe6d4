"""Atomic outputs and file digests: one copy of each, used by every stage and writer.

A stage writes into `<out>.tmp` and renames it over `<out>` only when complete, so an interrupted
stage never leaves a folder or file that looks finished. Every folder diffops writes carries a marker
file (MARKER); a folder without it is the user's and is never replaced or cleaned.
"""
from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
from pathlib import Path

MARKER = ".diffops"


def writer_name() -> str:
    """What is writing: the running diffops command (e.g. "diffops tiw train"), else "diffops"."""
    import click
    ctx = click.get_current_context(silent=True)
    return ctx.command_path if ctx is not None else "diffops"


def mark(folder: Path, written_by: str | None = None) -> None:
    """Record in `folder` that diffops wrote it (no time stamp: outputs stay byte-reproducible)."""
    (Path(folder) / MARKER).write_text(json.dumps({"written_by": written_by or writer_name()}) + "\n")


def is_ours(folder: Path) -> bool:
    """True for a folder diffops may replace or clean: absent, empty, or marked by diffops."""
    folder = Path(folder)
    if not folder.exists():
        return True
    return folder.is_dir() and ((folder / MARKER).is_file() or not any(folder.iterdir()))


def check_replaceable(out: Path) -> None:
    """Refuse, before any work, to replace a folder (or file in its place) that diffops did not write."""
    if not is_ours(out):
        what = "a file" if Path(out).is_file() else f"a folder without diffops's {MARKER} marker"
        raise FileExistsError(f"{out}: exists and is {what}, so diffops did not write it and will not replace it; "
                              f"choose another output path or move it away yourself")


def tmp_path(out: Path) -> Path:
    out = Path(out)
    return out.with_name(out.name + ".tmp")


@contextlib.contextmanager
def atomic_dir(out_dir: Path):
    """Yield an empty `<out_dir>.tmp`; on success it replaces out_dir, on error it is removed.
    A folder diffops did not write is refused on entry, before the caller computes anything."""
    out_dir = Path(out_dir)
    check_replaceable(out_dir)
    tmp = tmp_path(out_dir)
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        with naming_disk_errors(tmp):
            yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    replace_dir(tmp, out_dir)


DISK_ERRNO_TEXT = {"No space left on device": errno.ENOSPC, "Disk quota exceeded": errno.EDQUOT,
                   "Read-only file system": errno.EROFS}


@contextlib.contextmanager
def naming_disk_errors(path: Path):
    """A full or read-only disk met inside becomes an OSError naming `path`, also when the library that
    met it lost the errno or the file name (zipfile, lmdb, safetensors' "I/O error: ... (os error 28)")."""
    try:
        yield
    except OSError as e:
        if e.filename is None and e.errno in DISK_ERRNO_TEXT.values():
            raise OSError(e.errno, e.strerror or str(e), str(path)) from e
        raise
    except Exception as e:
        code = next((c for t, c in DISK_ERRNO_TEXT.items() if t in str(e)), None)
        if code is None:
            raise
        raise OSError(code, os.strerror(code), str(path)) from e


def replace_dir(tmp: Path, out_dir: Path) -> None:
    """Mark a complete tmp folder and move it into place (os.replace cannot replace a non-empty folder)."""
    check_replaceable(out_dir)
    mark(tmp)
    if Path(out_dir).exists():
        shutil.rmtree(out_dir)
    os.replace(tmp, out_dir)


def check_writable(out: Path) -> None:
    """Refuse an output whose nearest existing folder cannot be written (read-only file system, permissions)."""
    folder = Path(out).absolute()
    while not folder.exists():
        folder = folder.parent
    if not folder.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, f"{folder} is a file, not a folder", str(out))
    if hasattr(os, "statvfs") and os.statvfs(folder).f_flag & os.ST_RDONLY:
        raise OSError(errno.EROFS, f"{folder} is on a read-only file system; choose a writable path", str(out))
    if not os.access(folder, os.W_OK):
        raise PermissionError(errno.EACCES, f"{folder} is not writable; choose a writable path", str(out))


def check_free_space(folder: Path, nbytes: int) -> None:
    """Refuse to start writing `nbytes` into `folder` when its file system has less free space."""
    free = shutil.disk_usage(folder).free
    if free < nbytes:
        raise OSError(errno.ENOSPC, f"No space left on device: needs {human_bytes(nbytes)}, {human_bytes(free)} free",
                      str(folder))


def allocate(path: Path) -> None:
    """Reserve a file's blocks (a memory-mapped write to a full disk would be a SIGBUS, not an error)."""
    with open(path, "r+b") as f:
        size = os.fstat(f.fileno()).st_size
        if size and hasattr(os, "posix_fallocate"):
            os.posix_fallocate(f.fileno(), 0, size)


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000:
            return f"{n:.0f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def write_text_atomic(path: Path, text: str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_path(path)
    try:
        tmp.write_text(text)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
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

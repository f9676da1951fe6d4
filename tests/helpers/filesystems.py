"""Real small or read-only file systems for the full-disk and read-only tests (tmpfs mounts; the tests
run as root on the CI machine). Where mounting is not permitted the test is skipped with the reason."""
import subprocess
from pathlib import Path

import pytest

_mounted: list[Path] = []


def small_filesystem(where: Path, size: str, read_only: bool = False) -> Path:
    """A tmpfs of `size` (e.g. "64k") mounted at `where`, unmounted at the end of the session."""
    where.mkdir(parents=True, exist_ok=True)
    opts = f"size={size}" + (",ro" if read_only else "")
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(where)], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({proc.stderr.strip() or proc.returncode}); "
                    f"the full-disk and read-only tests need root")
    _mounted.append(where)
    return where


def remount_read_only(where: Path) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(where)], check=True)


def unmount_all() -> None:
    while _mounted:
        subprocess.run(["umount", "-l", str(_mounted.pop())], capture_output=True)

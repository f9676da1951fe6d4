"""Dataset containers, read and written compatibly with their reference tools.

edm2 / REPA (NVlabs/edm2 dataset_tool.py): a folder or a ZIP_STORED zip of
    00000/img00000000.png ...            level-0 PNGs; index i is f"{i:08d}" split 5 + 8
    00000/img-mean-std-00000000.npy ...  VAE latents: float32 mean || std, (2C, H/f, W/f), np.save
    dataset.json                         {"labels": [[name, label], ...]} or {"labels": null}
  Skipped images keep their index (gaps). A folder destination must be empty.

diffae LMDB (phizaz/diffae data_resize_*.py, dataset.py BaseLMDB): an LMDB directory with keys
    f"{prefix}-{str(index).zfill(Z)}" -> encoded image bytes,  b"length" -> str(count).encode()
  prefix/zfill: CelebA "None"/7 (original 178x218, WebP q100), FFHQ and CelebA-HQ "256"/5 (JPEG q100),
  LSUN bedroom/horse "256"/7 (WebP q90). Writers use map_size 1024**4, readahead=False and commit one
  transaction per batch; readers open readonly=True, lock=False, readahead=False, meminit=False,
  max_readers=32, lazily in each process. Never write while readers are active.

Writers write into `<dest>.tmp` and `commit()` renames it to `dest` only when complete, so an
interrupted run leaves nothing a reader or DVC could take for a finished dataset.
"""
from __future__ import annotations

import io
import json
import os
import shutil
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

def edm2_name(idx: int, latent: bool = False) -> str:
    s = f"{idx:08d}"
    return f"{s[:5]}/img-mean-std-{s}.npy" if latent else f"{s[:5]}/img{s}.png"


def encode_png(img: Image.Image) -> bytes:
    """Uncompressed ("level-0") PNG, the storage of edm2 (which calls PIL with compress_level=0).

    RGB images are written directly: filter type 0 on every row, deflate stored blocks, so the bytes
    are a plain copy of the pixels (several times faster than PIL's encoder; pixels are identical,
    bytes are not, which is why datasets are compared by pixels). Other modes go through PIL.
    """
    if img.mode != "RGB":
        buf = io.BytesIO()
        img.save(buf, format="png", compress_level=0, optimize=False)
        return buf.getvalue()
    w, h = img.size
    raw = np.zeros((h, 1 + 3 * w), np.uint8)            # a leading 0 = filter "None" per row
    raw[:, 1:] = np.asarray(img).reshape(h, 3 * w)
    return b"".join((b"\x89PNG\r\n\x1a\n", _png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)),
                     _png_chunk(b"IDAT", zlib.compress(raw.tobytes(), 0)), _png_chunk(b"IEND", b"")))


def _png_chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)


def encode_npy(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()


def dest_kind(dest) -> str:
    suffix = Path(dest).suffix.lower()
    return {".zip": "zip", ".lmdb": "lmdb"}.get(suffix, "folder")


def tmp_path(dest) -> Path:
    dest = Path(dest)
    return dest.with_name(dest.name + ".tmp")


def check_dest_free(dest) -> None:
    dest = Path(dest)
    if dest.is_dir() and any(dest.iterdir()) or dest.is_file():
        raise FileExistsError(f"{dest} already exists; remove it first (a destination folder must be empty)")


# ----------------------------------------------------------------------------
# Writers

def write_member(root: Path, name: str, data: bytes, made_dirs: set) -> None:
    """Write root/name (an edm2 folder member), creating its subfolder once per process."""
    d = name.rpartition("/")[0]
    if d and d not in made_dirs:
        (root / d).mkdir(parents=True, exist_ok=True)
        made_dirs.add(d)
    with open(root / name, "wb") as f:
        f.write(data)


class StoredZipWriter:
    """Append-only ZIP_STORED archive (APPNOTE.TXT 4.3), zip64 where Python's zipfile would use it.

    One write per member: the local header is complete up front, so nothing is sought back and
    rewritten (zipfile.writestr writes each member in 7 writes and 3 seeks, which made it the serial
    cost of a parallel convert). The CRC-32 may come precomputed from the process that encoded the
    bytes. Every member is dated 1980-01-01 00:00, so the same members give a byte-identical archive.
    """
    VERSION, VERSION_ZIP64 = 20, 45
    LIMIT = (1 << 31) - 1                    # zipfile.ZIP64_LIMIT: offsets/sizes above it need zip64
    DATE, TIME = (0 << 9) | (1 << 5) | 1, 0  # DOS date 1980-01-01, time 00:00:00
    MODE = 0o600 << 16                       # external attributes, as zipfile.writestr's

    def __init__(self, path):
        self.path = Path(path)
        self._f = open(self.path, "wb", buffering=1 << 20)     # one system call per MiB, not per member
        self._offset, self._entries = 0, []

    def add(self, name: str, data: bytes, crc: int | None = None) -> None:
        if len(data) > self.LIMIT:
            raise ValueError(f"{name}: {len(data)} bytes; members over 2 GiB are not supported")
        raw = name.encode("utf-8")
        flags = 0 if raw.isascii() else 0x800                  # bit 11: UTF-8 name
        crc = zlib.crc32(data) if crc is None else crc
        header = struct.pack("<4s2B4HL2L2H", b"PK\x03\x04", self.VERSION, 0, flags, 0, self.TIME, self.DATE,
                             crc, len(data), len(data), len(raw), 0)
        self._f.write(header + raw)
        self._f.write(data)
        self._entries.append((raw, flags, crc, len(data), self._offset))
        self._offset += len(header) + len(raw) + len(data)

    def close(self) -> None:
        start, central = self._offset, []
        for raw, flags, crc, size, offset in self._entries:
            extra, version = b"", self.VERSION
            if offset > self.LIMIT:                            # zip64 extended information (header id 1)
                extra, offset, version = struct.pack("<HHQ", 1, 8, offset), 0xFFFFFFFF, self.VERSION_ZIP64
            central.append(struct.pack("<4s4B4HL2L5H2L", b"PK\x01\x02", version, 3, version, 0, flags, 0,
                                       self.TIME, self.DATE, crc, size, size, len(raw), len(extra), 0, 0, 0,
                                       self.MODE, offset) + raw + extra)
        self._f.write(b"".join(central))
        count, size = len(central), sum(map(len, central))
        if count >= 0xFFFF or start > self.LIMIT or size > self.LIMIT:   # zip64 end record + locator
            end64 = self._offset + size
            self._f.write(struct.pack("<4sQ2H2L4Q", b"PK\x06\x06", 44, self.VERSION_ZIP64, self.VERSION_ZIP64,
                                      0, 0, count, count, size, start)
                          + struct.pack("<4sLQL", b"PK\x06\x07", 0, end64, 1))
            count, size, start = min(count, 0xFFFF), min(size, 0xFFFFFFFF), min(start, 0xFFFFFFFF)
        self._f.write(struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, count, count, size, start, 0))
        self._f.close()

    def abort(self) -> None:
        self._f.close()


class Edm2Writer:
    """Folder or ZIP_STORED zip in the edm2 layout; add(name, bytes, label) then commit() or abort()."""

    def __init__(self, dest):
        self.dest, self.tmp = Path(dest), tmp_path(dest)
        check_dest_free(self.dest)
        self.zip = dest_kind(dest) == "zip"
        self._remove_tmp()
        self.tmp.parent.mkdir(parents=True, exist_ok=True)
        if self.zip:
            self._zf = StoredZipWriter(self.tmp)
        else:
            self.tmp.mkdir()
        self._dirs = set()
        self.labels = []

    def _remove_tmp(self):
        if self.tmp.is_dir():
            shutil.rmtree(self.tmp)
        elif self.tmp.exists():
            self.tmp.unlink()

    def write(self, name: str, data: bytes, crc: int | None = None) -> None:
        if self.zip:
            self._zf.add(name, data, crc)
        else:
            write_member(self.tmp, name, data, self._dirs)

    def add(self, name: str, data: bytes | None, label=None, crc: int | None = None) -> None:
        """data None: a member that a convert worker already wrote into `tmp` (folders only)."""
        if data is not None:
            self.write(name, data, crc)
        elif self.zip:
            raise ValueError(f"{name}: a zip member needs its bytes")
        self.labels.append([name, label] if label is not None else None)

    def commit(self, extra_files: dict[str, bytes] | None = None) -> Path:
        labels = self.labels if all(x is not None for x in self.labels) else None
        self.write("dataset.json", json.dumps({"labels": labels}).encode())
        for name, data in (extra_files or {}).items():
            self.write(name, data)
        if self.zip:
            self._zf.close()
        if self.dest.is_dir():              # an empty folder (checked in __init__)
            self.dest.rmdir()
        os.replace(self.tmp, self.dest)
        return self.dest

    def abort(self) -> None:
        if self.zip:
            self._zf.abort()
        self._remove_tmp()


class LmdbWriter:
    """diffae LMDB: add(index, bytes) with keys f"{prefix}-{str(index).zfill(zfill)}", then `length`."""

    def __init__(self, dest, prefix: str, zfill: int, map_size: int = 1024**4, batch: int = 1000):
        import lmdb
        self.dest, self.tmp = Path(dest), tmp_path(dest)
        check_dest_free(self.dest)
        shutil.rmtree(self.tmp, ignore_errors=True)
        self.tmp.parent.mkdir(parents=True, exist_ok=True)
        self.prefix, self.zfill, self.batch = prefix, zfill, batch
        self._env = lmdb.open(str(self.tmp), map_size=map_size, readahead=False)
        self._txn, self._pending, self.count = self._env.begin(write=True), 0, 0

    def add(self, index: int, data: bytes) -> None:
        self._txn.put(lmdb_key(self.prefix, index, self.zfill), data)
        self.count += 1
        self._pending += 1
        if self._pending >= self.batch:     # one transaction per batch, as diffae's writers
            self._txn.commit()
            self._txn, self._pending = self._env.begin(write=True), 0

    def commit(self, extra_files: dict[str, bytes] | None = None) -> Path:
        self._txn.put(b"length", str(self.count).encode("utf-8"))
        self._txn.commit()
        self._env.sync()
        self._env.close()
        for name, data in (extra_files or {}).items():    # e.g. list_attr_celeba.txt, as DiTi expects
            (self.tmp / name).write_bytes(data)
        if self.dest.is_dir():
            self.dest.rmdir()
        os.replace(self.tmp, self.dest)
        return self.dest

    def abort(self) -> None:
        try:
            self._txn.abort()
            self._env.close()
        except Exception:
            pass
        shutil.rmtree(self.tmp, ignore_errors=True)


def lmdb_key(prefix: str, index: int, zfill: int) -> bytes:
    return f"{prefix}-{str(index).zfill(zfill)}".encode("utf-8")


# ----------------------------------------------------------------------------
# Readers

_LMDB_ENVS: dict[str, tuple[int, object]] = {}


def _lmdb_env(path: Path):
    """One read-only, lock-free environment per (process, path): py-lmdb refuses to open a path twice in
    a process, and an environment must not be used across fork(), so a forked worker drops the one it
    inherited (lock=False: there is no shared lock table to disturb) and opens its own."""
    import lmdb
    key = str(Path(path).resolve())
    pid, env = _LMDB_ENVS.get(key, (None, None))
    if pid != os.getpid():
        if env is not None:
            env.close()
        env = lmdb.open(key, max_readers=32, readonly=True, lock=False, readahead=False, meminit=False)
        _LMDB_ENVS[key] = (os.getpid(), env)
    return env


class LmdbReader:
    """Read-only, lock-free diffae LMDB reader; the environment is opened lazily in each process.

    prefix/zfill default to those of the first image key (keys sort before b"length"). An LMDB that
    holds several sizes (diffae's FFHQ/CelebA-HQ writers accept a list) needs an explicit prefix.
    """

    def __init__(self, path, prefix: str | None = None, zfill: int | None = None):
        self.path = Path(path)
        if not (self.path / "data.mdb").is_file():
            raise FileNotFoundError(f"{path}: not an LMDB directory (no data.mdb)")
        with self._env().begin(write=False) as txn:
            raw = txn.get(b"length")
            if raw is None:
                raise ValueError(f"{path}: no 'length' key; not a diffae-style LMDB")
            self.length = int(raw.decode("utf-8"))
            if prefix is None or zfill is None:
                first = next((k for k, _ in txn.cursor() if k != b"length"), None)
                if first is None:
                    raise ValueError(f"{path}: no image keys")
                p, _, digits = first.decode("utf-8").rpartition("-")
                prefix, zfill = prefix or p, zfill or len(digits)
        self.prefix, self.zfill = prefix, zfill

    def _env(self):
        return _lmdb_env(self.path)

    def __getstate__(self):
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_h")}

    def __len__(self):
        return self.length

    def key(self, i: int) -> str:
        return lmdb_key(self.prefix, i, self.zfill).decode("utf-8")

    def read_bytes(self, i: int) -> bytes:
        with self._env().begin(write=False) as txn:
            data = txn.get(lmdb_key(self.prefix, i, self.zfill))
        if data is None:
            raise KeyError(f"{self.path}: no key {self.key(i)!r}")
        return data

    def __getitem__(self, i: int) -> np.ndarray:
        """uint8 (H, W, 3)."""
        return np.asarray(Image.open(io.BytesIO(self.read_bytes(i))).convert("RGB"))


class Edm2Reader:
    """An edm2 folder or zip: images (.png etc.) or latents (.npy), sorted, with dataset.json labels."""

    def __init__(self, path):
        from .sources import image_extensions, is_image_name
        self.path = Path(path)
        if not self.path.exists():
            raise FileNotFoundError(f"{path}: no such dataset")
        exts = image_extensions() | {".npy"}
        if self.path.is_dir():
            names = sorted(os.path.relpath(os.path.join(r, f), self.path).replace("\\", "/")
                           for r, _, fs in os.walk(self.path) for f in fs)
        else:
            with zipfile.ZipFile(self.path) as z:
                names = sorted(z.namelist())
        self.names = [n for n in names if is_image_name(n, exts)]
        labels = {}
        meta = self.read_file("dataset.json")
        if meta is not None:
            data = json.loads(meta)["labels"]
            labels = {x[0]: x[1] for x in data} if data is not None else {}
        self.labels = [labels.get(n) for n in self.names]

    def _zip(self):
        if getattr(self, "_h_pid", None) != os.getpid():
            self._h_zip, self._h_pid = zipfile.ZipFile(self.path), os.getpid()
        return self._h_zip

    def __getstate__(self):
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_h")}

    def read_file(self, name: str) -> bytes | None:
        if self.path.is_dir():
            p = self.path / name
            return p.read_bytes() if p.is_file() else None
        try:
            return self._zip().read(name)
        except KeyError:
            return None

    def __len__(self):
        return len(self.names)

    def __getitem__(self, i: int) -> np.ndarray:
        """uint8 (H, W, 3) for images, the stored array for .npy."""
        data = self.read_file(self.names[i])
        if self.names[i].endswith(".npy"):
            return np.load(io.BytesIO(data), allow_pickle=False)
        return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))

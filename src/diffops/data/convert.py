"""Parallel dataset conversion: decode -> transform -> encode in worker processes, written in index order.

Source: a folder (ImageNet-style tree or edm2 folder), an edm2 zip, a diffae LMDB or a CelebA root
(see sources.py). Destination by suffix: `.zip` (edm2 ZIP_STORED), `.lmdb` (diffae keys), else an
edm2 folder. Output pixels equal those of edm2's single-process dataset_tool.py loop (tested, and
checked in benchmarks/convert_throughput.py); only the work is spread over processes.

- Workers take contiguous index ranges (batch_size images each); at most 2 * num_workers + 2 ranges are
  in flight, so memory stays bounded however slow the disk is. Workers also hash each output (SHA-256,
  and the CRC-32 of a zip member) and write folder members themselves, so the main process does one
  write per image (zip, LMDB) or none (folder) and orders the metadata: it was the serial part that
  kept the dhariwal crop near one core's rate (benchmarks/convert_throughput.py).
- edm2 destinations keep the index of a skipped image free (gaps, as edm2); an LMDB is compact
  (keys 0 .. length-1, which its readers require) and the report maps skipped files to source indices.
- Unreadable inputs (corrupt, truncated, not an image, too small for the transform) are listed by
  file name in the report (`<dest>.report.json` unless given) and the summary; on_error=fail stops at
  the first one. Outputs are written to `<dest>.tmp` and renamed when complete.
"""
from __future__ import annotations

import hashlib
import io
import multiprocessing as mp
import signal
import time
import zlib
from collections import deque
from pathlib import Path

from PIL import Image, ImageFile, UnidentifiedImageError
from tqdm import tqdm

from ..utils.io import naming_disk_errors, write_json_atomic
from ..utils.signals import interrupts_raise

from .containers import Edm2Writer, LmdbWriter, dest_kind, edm2_name, encode_png, tmp_path, write_member
from .sources import CelebASource, open_source
from .transforms import make_transform

LMDB_CODECS = ("webp", "jpeg", "png")


class ConvertError(ValueError):
    pass


# ----------------------------------------------------------------------------
# Worker side: one source, transform and encoder per process (set by _init_worker).

_WORKER = {}


def _init_worker(source, transform_args: dict, codec: str, quality: int, kind: str, folder,
                 ignore_sigint: bool = True):
    if ignore_sigint:                      # the main process handles Ctrl-C and terminates the pool
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    _WORKER.update(source=source, transform=make_transform(**transform_args), codec=codec, quality=quality,
                   kind=kind, folder=folder, made_dirs=set())


def _encode(img: Image.Image, codec: str, quality: int) -> bytes:
    if codec == "png":
        return encode_png(img)
    buf = io.BytesIO()
    img.save(buf, format=codec, quality=quality)       # diffae: webp q100 (CelebA), jpeg q100 (FFHQ)
    return buf.getvalue()


def convert_one(data: bytes, transform, codec: str = "png", quality: int = 100):
    """bytes -> (encoded bytes, (w, h)); raises on anything unreadable or too small."""
    img = Image.open(io.BytesIO(data))
    img.load()                                          # full decode now: truncation raises here
    img = img.convert("RGB") if img.mode != "RGB" else img
    out = transform(img)
    return _encode(out, codec, quality), out.size


def _work(start: int, stop: int) -> list[tuple]:
    """(payload or None once written to a folder, size, sha256 digest, crc32 or None, error) per index."""
    w, out = _WORKER, []
    for i in range(start, stop):
        try:
            payload, size = convert_one(w["source"].read(i), w["transform"], w["codec"], w["quality"])
        except Exception as e:                          # corrupt, truncated, not an image, too small
            detail = "not an image file PIL can read" if isinstance(e, UnidentifiedImageError) else str(e)
            msg = f"{type(e).__name__}: {detail}".splitlines()[0] if detail else type(e).__name__
            out.append((None, None, None, None, msg))
            continue
        digest, crc = hashlib.sha256(payload).digest(), None
        if w["kind"] == "folder":
            write_member(w["folder"], edm2_name(i), payload, w["made_dirs"])
            payload = None
        elif w["kind"] == "zip":
            crc = zlib.crc32(payload)
        out.append((payload, size, digest, crc, None))
    return out


# ----------------------------------------------------------------------------
# Main process.

def convert(source, dest, *, transform: str = "center-crop", resolution: int = 64, height: int = 0,
            filter: str = "default", crop: int = 140, num_workers: int = 2, batch_size: int = 64,
            on_error: str = "skip", max_images: int = 0, celeba_split: str = "all",
            lmdb_codec: str = "webp", lmdb_quality: int = 100, lmdb_zfill: int = 7,
            report_path=None, progress: bool = True) -> dict:
    """Convert `source` into `dest`; returns the report dict (also written to report_path)."""
    dest = Path(dest)
    report_path = Path(report_path) if report_path else dest.with_name(dest.name + ".report.json")
    if on_error not in ("skip", "fail"):
        raise ValueError(f"on_error: must be skip or fail, got {on_error!r}")
    kind = dest_kind(dest)
    if kind == "lmdb" and lmdb_codec not in LMDB_CODECS:
        raise ValueError(f"lmdb_codec: must be one of {', '.join(LMDB_CODECS)}, got {lmdb_codec!r}")
    transform_args = dict(name=transform, resolution=resolution, height=height, filter=filter, crop=crop)
    make_transform(**transform_args)                    # validate before any work
    src = open_source(source, celeba_split)
    n = min(len(src), max_images) if max_images else len(src)
    if n == 0:
        raise ConvertError(f"{source}: no images found (extensions PIL knows: .png, .jpg, .jpeg, .webp, ...)")

    codec = lmdb_codec if kind == "lmdb" else "png"
    prefix = str(resolution) if resolution else "None"            # diffae: f"{size}-", CelebA originals "None-"
    writer = LmdbWriter(dest, prefix, lmdb_zfill) if kind == "lmdb" else Edm2Writer(dest)
    stats = {"written": 0, "skipped": [], "size": None, "sha": hashlib.sha256(), "kept": []}
    status, t0 = "failed", time.perf_counter()
    pbar = tqdm(total=n, unit="img", desc="convert", disable=not progress, smoothing=0.1)
    folder = writer.tmp if kind == "folder" else None     # workers write folder members themselves
    results = _results(src, n, (transform_args, codec, lmdb_quality, kind, folder), num_workers, batch_size)
    try:
        with interrupts_raise(), naming_disk_errors(dest):  # SIGTERM ends like Ctrl-C: the partial output is removed
            for i, result in enumerate(results):
                _write_one(i, *result, src, writer, kind, on_error, stats)
                if i % batch_size == batch_size - 1 or i == n - 1:
                    pbar.update(i + 1 - pbar.n)
            if stats["written"] == 0:
                raise ConvertError(f"{source}: none of the {n} images could be converted (see {report_path})")
            writer.commit(_extra_files(src, kind, stats["kept"]))
            status = "complete"
    except KeyboardInterrupt:
        status = "interrupted"
        raise
    finally:
        pbar.close()
        results.close()                                    # stops the pool (and its writes) before any cleanup
        if status != "complete":
            writer.abort()
        seconds = time.perf_counter() - t0
        report = {
            "status": status, "source": str(source), "source_kind": src.kind, "dest": str(dest),
            "dest_kind": kind, "transform": transform, "resolution": resolution, "height": height,
            "filter": filter, "crop": crop, "on_error": on_error, "num_workers": num_workers,
            "batch_size": batch_size, "codec": codec, "inputs": n, "written": stats["written"],
            "skipped_count": len(stats["skipped"]), "skipped": stats["skipped"],
            "image_size": stats["size"], "seconds": round(seconds, 3),
            "images_per_sec": round((stats["written"] + len(stats["skipped"])) / max(seconds, 1e-9), 1),
            "content_sha256": stats["sha"].hexdigest() if status == "complete" else None,
        }
        write_json_atomic(report_path, report)
    _print_summary(report, report_path)
    return report


def _results(src, n, worker_args: tuple, num_workers, batch_size):
    """_work's tuples for indices 0..n-1, in order; a bounded window of ranges in flight."""
    ranges = [(s, min(s + batch_size, n)) for s in range(0, n, batch_size)]
    if num_workers <= 1:
        _init_worker(src, *worker_args, ignore_sigint=False)
        for r in ranges:
            yield from _work(*r)
        return
    ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else mp.get_context()
    with ctx.Pool(num_workers, initializer=_init_worker, initargs=(src, *worker_args)) as pool:
        todo, pending = iter(ranges), deque()
        for r in todo:
            pending.append(pool.apply_async(_work, r))
            if len(pending) >= 2 * num_workers + 2:
                break
        while pending:
            batch = pending.popleft().get()
            nxt = next(todo, None)
            if nxt is not None:
                pending.append(pool.apply_async(_work, nxt))
            yield from batch


def _write_one(i, payload, size, digest, crc, error, src, writer, kind, on_error, stats):
    """Check one result and record it (content_sha256 = SHA-256 over each member's name and SHA-256)."""
    name = src.names[i]
    if error is not None:
        stats["skipped"].append({"index": i, "file": name, "error": error})
        if on_error == "fail":
            raise ConvertError(f"{name}: {error} (use --on-error skip to skip such files)")
        return
    if stats["size"] is None:                          # the first image fixes the size (edm2)
        stats["size"] = list(size)
        w, h = size
        if kind != "lmdb" and (w != h or w & (w - 1)):
            raise ConvertError(f"{name}: output {w}x{h}; edm2 datasets need square power-of-two images "
                               f"(choose a transform and resolution that give one)")
    elif list(size) != stats["size"]:
        raise ConvertError(f"{name}: output {size[0]}x{size[1]} differs from the first image's "
                           f"{stats['size'][0]}x{stats['size'][1]}; all images must have one size")
    if kind == "lmdb":
        index = stats["written"]                          # compact: keys 0 .. length-1
        writer.add(index, payload)
        stats["sha"].update(f"{index}\n".encode())
    else:
        out_name = edm2_name(i)                           # gaps for skipped images (edm2)
        writer.add(out_name, payload, src.labels[i], crc)  # payload None: a worker wrote the folder member
        stats["sha"].update(f"{out_name}\n".encode())
    stats["sha"].update(digest)
    stats["kept"].append(i)
    stats["written"] += 1


def _extra_files(src, kind, kept) -> dict:
    """CelebA -> LMDB: list_attr_celeba.txt of the written images in LMDB order (DiTi reads it there)."""
    if kind != "lmdb" or not isinstance(src, CelebASource):
        return {}
    import tempfile
    import numpy as np
    from .celeba import write_attributes
    names = [src.names[i] for i in kept]
    attrs = np.array([[1 if v else -1 for v in src.labels[i]] for i in kept])
    with tempfile.TemporaryDirectory() as d:
        write_attributes(Path(d) / "attrs.txt", names, attrs)
        return {"list_attr_celeba.txt": (Path(d) / "attrs.txt").read_bytes()}


def _print_summary(report, report_path):
    print(f"convert: {report['written']} images in {report['seconds']:.1f} s ({report['images_per_sec']:.0f} "
          f"images/s, {report['num_workers']} worker(s)) -> {report['dest']}; skipped {report['skipped_count']}"
          + (f" (listed in {report_path})" if report["skipped_count"] else ""))
    for s in report["skipped"][:10]:
        print(f"  skipped {s['file']}: {s['error']}")
    if report["skipped_count"] > 10:
        print(f"  ... and {report['skipped_count'] - 10} more in {report_path}")


__all__ = ["convert", "convert_one", "ConvertError", "tmp_path"]

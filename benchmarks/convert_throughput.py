"""Throughput of `diffops convert` against a tight single-process loop and (given a checkout) edm2's own tool.

Inputs are generated once and cached: N synthetic faces (seed 777, not the quickstart's data) saved as
178x218 JPEGs at quality 90, CelebA's size, three of them truncated (the convert must survive them);
the same images as PNG files; and 2,000 ImageNet-size (500x375) JPEGs for the ImageNet projection.

Each case (transform / input / output) is converted by
  - tight loop:  decode -> transform -> level-0 PNG (PIL, as edm2) -> zipfile / file / LMDB put, one
                 process, the reference algorithm re-typed here (guided-diffusion center_crop_arr,
                 edm2 center-crop, BOX squash, the CelebA central crop); broken files skipped;
  - diffops:     diffops.data.convert.convert with 2 workers and with 1 process;
  - edm2:        `python dataset_tool.py convert` of an NVlabs/edm2 checkout (--edm2 PATH) on the same
                 images without the three broken ones (edm2 stops at the first); dhariwal and
                 center-crop cases with zip or folder output only (the transforms edm2 has).
Runs alternate (tight, diffops-2, diffops-1, edm2, tight, ...) so that load from other users of the
machine hits all alike; reported are medians over >= 5 repeats and the median of per-repeat ratios.
Before any number is printed, every diffops output and edm2's are checked pixel for pixel against the
tight loop's. In-process runs are timed from the call to the closed output; edm2 includes its start-up.

    .venv/bin/python benchmarks/convert_throughput.py --images 12000 --cases dhariwal-jpeg-zip
    .venv/bin/python benchmarks/convert_throughput.py --images 4000 --edm2 ~/src/edm2      # every case
"""
from __future__ import annotations

import argparse
import contextlib
import io
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from multiprocessing import Pool
from pathlib import Path

import numpy as np
import PIL
from PIL import Image

RES = 64
BROKEN = (17, 5000, 11111)                  # truncated to half their bytes (indices < N only)
IMAGENET_SIZE, IMAGENET_COUNT = (500, 375), 2000


# ----------------------------------------------------------------------------
# Reference transforms, re-typed from their sources (PIL image in, PIL image out).

def dhariwal(img):                          # guided-diffusion image_datasets.center_crop_arr
    while min(*img.size) >= 2 * RES:
        img = img.resize(tuple(x // 2 for x in img.size), resample=Image.BOX)
    scale = RES / min(*img.size)
    img = img.resize(tuple(round(x * scale) for x in img.size), resample=Image.BICUBIC)
    arr = np.array(img)
    top, left = (arr.shape[0] - RES) // 2, (arr.shape[1] - RES) // 2
    return Image.fromarray(arr[top:top + RES, left:left + RES])


def center_crop(img):                       # edm2 dataset_tool center-crop (LANCZOS)
    arr = np.array(img)
    s = np.min(arr.shape[:2])
    arr = arr[(arr.shape[0] - s) // 2:(arr.shape[0] + s) // 2, (arr.shape[1] - s) // 2:(arr.shape[1] + s) // 2]
    return Image.fromarray(arr, "RGB").resize((RES, RES), Image.LANCZOS)


def squash(img):                            # Chrabaszcz et al. 2017 ImageNet 64x64: whole image, BOX
    return img.resize((RES, RES), Image.BOX)


def celeba_crop(img, crop=140):             # ScoreSDE CelebA: central 140 x 140, BICUBIC
    W, H = img.size
    left, top = (W - crop) // 2, (H - crop) // 2
    return img.crop((left, top, left + crop, top + crop)).resize((RES, RES), Image.BICUBIC)


TRANSFORMS = {"dhariwal": ("center-crop-dhariwal", dhariwal, "center-crop-dhariwal"),
              "squash": ("squash", squash, None), "celeba": ("celeba-crop", celeba_crop, None),
              "lanczos": ("center-crop", center_crop, "center-crop")}     # diffops name, reference, edm2 name
CASES = ("dhariwal-jpeg-zip", "dhariwal-jpeg-folder", "dhariwal-jpeg-lmdb", "dhariwal-png-zip",
         "squash-jpeg-zip", "celeba-jpeg-zip", "lanczos-jpeg-zip", "dhariwal-imagenet-zip")


# ----------------------------------------------------------------------------
# Inputs

def _render(job):
    from diffops.data.synthetic_celeba import render_sample
    out, i, fmt, n = job
    img = Image.open(io.BytesIO(render_sample(777, i)[1]))
    if fmt == "imagenet":
        img = img.resize(IMAGENET_SIZE, Image.BICUBIC)
    buf = io.BytesIO()
    img.save(buf, format="PNG") if fmt == "png" else img.save(buf, format="JPEG", quality=90)
    data = buf.getvalue()
    if i in BROKEN and i < n:
        data = data[: len(data) // 2]
    (Path(out) / f"{i:06d}.{'png' if fmt == 'png' else 'jpg'}").write_bytes(data)


def inputs(cache: Path, fmt: str, n: int) -> tuple[Path, Path]:
    """(folder with the broken files, folder without them); made once."""
    n = IMAGENET_COUNT if fmt == "imagenet" else n
    root = cache / f"{fmt}-{n}"
    if not (root / "done").is_file():
        shutil.rmtree(root, ignore_errors=True)
        (root / "all").mkdir(parents=True)
        with Pool(os.cpu_count()) as pool:
            pool.map(_render, [(root / "all", i, fmt, n) for i in range(n)], chunksize=64)
        (root / "clean").mkdir()
        for f in sorted((root / "all").iterdir()):
            if int(f.stem) not in BROKEN:
                os.link(f, root / "clean" / f.name)
        (root / "done").touch()
    return root / "all", root / "clean"


# ----------------------------------------------------------------------------
# Runs

def tight_loop(src: Path, dest: Path, transform, output: str) -> int:
    """One process, no pool: decode, transform, PIL level-0 PNG (WebP q100 for LMDB, as diffae), write."""
    files = sorted(str(p) for p in src.iterdir())
    if output == "zip":
        zf = zipfile.ZipFile(dest, "w", compression=zipfile.ZIP_STORED)
        put = zf.writestr
    elif output == "lmdb":
        import lmdb
        env = lmdb.open(str(dest), map_size=1 << 40, readahead=False)
        txn = env.begin(write=True)
        put = lambda name, data: txn.put(name.encode(), data)   # noqa: E731
    else:
        def put(name, data):
            os.makedirs(dest / name.rpartition("/")[0], exist_ok=True)
            with open(dest / name, "wb") as f:
                f.write(data)
    written = 0
    for i, fname in enumerate(files):
        try:
            img = Image.open(fname)
            img.load()
            out = transform(img.convert("RGB"))
        except OSError:                                          # truncated / unreadable: skipped, index kept
            continue
        buf = io.BytesIO()
        if output == "lmdb":
            out.save(buf, format="webp", quality=100)
            put(f"{RES}-{written:07d}", buf.getvalue())
        else:
            out.save(buf, format="png", compress_level=0, optimize=False)
            put(f"{i // 1000:05d}/img{i:08d}.png", buf.getvalue())
        written += 1
    if output == "zip":
        zf.close()
    elif output == "lmdb":
        txn.put(b"length", str(written).encode())
        txn.commit()
        env.close()
    return written


def diffops_convert(src: Path, dest: Path, transform: str, workers: int) -> int:
    from diffops.data.convert import convert
    with contextlib.redirect_stdout(io.StringIO()):          # its one-line summary, per run
        r = convert(src, dest, transform=transform, resolution=RES, num_workers=workers, progress=False,
                    report_path=dest.with_name(dest.name + ".report.json"))
    return r["written"]


def edm2_tool(edm2: Path, src: Path, dest: Path, transform: str) -> int:
    subprocess.run([sys.executable, "dataset_tool.py", "convert", f"--source={src}", f"--dest={dest}",
                    f"--transform={transform}", f"--resolution={RES}x{RES}"], cwd=edm2, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return len(list(src.iterdir()))


def pixels(dest: Path) -> list[np.ndarray]:
    """Every image of an output, in order (edm2 names or LMDB keys)."""
    from diffops.data.containers import Edm2Reader, LmdbReader
    r = LmdbReader(dest) if dest.suffix == ".lmdb" else Edm2Reader(dest)
    return [r[i] for i in range(len(r))]


def same(a: list, b: list, what: str) -> None:
    if len(a) != len(b) or any(not np.array_equal(x, y) for x, y in zip(a, b)):
        raise AssertionError(f"{what}: pixels differ from the tight loop's")


def run_case(case: str, args, work: Path) -> dict:
    tname, fmt, output = case.split("-")
    ours, reference, edm2_name = TRANSFORMS[tname]
    src, clean = inputs(Path(args.cache), "jpg" if fmt == "jpeg" else fmt, args.images)
    suffix = {"zip": ".zip", "lmdb": ".lmdb", "folder": ""}[output]
    runs = {"tight loop": lambda d: tight_loop(src, d, reference, output),
            "diffops, 2 workers": lambda d: diffops_convert(src, d, ours, 2),
            "diffops, 1 process": lambda d: diffops_convert(src, d, ours, 1)}
    if args.edm2 and edm2_name and output != "lmdb":
        runs["edm2 dataset_tool"] = lambda d: edm2_tool(Path(args.edm2).expanduser(), clean, d, edm2_name)
    rates = {k: [] for k in runs}
    for rep in range(args.repeats):
        outputs = {}
        for name, fn in runs.items():
            dest = work / f"{name.replace(' ', '_').replace(',', '')}{suffix}"
            t0 = time.perf_counter()
            n = fn(dest)
            rates[name].append(n / (time.perf_counter() - t0))
            print(f"  {case} repeat {rep}: {name:<20} {rates[name][-1]:6.0f} images/s  (load "
                  f"{os.getloadavg()[0]:.1f})", flush=True)
            outputs[name] = dest
        if rep == 0:                        # pixel check before any number counts
            ref = pixels(outputs["tight loop"])
            for name, dest in outputs.items():    # edm2 ran without the broken files: same images in order
                if name != "tight loop":
                    same(pixels(dest), ref, name)
        for dest in outputs.values():
            shutil.rmtree(dest) if dest.is_dir() else dest.unlink()
        for p in work.glob("*.report.json"):
            p.unlink()
    images = IMAGENET_COUNT if fmt == "imagenet" else args.images
    return {"case": case, "images": images, "rates": rates}


def summary(results: list[dict], repeats: int) -> None:
    print(f"\nimages/s, median (min-max) of {repeats} alternating repeats; ratios: median of per-repeat ratios")
    print(f"{'case':<24}{'images':>7}{'tight loop':>18}{'diffops 1 proc':>18}{'diffops 2 work':>18}"
          f"{'edm2':>18}{'2w/tight':>10}{'2w/1p':>7}")
    for r in results:
        rates = r["rates"]
        cell = lambda k: (f"{statistics.median(rates[k]):6.0f} ({min(rates[k]):.0f}-{max(rates[k]):.0f})"  # noqa: E731
                          if k in rates else "-")
        ratio = lambda a, b: statistics.median(x / y for x, y in zip(rates[a], rates[b]))  # noqa: E731
        print(f"{r['case']:<24}{r['images']:>7}{cell('tight loop'):>18}{cell('diffops, 1 process'):>18}"
              f"{cell('diffops, 2 workers'):>18}{cell('edm2 dataset_tool'):>18}"
              f"{ratio('diffops, 2 workers', 'tight loop'):>9.2f}x{ratio('diffops, 2 workers', 'diffops, 1 process'):>6.2f}x")
    for r in results:
        if r["case"] == "dhariwal-imagenet-zip":
            per_core = statistics.median(r["rates"]["diffops, 1 process"])    # one core's rate
            hours = ", ".join(f"{c} cores {1.28e6 / (per_core * c) / 3600:.2f} h" for c in (2, 8, 32))
            print(f"ImageNet-1k (1.28 M images) at the measured {per_core:.0f} images/s of one process in the "
                  f"{IMAGENET_SIZE[0]}x{IMAGENET_SIZE[1]} case, scaled linearly with the cores: {hours}")
    print(f"machine: {os.cpu_count()} CPUs; Python {platform.python_version()}, Pillow {PIL.__version__}, "
          f"NumPy {np.__version__}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog=__doc__.split("\n\n")[-1],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=12000, help="CelebA-size inputs (the ImageNet case has 2,000)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--cases", default=",".join(CASES), help=f"comma-separated subset of {', '.join(CASES)}")
    ap.add_argument("--edm2", default=None, help="path of an NVlabs/edm2 checkout (its dataset_tool.py is run)")
    ap.add_argument("--cache", default=os.path.join(tempfile.gettempdir(), "diffops-bench-convert"))
    args = ap.parse_args()
    unknown = set(args.cases.split(",")) - set(CASES)
    if unknown:
        ap.error(f"--cases: unknown {', '.join(sorted(unknown))}")
    results = []
    for case in args.cases.split(","):
        work = Path(tempfile.mkdtemp(prefix="convert-bench-"))
        try:
            results.append(run_case(case, args, work))
        finally:
            shutil.rmtree(work, ignore_errors=True)
    summary(results, args.repeats)


if __name__ == "__main__":
    main()

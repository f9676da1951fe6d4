"""Throughput of `diffops convert` vs a single-process edm2 dataset_tool.py-style loop, same output pixels.

A fixed set of CelebA-size JPEGs (178x218, the synthetic faces of `diffops generate`, seed 0) is
converted with `center-crop` to 64x64 level-0 PNGs in an edm2 folder, by
  - edm2:      the loop of NVlabs/edm2 dataset_tool.py (np.array(open().convert('RGB')), numpy centre
               slice, PIL.fromarray, LANCZOS, PNG compress_level=0, one file write per image), re-typed here;
  - diffops:   diffops.data.convert.convert with --num-workers 2 (and 1, to separate the per-image savings
               from the parallelism).
Runs alternate (edm2, diffops-2, diffops-1, edm2, ...) so that load from other users of the machine hits
all of them alike. Reported: the median over repeats, the median of per-repeat ratios (each pair ran
seconds apart) and the best run of each (the least disturbed one, as `timeit` does). On a busy 2-core
machine, 2 workers compete with everyone else for the cores, so only the best runs show the parallel
speed; the 1-process ratio is what remains under full contention. Every diffops output is checked pixel for pixel
against the edm2 output before any number is printed.

    .venv/bin/python benchmarks/convert_throughput.py                 # 2,400 images, 5 repeats
    .venv/bin/python benchmarks/convert_throughput.py --images 5000 --repeats 7
"""
from __future__ import annotations

import argparse
import io
import os
import platform
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import PIL
import PIL.Image


def edm2_loop(source_dir: str, dest: str, resolution: int) -> int:
    """edm2 dataset_tool.py convert --transform=center-crop --resolution=RxR, folder in, folder out."""
    PIL.Image.init()
    files = []

    def walk(root):
        with os.scandir(root) as it:
            for e in it:
                if e.is_file():
                    files.append(os.path.join(root, e.name))
                elif e.is_dir():
                    walk(os.path.join(root, e.name))
    walk(source_dir)
    files = sorted(f for f in files if f".{f.split('.')[-1].lower()}" in PIL.Image.EXTENSION)
    os.makedirs(dest, exist_ok=True)
    for idx, fname in enumerate(files):
        img = np.array(PIL.Image.open(fname).convert("RGB"))
        crop = np.min(img.shape[:2])
        img = img[(img.shape[0] - crop) // 2:(img.shape[0] + crop) // 2,
                  (img.shape[1] - crop) // 2:(img.shape[1] + crop) // 2]
        img = np.array(PIL.Image.fromarray(img, "RGB").resize((resolution, resolution), PIL.Image.Resampling.LANCZOS))
        idx_str = f"{idx:08d}"
        out = os.path.join(dest, f"{idx_str[:5]}/img{idx_str}.png")
        bits = io.BytesIO()
        PIL.Image.fromarray(img).save(bits, format="png", compress_level=0, optimize=False)
        os.makedirs(os.path.dirname(out), exist_ok=True)
        with open(out, "wb") as f:
            f.write(bits.getbuffer())
    return len(files)


def same_pixels(a: Path, b: Path) -> int:
    names = sorted(p.relative_to(a) for p in a.rglob("*.png"))
    assert names == sorted(p.relative_to(b) for p in b.rglob("*.png")), "different file lists"
    for n in names:
        if not np.array_equal(np.asarray(PIL.Image.open(a / n)), np.asarray(PIL.Image.open(b / n))):
            raise AssertionError(f"{n}: pixels differ")
    return len(names)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=2400)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--resolution", type=int, default=64)
    ap.add_argument("--cache", default=os.path.join(tempfile.gettempdir(), "diffops-bench-celeba"))
    args = ap.parse_args()

    from diffops.data.convert import convert
    from diffops.data.synthetic_celeba import generate_celeba_like
    cache = Path(args.cache) / f"n{args.images}"
    if not (cache / "img_align_celeba").is_dir():
        generate_celeba_like(cache, args.images, seed=0, num_workers=2, progress=False)
    src = str(cache / "img_align_celeba")

    work = Path(tempfile.mkdtemp(prefix="convert-bench-"))
    times = {"edm2 loop (1 process)": [], "diffops convert, 2 workers": [], "diffops convert, 1 process": []}
    loads = [os.getloadavg()[0]]
    ref = work / "edm2-reference"
    try:
        for rep in range(args.repeats):
            for name in times:
                dest = ref if rep == 0 and name.startswith("edm2") else work / "out"
                t0 = time.perf_counter()
                if name.startswith("edm2"):
                    n = edm2_loop(src, str(dest), args.resolution)
                else:
                    r = convert(src, dest, transform="center-crop", resolution=args.resolution,
                                num_workers=2 if "2 workers" in name else 1, progress=False,
                                report_path=work / "report.json")
                    n = r["written"]
                times[name].append(n / (time.perf_counter() - t0))
                loads.append(os.getloadavg()[0])
                print(f"  repeat {rep}: {name:<28} {times[name][-1]:7.0f} images/s  (load {loads[-1]:.1f})", flush=True)
                if rep == 0 and not name.startswith("edm2"):
                    print(f"pixel check: {name}: {same_pixels(ref, dest)} PNGs identical to the edm2 loop's")
                if dest != ref:
                    shutil.rmtree(dest)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(f"\n{args.images} CelebA-size JPEGs (178x218) -> center-crop {args.resolution}x{args.resolution} "
          f"level-0 PNG folder; {args.repeats} alternating repeats; median (min-max) images/s")
    med = {k: statistics.median(v) for k, v in times.items()}
    for k, v in times.items():
        print(f"  {k:<30} {med[k]:7.0f}  ({min(v):.0f}-{max(v):.0f})")
    base = times["edm2 loop (1 process)"]
    for name, label in (("diffops convert, 2 workers", "2 workers"), ("diffops convert, 1 process", "1 process")):
        paired = sorted(t / b for t, b in zip(times[name], base))      # same repeat = similar machine load
        print(f"  {label} / edm2 loop: ratio of medians {med[name] / med['edm2 loop (1 process)']:.2f}x; "
              f"median of per-repeat ratios {statistics.median(paired):.2f}x ({paired[0]:.2f}-{paired[-1]:.2f}); "
              f"best of each (least disturbed runs, as timeit) {max(times[name]) / max(base):.2f}x")
    print(f"machine: {os.cpu_count()} CPUs, load average (1 min) during the runs "
          f"{min(loads):.1f}-{max(loads):.1f}; Python {platform.python_version()}, Pillow {PIL.__version__}, "
          f"NumPy {np.__version__}")


if __name__ == "__main__":
    main()

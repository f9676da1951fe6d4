"""FID of one pair of PNG folders by diffops (`score`), torch-fidelity's calculate_metrics and pytorch-fid's
calculate_fid_given_paths, on one weights file.

    python benchmarks/fid_agreement.py                                   # random-weight file, 64 + 64 images
    python benchmarks/fid_agreement.py --inception ~/pt_inception-2015-12-05-6726825d.pth --n 2048

diffops and torch-fidelity run the same network and the same TF1-exact resize, so they should agree to
round-off; pytorch-fid resizes with torch's bilinear interpolation instead (its README: 0.08 FID on
LSUN against TF), so it differs by what that resize changes. Needs `pip install -e .[bench]` (pytorch-fid).
The images are smooth random colour fields (upsampled 4 x 4 noise), the generated set brighter and noisier.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def write_folder(root: Path, images: torch.Tensor) -> Path:
    root.mkdir(parents=True)
    for i, img in enumerate(images):
        Image.fromarray(img.permute(1, 2, 0).numpy()).save(root / f"{i:06d}.png")
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inception", type=Path, default=None, help="weights file (default: a random-weight one)")
    parser.add_argument("--n", type=int, default=64, help="images per set")
    parser.add_argument("--resolution", type=int, default=64)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    tmp = Path(tempfile.mkdtemp(prefix="fid-agreement-"))
    try:
        weights = args.inception
        if weights is None:
            from tests.helpers.inception import write_random_inception
            weights = write_random_inception(tmp / "random-inception.pth")
        g = torch.Generator().manual_seed(0)
        smooth = torch.nn.functional.interpolate(torch.rand(2 * args.n, 3, 4, 4, generator=g), size=args.resolution,
                                                 mode="bilinear", align_corners=False)
        noise = torch.rand(args.n, 3, args.resolution, args.resolution, generator=g)
        ref = write_folder(tmp / "ref", (smooth[:args.n] * 255).round().to(torch.uint8))
        gen = write_folder(tmp / "gen", ((smooth[args.n:] * 0.7 + 0.3 * noise) * 255).round().to(torch.uint8))
        results = {}

        from diffops.config import load_params
        from diffops.stages.score import run as score
        start = time.perf_counter()
        results["diffops score"] = score(load_params({}), gen, ref, ("fid",), weights)["fid"], time.perf_counter() - start

        import torch_fidelity
        start = time.perf_counter()
        out = torch_fidelity.calculate_metrics(input1=str(gen), input2=str(ref), fid=True, cuda=False, cache=False,
                                               verbose=False, feature_extractor="inception-v3-compat",
                                               feature_extractor_weights_path=str(weights))
        results["torch-fidelity"] = out["frechet_inception_distance"], time.perf_counter() - start

        from pytorch_fid.fid_score import calculate_activation_statistics, calculate_fid_given_paths
        from pytorch_fid.inception import InceptionV3
        hub = tmp / "torch-home" / "hub" / "checkpoints"        # pytorch-fid reads its weights from the hub cache
        hub.mkdir(parents=True)
        shutil.copy(weights, hub / "pt_inception-2015-12-05-6726825d.pth")
        os.environ["TORCH_HOME"] = str(tmp / "torch-home")
        start = time.perf_counter()
        try:
            fid = calculate_fid_given_paths([str(gen), str(ref)], batch_size=50, device="cpu", dims=2048, num_workers=0)
            results["pytorch-fid"] = float(fid), time.perf_counter() - start
        except ValueError as e:         # sqrtm of singular covariances (N <= 2048): "Imaginary component"
            print(f"pytorch-fid's own FID failed ({e}); its features (its resize) with diffops' Fréchet distance:")
            from diffops.evaluation import frechet_distance
            model = InceptionV3([InceptionV3.BLOCK_INDEX_BY_DIM[2048]]).eval()
            stats = [calculate_activation_statistics(sorted(map(str, d.glob("*.png"))), model, 50, 2048, "cpu", 0)
                     for d in (gen, ref)]
            results["pytorch-fid features"] = frechet_distance(*stats[0], *stats[1]), time.perf_counter() - start
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    base = results["diffops score"][0]
    print(f"{args.n} + {args.n} images at {args.resolution} px, weights {Path(weights).name}, torch {torch.__version__}")
    print(f"{'implementation':<22} {'FID':>14} {'rel. to diffops':>16} {'seconds':>8}")
    for name, (value, seconds) in results.items():
        print(f"{name:<22} {value:>14.6f} {abs(value - base) / base:>16.2e} {seconds:>8.1f}")
    print(f"(N = {args.n} < 2048: the covariances are singular; each route sums the round-off of their zero "
          "eigenvalues differently)" if args.n < 2049 else "")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()

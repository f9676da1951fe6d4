"""dvc stage `convert` of the pipelines/: an image source -> edm2 folder/.zip or diffae LMDB, in parallel,
as the MLflow run `convert` (params, rates, the report of skipped files)."""
from __future__ import annotations

from pathlib import Path

import click
import mlflow

from ..data.convert import ConvertError, convert
from ..tracking.mlflow_run import tracked_run
from .common import PARAMS, load_with, one_line_errors, path, output_file, output_container


def run(cfg, source, dest, report_path=None, use_mlflow: bool = True) -> dict:
    c = cfg.convert
    kwargs = dict(transform=c.transform, resolution=c.resolution, height=c.height, filter=c.filter, crop=c.crop,
                  num_workers=c.num_workers, batch_size=c.batch_size, on_error=c.on_error,
                  max_images=c.max_images, celeba_split=c.celeba_split, lmdb_codec=c.lmdb_codec,
                  lmdb_quality=c.lmdb_quality, lmdb_zfill=c.lmdb_zfill)
    report_path = Path(report_path) if report_path else Path(dest).with_name(Path(dest).name + ".report.json")
    if not use_mlflow:
        return convert(source, dest, report_path=report_path, **kwargs)
    with tracked_run(cfg.tracking.experiment, run_name="convert", stage="convert"):
        mlflow.log_params({**{f"convert.{k}": v for k, v in kwargs.items()},
                           "convert.source": str(source), "convert.dest": str(dest)})
        try:
            report = convert(source, dest, report_path=report_path, **kwargs)
        finally:
            if report_path.is_file():
                mlflow.log_artifact(str(report_path), "convert")
        mlflow.log_metrics({"images_written": report["written"], "images_skipped": report["skipped_count"],
                            "images_per_sec": report["images_per_sec"], "seconds": report["seconds"]})
    return report


@click.command("convert")
@PARAMS
@click.option("--source", type=path(exists=True), required=True,
              help="Image folder (e.g. ImageNet class/xxx.JPEG tree), edm2 folder or .zip, diffae LMDB folder, or CelebA root.")
@click.option("--dest", type=output_container(), required=True, help="By suffix: .zip (edm2 zip), .lmdb (diffae LMDB), else an edm2 folder.")
@click.option("--transform", default=None, help="none, center-crop, center-crop-wide, center-crop-dhariwal, squash, "
              "celeba-crop, d2c-crop (default: convert.transform).")
@click.option("--resolution", default=None, metavar="R|WxH", help="Output side, or WxH for center-crop-wide.")
@click.option("--filter", "resample", default=None, help="Resampling filter (default: convert.filter).")
@click.option("--num-workers", type=int, default=None)
@click.option("--batch-size", type=int, default=None, help="Images per worker task.")
@click.option("--on-error", type=click.Choice(["skip", "fail"]), default=None)
@click.option("--max-images", type=int, default=None)
@click.option("--report", type=output_file(), default=None, help="Report file (default: <dest>.report.json).")
@click.option("--mlflow/--no-mlflow", "use_mlflow", default=True, show_default=True, help="Log a `convert` run.")
def command(params_path, source, dest, transform, resolution, resample, num_workers, batch_size, on_error,
            max_images, report, use_mlflow):
    """Convert images into an edm2 folder/zip or a diffae LMDB, in parallel (params: convert.*; options override).

    Decode, transform and encode run in --num-workers processes; the output is written in index order
    into <dest>.tmp and renamed when complete. Unreadable or too-small inputs are listed in the report.

    \b
    Example:  diffops convert --source ~/imagenet/train --dest data/img64.zip --transform center-crop-dhariwal --resolution 64
              diffops convert --source ~/celeba --dest data/celeba.lmdb --transform none --resolution 0
    """
    height = None
    if resolution is not None and "x" in str(resolution):
        resolution, height = str(resolution).split("x", 1)
        height = None if height == resolution else height
    cfg = load_with(params_path, "convert", {"transform": transform, "resolution": resolution, "height": height,
                                             "filter": resample, "num_workers": num_workers, "batch_size": batch_size,
                                             "on_error": on_error, "max_images": max_images})
    with one_line_errors(ConvertError, FileNotFoundError, FileExistsError, ValueError):
        run(cfg, source, dest, report, use_mlflow)

"""The loop's `space` hook: the EDM baseline on VAE latents (decoded samples) and on an edm2 zip / LMDB."""
import io
import json

import mlflow
import numpy as np
import PIL.Image
import torch

from diffops.data.convert import convert
from diffops.data.encode import encode_dataset
from diffops.stages.evaluate_latent import run as evaluate_latent
from diffops.stages.sample_latent import run as sample_latent
from diffops.stages.train_latent import run as train_latent
from diffops.stages.train import run as train_stage
from diffops.training.spaces import ContainerImageSpace, LatentSpace, open_space

from ..conftest import tiny_config, write_prepared

LATENT = {"vae.block_channels": [8, 16], "vae.norm_num_groups": 4, "latent.block_channels": [8, 8],
          "latent.attention": [False, True], "latent.norm_num_groups": 4, "latent.duration_kimg": 0.016,
          "latent.batch_size": 4, "latent.xflip": True, "encode.xflip": True, "train.grid_every_kimg": 0.016}


def test_latent_run_trains_on_latents_and_decodes_samples(tmp_path, mlflow_uri):
    from diffops.training.vae import build_vae
    torch.manual_seed(0)
    vae_dir = tmp_path / "vae"
    build_vae(8, (8, 16), 4, 1, 4).save_pretrained(vae_dir)
    data = write_prepared(tmp_path / "prepared", resolution=8, counts=(16, 4, 8))
    encode_dataset(data, tmp_path / "lat", vae_dir, batch_size=8, xflip=True, progress=False)
    cfg = tiny_config(**LATENT)
    assert isinstance(open_space(tmp_path / "lat", cfg), LatentSpace) and open_space(data, cfg) is None

    train_latent(cfg, tmp_path / "lat", tmp_path / "model", tmp_path / "state")
    spec = json.loads((tmp_path / "model" / "model.json").read_text())
    assert spec["unet"]["channels"] == 4 and spec["unet"]["resolution"] == 4
    assert spec["unet"]["block_channels"] == [8, 8] and spec["latent"]["scaling_factor"] == 0.18215
    run = mlflow.MlflowClient().get_run(spec["mlflow_run_id"])
    assert run.info.run_name == "train-edm-latent" and run.info.status == "FINISHED"
    assert run.data.params["latent.xflip"] == "True" and run.inputs.dataset_inputs[0].dataset.name == "latents-train"
    assert {a.path for a in mlflow.MlflowClient().list_artifacts(run.info.run_id)} >= {"grids"}

    sample_latent(cfg, tmp_path / "model", tmp_path / "samples")
    pngs = sorted((tmp_path / "samples" / "images").glob("*.png"))
    assert len(pngs) == 8 and np.asarray(PIL.Image.open(pngs[0])).shape == (8, 8, 3)

    featurenet = _tiny_featurenet(tmp_path, data)
    m = evaluate_latent(cfg, data, featurenet, tmp_path / "samples", tmp_path / "model", tmp_path / "m.json")
    assert {"fd_attrnet", "fd_attrnet_vae", "fd_attrnet_untrained", "fd_attrnet_data"} <= set(m)


def _tiny_featurenet(tmp_path, data):
    from diffops.stages.featurenet import run as train_featurenet
    cfg = tiny_config(**{"featurenet.epochs": 1, "featurenet.width": 8, "featurenet.feature_dim": 8})
    train_featurenet(cfg, data, tmp_path / "featurenet")
    return tmp_path / "featurenet"


def test_pixel_run_reads_an_edm2_zip_or_a_diffae_lmdb(tmp_path, mlflow_uri):
    src = tmp_path / "src"
    src.mkdir()
    rng = np.random.default_rng(0)
    for i in range(10):
        buf = io.BytesIO()
        PIL.Image.fromarray(rng.integers(0, 256, (12, 10, 3), dtype=np.uint8)).save(buf, format="PNG")
        (src / f"{i}.png").write_bytes(buf.getvalue())
    convert(src, tmp_path / "d.zip", transform="center-crop", resolution=8, progress=False)
    convert(src, tmp_path / "d.lmdb", transform="none", resolution=0, lmdb_codec="png", progress=False)
    cfg = tiny_config(**{"train.duration_kimg": 0.008})
    for name in ("d.zip", "d.lmdb"):
        space = open_space(tmp_path / name, cfg)
        assert isinstance(space, ContainerImageSpace)
        train_stage(cfg, tmp_path / name, tmp_path / f"m-{name}", tmp_path / f"s-{name}")   # opens the same space
        spec = json.loads((tmp_path / f"m-{name}" / "model.json").read_text())
        assert spec["unet"]["resolution"] == 8 and "latent" not in spec
        run = mlflow.MlflowClient().get_run(spec["mlflow_run_id"])
        report = json.loads((tmp_path / f"{name}.report.json").read_text())
        assert run.inputs.dataset_inputs[0].dataset.digest == report["content_sha256"][:36]

"""diffops encode with a tiny randomly initialised AutoencoderKL saved to a temp dir (no hub access)."""
import io
import json
import zipfile

import numpy as np
import PIL.Image
import pytest
import torch

from diffops.data.containers import Edm2Reader, Edm2Writer, edm2_name, encode_png
from diffops.data.encode import (decode_latents, encode_dataset, encode_moments, flip_dest, from_vae_output,
                                 load_vae, read_latent_meta, sample_latents, to_vae_input)
from diffops.training.spaces import LatentSpace
from tests.conftest import write_prepared


@pytest.fixture(scope="module")
def vae_dir(tmp_path_factory):
    from diffops.training.vae import build_vae
    torch.manual_seed(0)
    vae = build_vae(8, (8, 16), latent_channels=4, layers_per_block=1, norm_num_groups=4)
    vae.register_to_config(scaling_factor=0.5)
    path = tmp_path_factory.mktemp("vae") / "tiny-vae"
    vae.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    return write_prepared(tmp_path_factory.mktemp("prep") / "prepared", resolution=8, counts=(21, 4, 4))


def test_missing_vae_folder_names_the_path_and_what_to_get(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nowhere: no diffusers AutoencoderKL here.*sd-vae-ft-mse"):
        load_vae(tmp_path / "nowhere")


def test_layout_order_labels_and_float32_moments(prepared, vae_dir, tmp_path):
    meta = encode_dataset(prepared, tmp_path / "lat", vae_dir, batch_size=8, progress=False)
    r = Edm2Reader(tmp_path / "lat")
    assert r.names == [f"00000/img-mean-std-{i:08d}.npy" for i in range(21)]
    attrs = np.load(prepared / "train_attrs.npy")
    assert r.labels == [row.tolist() for row in attrs]                     # paired by index
    raw = r.read_file(r.names[0])
    assert raw[:6] == b"\x93NUMPY" and len(raw) == 128 + 8 * 4 * 4 * 4      # np.save, 128-byte header
    m = r[3]
    assert m.dtype == np.float32 and m.shape == (8, 4, 4)
    # Moments are mean || std of q(z|x) for the image of the same index, input in [-1, 1].
    vae = load_vae(vae_dir)
    img = torch.from_numpy(np.load(prepared / "train_images.npy")[3:4])
    dist = vae.encode(img.float() / 127.5 - 1).latent_dist
    assert torch.allclose(torch.from_numpy(m), torch.cat([dist.mean, dist.std], 1)[0], atol=1e-5)
    assert meta["scaling_factor"] == 0.5 and meta["count"] == 21 and meta["latent_shape"] == [8, 4, 4]
    assert read_latent_meta(tmp_path / "lat")["content_sha256"] == meta["content_sha256"]


def test_batched_encoding_deviates_from_batch_1_by_float_noise_only(prepared, vae_dir):
    vae = load_vae(vae_dir)
    images = torch.from_numpy(np.load(prepared / "train_images.npy"))
    batched = encode_moments(vae, images, "-1,1")
    single = torch.cat([encode_moments(vae, images[i:i + 1], "-1,1") for i in range(len(images))])
    dev = float((batched - single).abs().max())
    print(f"max |batch-21 - batch-1| = {dev:.3g}")
    assert dev < 1e-4


def test_input_range_per_lineage_and_decode_divides_by_the_scale(vae_dir):
    u8 = torch.tensor([[[[0, 255], [128, 64]]]], dtype=torch.uint8).expand(1, 3, 2, 2)
    assert torch.equal(to_vae_input(u8, "0,1"), u8.float() / 255)            # edm2
    assert torch.equal(to_vae_input(u8, "-1,1"), u8.float() / 127.5 - 1)     # REPA
    x = torch.tensor([-1.2, -1.0, 0.0, 0.999, 1.5])
    assert from_vae_output(x, "-1,1").tolist() == [0, 0, 127, 254, 255]        # clamp(255 (x+1)/2), truncated
    assert from_vae_output(x, "0,1").tolist() == [0, 0, 0, 254, 255]           # clamp(0, 1) * 255, truncated
    vae = load_vae(vae_dir)
    z = torch.randn(2, 4, 4, 4, generator=torch.Generator().manual_seed(0))
    expected = from_vae_output(vae.decode(z).sample, "-1,1")
    assert torch.equal(decode_latents(vae, z * 0.5, "-1,1", scale=0.5), expected)


def test_scaling_factor_defaults_to_0_18215_without_one_in_the_config(vae_dir, tmp_path, prepared):
    import shutil
    plain = tmp_path / "plain-vae"
    shutil.copytree(vae_dir, plain)
    cfg = json.loads((plain / "config.json").read_text())
    del cfg["scaling_factor"]
    (plain / "config.json").write_text(json.dumps(cfg))
    meta = encode_dataset(prepared, tmp_path / "lat.zip", plain, batch_size=32, check_images=0, progress=False)
    assert meta["scaling_factor"] == 0.18215
    with zipfile.ZipFile(tmp_path / "lat.zip") as z:
        assert all(i.compress_type == zipfile.ZIP_STORED for i in z.infolist())


def test_xflip_goes_to_a_paired_sibling_container(prepared, vae_dir, tmp_path):
    encode_dataset(prepared, tmp_path / "lat", vae_dir, batch_size=16, xflip=True, progress=False)
    a, b = Edm2Reader(tmp_path / "lat"), Edm2Reader(flip_dest(tmp_path / "lat"))
    assert flip_dest(tmp_path / "lat") == tmp_path / "lat-xflip" and flip_dest(tmp_path / "l.zip") == tmp_path / "l-xflip.zip"
    assert a.names == b.names and a.labels == b.labels and len(a) == 21      # same count, same order
    vae = load_vae(vae_dir)
    img = torch.from_numpy(np.load(prepared / "train_images.npy")[5:6])
    assert np.allclose(b[5], encode_moments(vae, img.flip(3), "-1,1")[0].numpy(), atol=1e-5)

    # Training draws z = (mean + std eps) * scale, half the samples from the flipped image's moments.
    space = LatentSpace(tmp_path / "lat", xflip=True)
    rows = [space.dataset()[i] for i in range(4)]
    batch = {k: torch.stack([r[k] for r in rows]) for k in rows[0]}
    g = torch.Generator().manual_seed(3)
    out = space.model_input(dict(batch), g)["image"]
    g = torch.Generator().manual_seed(3)
    pick = torch.rand([4, 1, 1, 1], generator=g) < 0.5
    m = torch.where(pick, batch["moments_xflip"], batch["moments"])
    assert torch.allclose(out, sample_latents(m, g, 0.5))
    assert space.unet == {"resolution": 4, "channels": 4}


def test_edm2_image_source_pairs_latents_by_sorted_position(vae_dir, tmp_path):
    w = Edm2Writer(tmp_path / "imgs")
    rng = np.random.default_rng(0)
    for i in (0, 2, 3):                                     # a gap at index 1 (a skipped image)
        w.add(edm2_name(i), encode_png(PIL.Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))), i)
    w.commit()
    encode_dataset(tmp_path / "imgs", tmp_path / "lat", vae_dir, input_range="0,1", batch_size=2, progress=False)
    r = Edm2Reader(tmp_path / "lat")
    assert [lab for lab in r.labels] == [0, 2, 3]             # the k-th latent is the k-th image
    assert len(r) == 3 and r.names[-1] == "00000/img-mean-std-00000002.npy"


def test_vae_trained_on_another_range_is_refused(prepared, vae_dir, tmp_path):
    import shutil
    other = tmp_path / "v"
    shutil.copytree(vae_dir, other)
    (other / "diffops_vae.json").write_text(json.dumps({"input_range": "0,1"}))
    with pytest.raises(ValueError, match="encode.input_range"):
        encode_dataset(prepared, tmp_path / "lat", other, input_range="-1,1", progress=False)
    assert not (tmp_path / "lat").exists()

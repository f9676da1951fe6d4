"""`diffops score` on image sets outside the pipeline: folders of PNGs against prepared containers, images
against stored statistics (the same fid), and the inputs it must refuse with one line."""
import json
import pickle

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from diffops.cli import main
from diffops.data.image_sets import image_batches, load_images
from diffops.evaluation.frechet import FeatureStats
from diffops.evaluation.inception import InceptionFeatures
from tests.conftest import write_prepared
from tests.helpers.inception import write_random_inception
from tests.helpers.tiw import write_featurenet


def score(*args):
    result = CliRunner().invoke(main, ["score", "--params", "absent.yaml", *map(str, args)], prog_name="diffops")
    return result.exit_code, result.output


def png_folder(root, images):
    root.mkdir(parents=True)
    for i, img in enumerate(images):
        Image.fromarray(img.transpose(1, 2, 0)).save(root / f"{i:06d}.png")
    return root


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("score")
    prepared = write_prepared(tmp / "prepared", resolution=8, counts=(8, 4, 6))
    samples = png_folder(tmp / "samples" / "images", np.load(prepared / "train_images.npy")[:6])
    return tmp, prepared, samples


def test_fd_attrnet_of_a_png_folder_against_a_container(world, tmp_path):
    tmp, prepared, samples = world
    assert np.array_equal(load_images(samples), np.load(prepared / "train_images.npy")[:6])
    out = tmp_path / "scores.json"
    code, output = score("--images", samples, "--reference", prepared, "--metrics", "fd_attrnet",
                         "--featurenet", write_featurenet(tmp_path / "featurenet"), "--out", out)
    assert code == 0, output
    result = json.loads(out.read_text())
    assert result["num_images"] == 6 and result["num_reference"] == 6 and result["fd_attrnet"] > 0
    assert 0 <= result["attrnet_precision"] <= 1 and "fd_attrnet" in output


def test_fid_from_stored_statistics_equals_fid_from_the_images(world, tmp_path):
    tmp, prepared, samples = world
    weights = write_random_inception(tmp_path / "inception.pth")
    with pytest.warns(RuntimeWarning):
        stats = FeatureStats().update(InceptionFeatures(weights)(load_images(prepared)))
    np.savez(tmp_path / "ref.npz", mu=stats.mu, sigma=stats.sigma)
    results = []
    for reference in (prepared, tmp_path / "ref.npz"):
        out = tmp_path / f"{reference.name}.json"
        code, output = score("--images", samples, "--reference", reference, "--metrics", "fid",
                             "--inception", weights, "--out", out)
        assert code == 0, output
        results.append(json.loads(out.read_text()))
    assert results[0]["fid"] > 0 and results[0]["inception_standard"] is False
    assert results[1]["fid"] == pytest.approx(results[0]["fid"], rel=1e-9)
    code, output = score("--images", samples, "--reference", tmp_path / "ref.npz", "--metrics", "fid,kid",
                         "--inception", weights)
    assert code == 1 and "statistics, which give fid only" in output
    # An ADM-style reference batch holds images (arr_0) beside its own statistics: the images are used.
    np.savez(tmp_path / "batch.npz", arr_0=load_images(prepared).transpose(0, 2, 3, 1), mu=stats.mu, sigma=stats.sigma)
    code, output = score("--images", samples, "--reference", tmp_path / "batch.npz", "--metrics", "fid",
                         "--inception", weights, "--out", tmp_path / "batch.json")
    assert code == 0, output
    assert json.loads((tmp_path / "batch.json").read_text())["fid"] == pytest.approx(results[0]["fid"], rel=1e-9)


def test_refusals_are_one_line_and_happen_before_compute(world, tmp_path):
    tmp, prepared, samples = world
    with open(tmp_path / "ref.pkl", "wb") as f:
        pickle.dump({"fid": {"mu": np.zeros(2), "sigma": np.eye(2)}}, f)
    cases = [(["--reference", tmp_path / "ref.pkl", "--inception", tmp_path / "ref.pkl"], "--trust-pickle"),
             (["--reference", prepared], "Inception weights not found"),
             (["--reference", prepared, "--metrics", "fd_attrnet"], "needs --featurenet"),
             (["--reference", prepared, "--metrics", "fid,sfid"], "unknown sfid")]
    for args, message in cases:
        code, output = score("--images", samples, *args)
        assert code == 1 and message in output and "Traceback" not in output, output
        assert len(output.strip().splitlines()) == 1, output


def test_a_broken_image_is_named(tmp_path):
    folder = png_folder(tmp_path / "imgs", np.zeros((2, 3, 8, 8), np.uint8))
    (folder / "000002.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="cannot read image 000002.png"):
        load_images(folder)


def test_image_sets_stream_in_chunks(world):
    tmp, prepared, samples = world
    for path in (samples, prepared):
        chunks = list(image_batches(path, batch=4))
        assert [len(c) for c in chunks] == [4, 2] and chunks[0].dtype == np.uint8 and chunks[0].shape[1] == 3
        assert np.array_equal(np.concatenate(chunks), load_images(path))


def test_a_sample_set_is_read_without_its_grid(world):
    """`diffops score --images samples/edm`: the sample stage's folder holds images/ and grid.png."""
    tmp, prepared, samples = world
    Image.new("RGB", (40, 40)).save(samples.parent / "grid.png")
    assert np.array_equal(load_images(samples.parent), np.load(prepared / "train_images.npy")[:6])

"""sample.seed_ranges (EDM's "minimum over three seed ranges"): evaluate scores each range of
sample.num_images seeds and reports the best one, with every range's value and the seeds it used."""
import numpy as np
import pytest
import torch

from diffops.config import load_params
from diffops.stages.evaluate import best_range, reference

from ..conftest import write_prepared
from tests.helpers.tiw import ATTRIBUTES, write_featurenet

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")     # few 16-d features


def test_the_best_range_is_reported_with_every_range(tmp_path):
    data = write_prepared(tmp_path / "data", counts=(32, 8, 24))
    featurenet = write_featurenet(tmp_path / "featurenet")
    cfg = load_params({"featurenet": {"attributes": ATTRIBUTES, "feature_dim": 16},
                       "sample": {"num_images": 24, "seed_start": 100, "seed_ranges": 3}})
    ref = reference(cfg, data, featurenet)
    test = torch.from_numpy(np.load(data / "test_images.npy"))
    g = torch.Generator().manual_seed(0)
    noise = lambda: torch.randint(0, 256, test.shape, generator=g, dtype=torch.uint8)
    samples = torch.cat([noise(), test, noise()])            # range 1 is the reference split itself

    metrics, record, _ = best_range(cfg, ref, samples, data, tmp_path / "reference")
    assert metrics["fd_attrnet"] == metrics["fd_attrnet_range1"] == pytest.approx(0, abs=1e-6)
    assert min(metrics["fd_attrnet_range0"], metrics["fd_attrnet_range2"]) > 1e-3 and metrics["num_samples"] == 24
    assert record["seeds"] == "124-147" and record["seed_ranges"] == "100-123, 124-147, 148-171"
    assert record["selection"] == "min fd_attrnet over 3 seed ranges"

    with pytest.raises(ValueError, match="not sample.num_images x sample.seed_ranges = 72"):
        best_range(cfg, ref, samples[:48], data, tmp_path / "reference")


def test_samples_of_another_size_or_mode_are_refused(tmp_path):
    from PIL import Image
    from diffops.sampling.sample_set import read_sample_set
    data = write_prepared(tmp_path / "data", counts=(32, 8, 24))
    cfg = load_params({"featurenet": {"attributes": ATTRIBUTES, "feature_dim": 16}, "sample": {"num_images": 24}})
    ref = reference(cfg, data, write_featurenet(tmp_path / "featurenet"))
    big = torch.zeros((24, 3, 16, 16), dtype=torch.uint8)       # 16×16 samples against 8×8 data
    with pytest.raises(ValueError, match="3×16×16 images, but the reference split is 3×8×8"):
        best_range(cfg, ref, big, data, tmp_path / "reference")

    (tmp_path / "s" / "images").mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(tmp_path / "s" / "images" / "000000.png")
    Image.new("RGB", (16, 16)).save(tmp_path / "s" / "images" / "000001.png")
    with pytest.raises(ValueError, match="000001.png: a 16×16 RGB image in a set of 8×8 RGB"):
        read_sample_set(tmp_path / "s")
    Image.new("L", (8, 8)).save(tmp_path / "s" / "images" / "000001.png")
    with pytest.raises(ValueError, match="000001.png: a 8×8 L image"):
        read_sample_set(tmp_path / "s")

"""The reference stage writes EDM-format statistics with a sidecar per feature space, and evaluate's scores
read the Inception features from it: fid / kid / precision / recall, refusing statistics of other inputs."""
import json

import numpy as np
import pytest
import torch

from diffops.artifacts.reference_stats import load_reference
from diffops.config import load_params
from diffops.evaluation.inception import InceptionFeatures, feature_metrics
from diffops.stages.evaluate import reference, scores
from diffops.stages.reference import run as reference_stage
from tests.conftest import write_prepared
from tests.helpers.inception import write_random_inception
from tests.helpers.tiw import write_featurenet

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")     # random weights, N < 2048


def test_reference_stats_feed_the_inception_metrics(tmp_path):
    data = write_prepared(tmp_path / "prepared", resolution=8, counts=(8, 4, 6))
    featurenet = write_featurenet(tmp_path / "featurenet")
    weights = write_random_inception(tmp_path / "inception.pth")
    cfg = load_params({"evaluate": {"inception_weights": str(weights), "kid_subset_size": 4, "kid_subsets": 10},
                       "sample": {"num_images": 6}})
    assert reference_stage(cfg, data, featurenet, tmp_path / "reference") == {"attrnet": 6, "inception": 6}

    sidecar = json.loads((tmp_path / "reference" / "test_inception.json").read_text())
    assert sidecar["count"] == 6 and sidecar["split"] == "test" and sidecar["inception_standard"] is False
    with np.load(tmp_path / "reference" / "test_inception.npz") as npz:     # EDM's fid.py reads mu, sigma
        assert npz["mu"].shape == (2048,) and npz["sigma"].shape == (2048, 2048) and npz["mu"].dtype == np.float64

    samples = torch.from_numpy(np.load(data / "train_images.npy")[:6])
    metrics, record, _ = scores(cfg, reference(cfg, data, featurenet), samples, data, tmp_path / "reference")
    inception = InceptionFeatures(weights)
    direct = feature_metrics(inception(samples), inception(torch.from_numpy(np.load(data / "test_images.npy"))),
                             kid_subsets=10, kid_subset_size=4)
    for key in ("fid", "kid_mean", "kid_std", "precision", "recall"):
        assert metrics[key] == pytest.approx(direct[key], rel=1e-9), key
    assert record["inception_sha256"] == inception.sha256 and record["seeds"] == "0-5"

    other = write_random_inception(tmp_path / "other.pth", seed=1)
    with pytest.raises(ValueError, match="made for other inputs .*extractor_sha256"):
        load_reference(tmp_path / "reference", "test", "inception",
                       {"extractor_sha256": InceptionFeatures(other).sha256})

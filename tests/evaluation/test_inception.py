"""Inception metrics: diffops' fid / kid / precision / recall against torch-fidelity's own
calculate_metrics on the same images and weights file, and the weights file's checks (missing, not
standard, not an Inception state dict, a pickle that would run code)."""
import os

import numpy as np
import pytest
import torch

from diffops.evaluation.inception import InceptionFeatures, feature_metrics
from tests.helpers.inception import write_random_inception

N = 12              # images per set: enough for k = 3 balls and KID subsets of 10, cheap at 299 x 299


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    return write_random_inception(tmp_path_factory.mktemp("inception") / "random-inception.pth")


def image_sets():
    """Smooth colour blobs (the 'reference') and the same blobs brighter and noisier ('generated')."""
    g = torch.Generator().manual_seed(0)
    low = torch.rand(2 * N, 3, 4, 4, generator=g)
    smooth = torch.nn.functional.interpolate(low, size=32, mode="bilinear", align_corners=False)
    ref = (smooth[:N] * 255).round().to(torch.uint8)
    gen = ((smooth[N:] * 0.7 + 0.3 * torch.rand(N, 3, 32, 32, generator=g)) * 255).round().to(torch.uint8)
    return gen, ref


class Images(torch.utils.data.Dataset):
    def __init__(self, images):
        self.images = images

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return self.images[i]


def test_metrics_equal_torch_fidelity_calculate_metrics(weights):
    import torch_fidelity
    gen, ref = image_sets()
    with pytest.warns(RuntimeWarning, match="not the standard"):
        inception = InceptionFeatures(weights)
    ours = feature_metrics(inception(gen), inception(ref), kid_subsets=50, kid_subset_size=10, k=3)
    theirs = torch_fidelity.calculate_metrics(
        input1=Images(gen), input2=Images(ref), fid=True, kid=True, prc=True, cuda=False, cache=False,
        verbose=False, feature_extractor="inception-v3-compat", feature_extractor_weights_path=str(weights),
        kid_subsets=50, kid_subset_size=10, prc_neighborhood=3, batch_size=64)
    assert ours["fid"] > 1e-3                                  # the two sets differ: not a 0 == 0 check
    # N = 12 << 2048: both covariances have ~2036 zero eigenvalues, whose round-off square roots each
    # route sums differently (1.3e-6 relative here); full-rank statistics agree to 1e-6 (test below).
    assert ours["fid"] == pytest.approx(theirs["frechet_inception_distance"], rel=1e-5)
    assert ours["kid_mean"] == pytest.approx(theirs["kernel_inception_distance_mean"], rel=1e-9)
    assert ours["kid_std"] == pytest.approx(theirs["kernel_inception_distance_std"], rel=1e-9)
    assert (ours["precision"], ours["recall"]) == (theirs["precision"], theirs["recall"])


def test_fid_of_full_rank_features_equals_torch_fidelity_statistics_route():
    from torch_fidelity.metric_fid import KEY_METRIC_FID, fid_features_to_statistics, fid_statistics_to_metric
    rng = np.random.default_rng(0)
    mix = rng.standard_normal([256, 256]) / 16
    gen = np.maximum(rng.standard_normal([3000, 256]) @ mix + 0.5, 0).astype(np.float32)
    ref = np.maximum(rng.standard_normal([3000, 256]) @ (mix * 1.1) + 0.4, 0).astype(np.float32)
    theirs = fid_statistics_to_metric(fid_features_to_statistics(torch.from_numpy(gen)),
                                      fid_features_to_statistics(torch.from_numpy(ref)), verbose=False)
    ours = feature_metrics(gen, ref, metrics=("fid",))["fid"]
    assert ours == pytest.approx(theirs[KEY_METRIC_FID], rel=1e-6)


def test_features_are_not_degenerate_and_record_the_file(weights):
    with pytest.warns(RuntimeWarning):
        inception = InceptionFeatures(weights)
    f = inception(image_sets()[1])
    assert f.shape == (N, 2048) and f.dtype == np.float64
    assert f.std(axis=0).mean() > 1e-3                         # images are told apart
    assert inception.record == {"inception_sha256": inception.sha256, "inception_standard": False}
    with pytest.raises(ValueError, match="uint8"):
        inception(torch.zeros(2, 3, 8, 8))


def test_missing_file_says_where_to_put_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="pt_inception-2015-12-05-6726825d.pth.*evaluate.inception_weights"):
        InceptionFeatures(tmp_path / "nope.pth")


def test_wrong_layout_is_one_clear_error(tmp_path):
    path = tmp_path / "other.pth"
    torch.save({"fc.weight": torch.zeros(3, 3)}, path)
    with pytest.warns(RuntimeWarning), pytest.raises(ValueError, match="not an Inception-v3 state dict"):
        InceptionFeatures(path)


class RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def test_a_pickle_that_runs_code_is_refused(tmp_path):
    path, marker = tmp_path / "evil.pth", tmp_path / "code-ran"
    torch.save({"payload": RunsCode(str(marker))}, path)
    with pytest.warns(RuntimeWarning), pytest.raises(Exception, match="(?i)weights"):
        InceptionFeatures(path)
    assert not marker.exists()
    assert "TORCH_FORCE_WEIGHTS_ONLY_LOAD" not in os.environ     # the override does not leak

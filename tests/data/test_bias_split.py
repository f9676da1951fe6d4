"""The biased / reference split: proportions, disjointness, the container format, the written report."""
import json

import numpy as np
import pytest
import torch

from diffops.data.bias_split import (bias_split, box_downsample, keep_probabilities, split_rows, subgroup_ids,
                                     subgroup_names)
from diffops.data.celeba import ATTRIBUTE_NAMES
from diffops.data.prepare import PreparedDataset

from ..conftest import write_prepared

pytestmark = pytest.mark.usefixtures("one_thread")


def test_subgroups_and_keep_probabilities():
    attrs = np.zeros((4, 40), np.uint8)
    attrs[1, ATTRIBUTE_NAMES.index("Male")] = 1
    attrs[2, ATTRIBUTE_NAMES.index("Black_Hair")] = 1
    attrs[3, [ATTRIBUTE_NAMES.index("Male"), ATTRIBUTE_NAMES.index("Black_Hair")]] = 1
    assert subgroup_ids(attrs, ["Male", "Black_Hair"]).tolist() == [0, 1, 2, 3]
    assert subgroup_names(["Male", "Black_Hair"])[2] == "Male=0,Black_Hair=1"
    assert keep_probabilities(2, 4.0).tolist() == [1, 0.25, 0.25, 0.0625]
    assert keep_probabilities(2, 0.25).tolist() == [0.0625, 0.25, 0.25, 1]    # factor < 1: positives over-represented


def test_split_rows_is_disjoint_skewed_and_sized():
    rng = np.random.default_rng(0)
    groups = rng.choice(4, size=20_000, p=[0.4, 0.3, 0.2, 0.1])
    ref, biased = split_rows(groups, 4, factor=4.0, reference_fraction=0.1, rng=np.random.default_rng(1))
    assert not set(ref) & set(biased)
    assert abs(len(ref) / len(biased) - 0.1) < 0.002
    # The reference set is a uniform draw: its proportions match the data's.
    assert np.abs(np.bincount(groups[ref], minlength=4) / len(ref) - [0.4, 0.3, 0.2, 0.1]).max() < 0.03
    # The biased set keeps each subgroup at factor^-popcount of its share.
    want = np.bincount(groups, minlength=4) * np.array([1, 1 / 4, 1 / 4, 1 / 16])
    assert np.allclose(np.bincount(groups[biased], minlength=4) / len(biased), want / want.sum(), atol=0.003)
    # factor < 1 thins the negatives instead: subgroup 3 (both positive) is kept whole.
    _, biased = split_rows(groups, 4, factor=0.5, reference_fraction=0.1, rng=np.random.default_rng(1))
    rest = np.bincount(groups, minlength=4)
    assert np.bincount(groups[biased], minlength=4)[3] > 0.85 * rest[3]
    want = rest * np.array([0.25, 0.5, 0.5, 1])
    assert np.allclose(np.bincount(groups[biased], minlength=4) / len(biased), want / want.sum(), atol=0.003)


def test_bias_split_writes_group_containers(tmp_path):
    prepared = write_prepared(tmp_path / "prepared", counts=(400, 60, 20))
    report = bias_split(prepared, tmp_path / "tiw", ["Male", "Black_Hair"], factor=3.0, reference_fraction=0.2, seed=0)
    assert not (tmp_path / "tiw.tmp").exists()
    assert json.loads((tmp_path / "tiw" / "split.json").read_text()) == report
    obs = PreparedDataset(tmp_path / "tiw" / "obs", "train")
    rows = [obs[i] for i in range(len(obs))]
    assert set(rows[0]) == {"image", "attrs", "group"}
    group = torch.stack([r["group"] for r in rows])
    train = report["splits"]["train"]
    assert int(group.sum()) == train["num_reference"] and len(obs) == train["num_reference"] + train["num_biased"]
    ref = PreparedDataset(tmp_path / "tiw" / "ref", "train")
    assert len(ref) == train["num_reference"] and all(ref[i]["group"] == 1 for i in range(len(ref)))
    val = report["splits"]["val"]
    assert abs(val["num_reference"] - val["num_biased"]) <= 3            # val: as many reference as biased
    test = np.load(tmp_path / "tiw" / "obs" / "test_images.npy")
    assert np.array_equal(test, np.load(prepared / "test_images.npy"))   # test = the unbiased split, unchanged
    meta = json.loads((tmp_path / "tiw" / "obs" / "meta.json").read_text())
    assert meta["extra_columns"] == ["group"] and len(meta["content_sha256"]) == 64
    again = bias_split(prepared, tmp_path / "again", ["Male", "Black_Hair"], 3.0, 0.2, 0)
    assert again["obs_content_sha256"] == report["obs_content_sha256"]    # same seed, same bytes
    half = bias_split(prepared, tmp_path / "half", ["Male", "Black_Hair"], 3.0, 0.2, 0, downsample=2)
    assert half["resolution"] == 4 and half["splits"]["train"] == report["splits"]["train"]
    assert np.array_equal(np.load(tmp_path / "half" / "obs" / "test_images.npy"), box_downsample(test, 2))


def test_box_downsample_averages_blocks():
    x = np.arange(2 * 3 * 4 * 4, dtype=np.uint8).reshape(2, 3, 4, 4)
    y = box_downsample(x, 2)
    assert y.shape == (2, 3, 2, 2)
    assert y[1, 2, 1, 0] == round(x[1, 2, 2:4, 0:2].astype(float).mean())
    assert box_downsample(x, 1) is x


def test_a_split_that_would_be_empty_fails_before_writing(tmp_path):
    prepared = write_prepared(tmp_path / "prepared", counts=(12, 2, 2))
    with pytest.raises(ValueError, match=r"ref/train would be empty .*raise bias_split.reference_fraction"):
        bias_split(prepared, tmp_path / "tiw", ["Male", "Black_Hair"], factor=3.0, reference_fraction=0.01, seed=0)
    assert not (tmp_path / "tiw").exists() and not (tmp_path / "tiw.tmp").exists()

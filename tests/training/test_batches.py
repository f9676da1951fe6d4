import pytest
import torch

from diffops.data.prepare import PreparedDataset
from diffops.training.batches import ResumableBatchSampler, training_loader
from ..conftest import write_prepared


def test_global_batch_is_the_same_for_any_world_size():
    one = ResumableBatchSampler(50, 8, seed=3)
    two = [ResumableBatchSampler(50, 8, seed=3, rank=r, world_size=2) for r in range(2)]
    for step in range(20):                                   # crosses several epochs
        assert one.batch_indices(step) == two[0].batch_indices(step) + two[1].batch_indices(step)


def test_each_epoch_is_a_permutation_and_resume_replays():
    s = ResumableBatchSampler(40, 8, seed=0)
    epoch0 = [i for k in range(5) for i in s.batch_indices(k)]
    assert sorted(epoch0) == list(range(40))
    it = iter(ResumableBatchSampler(40, 8, seed=0, start_step=7))
    assert next(it) == s.batch_indices(7)
    assert ResumableBatchSampler(40, 8, seed=1).batch_indices(0) != s.batch_indices(0)


@pytest.mark.parametrize("num_workers", [0, 2])
def test_training_loader_reads_whole_batches_equal_to_collated_rows(tmp_path, num_workers):
    """One read per column per batch (PreparedDataset[list]) gives what the row-by-row DataLoader gave."""
    root = write_prepared(tmp_path / "prepared", counts=(50, 8, 8))
    ds = PreparedDataset(root, "train")
    fast = training_loader(ds, ResumableBatchSampler(len(ds), 8, seed=3, start_step=4), num_workers)
    rows = torch.utils.data.DataLoader(ds, batch_sampler=ResumableBatchSampler(len(ds), 8, seed=3, start_step=4))
    for _, a, b in zip(range(9), fast, rows):                     # crosses an epoch
        assert a.keys() == b.keys()
        assert all(a[k].dtype == b[k].dtype and torch.equal(a[k], b[k]) for k in a)

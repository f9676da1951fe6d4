"""DiTi's chunk allocation and masks (methods/diti.py), against the reference's numbers and logic."""
import numpy as np
import pytest
import torch

from diffops.methods.diti import (
    DiTi, allocation_problem, chunk_end_dims, chunk_index, chunk_starts, mask_tables, stage_chunk_counts,
)

from tests.helpers.diti import diti_config

PAPER = dict(latent_dim=512, k=64, allocation="stages", stages=(50, 100, 300, 500, 1000),
             dims_per_stage=(10, 25, 327, 100, 50))


def reference_end_dims(latent_dim, k, stages, dims_per_stage, T=1000):
    """yue-zhongqi/diti trainer/diti_trainer.py: t_to_idx and get_mask_end_dim, re-typed (float arithmetic)."""
    t_to_idx = np.array([int(float(t) / (float(T) / k)) for t in range(T)])
    ends = []
    for idx in range(k):
        accum = np.zeros(len(stages))
        for i in range(k):
            start_t = np.nonzero(t_to_idx == i)[0][0]
            accum[np.argmax(np.array(stages) > start_t):] += 1
        start_t = np.nonzero(t_to_idx == idx)[0][0]
        stage = np.argmax(np.array(stages) > start_t)
        n = accum[stage] - accum[stage - 1] if stage > 0 else accum[stage]
        if int(accum[stage]) == idx + 1:
            ends.append(sum(dims_per_stage[:stage + 1]))
        else:
            prev = idx - int(accum[stage - 1]) if stage > 0 else idx
            ends.append(sum(dims_per_stage[:stage]) + int(float(dims_per_stage[stage]) / float(n)) * (prev + 1))
    return ends


def test_paper_allocation_is_the_chunk_table_of_the_notes():
    ends = chunk_end_dims(**PAPER)
    sizes = np.diff([0] + ends).tolist()
    assert sizes == [2, 2, 2, 4] + [8, 8, 9] + [25] * 12 + [27] + [8] * 11 + [12] + [1] * 31 + [19]
    assert (ends[3], ends[6], ends[19], ends[31], ends[63]) == (10, 35, 362, 462, 512)
    assert stage_chunk_counts(64, PAPER["stages"]) == [4, 3, 13, 12, 32]


@pytest.mark.parametrize("k, stages, dims", [
    (64, (50, 100, 300, 500, 1000), (10, 25, 327, 100, 50)),
    (16, (50, 100, 300, 500, 1000), (2, 4, 36, 14, 8)),
    (32, (200, 1000), (100, 28)),
])
def test_stage_allocation_agrees_with_the_reference_code(k, stages, dims):
    assert chunk_end_dims(sum(dims), k, "stages", stages, dims) == reference_end_dims(sum(dims), k, stages, dims)


def test_balanced_allocation_and_chunk_index():
    assert np.diff([0] + chunk_end_dims(512, 64)).tolist() == [8] * 64
    assert chunk_end_dims(10, 3) == [3, 6, 10] and chunk_end_dims(7, 1) == [7]
    t = torch.arange(1000)
    # k = 64 (15.625 steps per chunk): identical to the reference's int(t / (T / k)).
    assert chunk_index(t, 64).tolist() == [int(float(s) / (1000 / 64)) for s in range(1000)]
    for k in (1, 3, 7, 30, 64, 100, 1000):
        starts = chunk_starts(k)
        assert [chunk_index(s, k) for s in starts] == list(range(k))
        assert all(chunk_index(s - 1, k) == i - 1 for i, s in enumerate(starts) if i)


def test_mask_tables_are_prefix_newest_chunk_and_receding():
    masks, k_masks, receding = mask_tables([2, 3, 6], 6)
    assert masks.tolist() == [[1, 1, 0, 0, 0, 0], [1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 1, 1]]
    assert k_masks.tolist() == [[1, 1, 0, 0, 0, 0], [0, 0, 1, 0, 0, 0], [0, 0, 0, 1, 1, 1]]
    assert torch.equal(receding, masks - k_masks) and torch.equal(k_masks.sum(0), torch.ones(6))


def test_base_condition_is_the_prefix_of_the_chunk_of_t():
    m = DiTi(diti_config(**{"diti.latent_dim": 8, "diti.k": 4}))      # chunks of 2 dims, 250 steps each
    z = torch.arange(1.0, 9.0).repeat(3, 1)
    (cond,) = m.conditions(z, torch.tensor([0, 250, 999]))
    assert cond.tolist() == [[1, 2, 0, 0, 0, 0, 0, 0], [1, 2, 3, 4, 0, 0, 0, 0], list(range(1, 9))]
    assert torch.equal(m.condition_at(z, torch.tensor([0, 250, 999])), cond)


def test_stop_grad_sends_gradient_to_the_newest_chunk_only():
    m = DiTi(diti_config(**{"diti.latent_dim": 8, "diti.k": 4, "diti.mode": "stop_grad"}))
    z = torch.randn(1, 8, requires_grad=True)
    (cond,) = m.conditions(z, torch.tensor([600]))                      # chunk 2: dims 4, 5
    torch.testing.assert_close(cond, z * torch.tensor([1.0] * 6 + [0, 0]))
    cond.sum().backward()
    assert z.grad.tolist() == [[0, 0, 0, 0, 1, 1, 0, 0]]
    dual = DiTi(diti_config(**{"diti.latent_dim": 8, "diti.k": 4, "diti.mode": "dual"}))
    assert len(dual.conditions(z, torch.tensor([600]))) == 2


@pytest.mark.parametrize("kwargs, key", [
    (dict(latent_dim=4, k=8, allocation="balanced"), "latent_dim"),
    (dict(latent_dim=64, k=2000, allocation="balanced"), "k"),
    (dict(latent_dim=60, k=16, allocation="stages", stages=(50, 100, 300, 500, 1000), dims_per_stage=(2, 4, 36, 14, 8)),
     "dims_per_stage"),
    (dict(latent_dim=64, k=8, allocation="stages", stages=(50, 100, 300, 500, 1000), dims_per_stage=(2, 4, 36, 14, 8)),
     "stages[1]"),
    (dict(latent_dim=64, k=16, allocation="stages", stages=(50, 100, 300, 500, 1000), dims_per_stage=(2, 4, 2, 48, 8)),
     "dims_per_stage[2]"),
    (dict(latent_dim=64, k=16, allocation="stages", stages=(50, 100, 300, 500, 900), dims_per_stage=(2, 4, 36, 14, 8)),
     "stages[4]"),
    (dict(latent_dim=64, k=16, allocation="stages", stages=(50, 300, 100, 1000), dims_per_stage=(2, 4, 50, 8)),
     "stages[2]"),
])
def test_impossible_allocations_name_the_key(kwargs, key):
    kwargs = {"stages": (), "dims_per_stage": (), **kwargs}
    assert allocation_problem(**kwargs)[0] == key
    with pytest.raises(ValueError, match=rf"diti\.{key.replace('[', '.').replace(']', '.')}"):
        chunk_end_dims(**kwargs)

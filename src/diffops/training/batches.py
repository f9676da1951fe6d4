"""Deterministic, resumable batch order.

Global step k takes images [k*B, (k+1)*B) of an endless stream made of per-epoch permutations
seeded by (seed, epoch). Rank r of W takes the r-th contiguous slice of B/W. The order depends only
on (seed, step), so a resumed run replays exactly, and the global batch is the same for any W.
"""
from __future__ import annotations

import torch

from ..data.prepare import PreparedDataset


class ResumableBatchSampler(torch.utils.data.Sampler):
    def __init__(self, num_items: int, global_batch: int, seed: int, rank: int = 0,
                 world_size: int = 1, start_step: int = 0):
        assert global_batch % world_size == 0
        self.n, self.B, self.seed = num_items, global_batch, seed
        self.rank, self.world, self.start_step = rank, world_size, start_step
        self._perm_epoch, self._perm = None, None

    def _permutation(self, epoch: int) -> torch.Tensor:
        if self._perm_epoch != epoch:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._perm, self._perm_epoch = torch.randperm(self.n, generator=g), epoch
        return self._perm

    def batch_indices(self, step: int) -> list[int]:
        per_rank = self.B // self.world
        pos = step * self.B + self.rank * per_rank
        end, out = pos + per_rank, []
        while pos < end:                    # one slice per epoch the batch touches (not a tensor index per item)
            epoch, offset = divmod(pos, self.n)
            take = min(end - pos, self.n - offset)
            out += self._permutation(epoch)[offset:offset + take].tolist()
            pos += take
        return out

    def __iter__(self):
        step = self.start_step
        while True:
            yield self.batch_indices(step)
            step += 1


def training_loader(dataset, sampler: ResumableBatchSampler, num_workers: int, pin_memory: bool = False):
    """The batches the training loop iterates; each holds the same rows in the same order whatever the path.

    A PreparedDataset reads a whole batch at once (dataset[list] = the stacked rows): with no workers it is
    indexed directly (a DataLoader would add half again to the read, benchmarks/loader_throughput.py), with
    workers each index list is one DataLoader item, automatic batching off. Other datasets are read row by
    row and collated by a DataLoader.
    """
    if not isinstance(dataset, PreparedDataset):
        return torch.utils.data.DataLoader(dataset, batch_sampler=sampler, num_workers=num_workers,
                                           pin_memory=pin_memory)
    if num_workers > 0:
        return torch.utils.data.DataLoader(dataset, sampler=sampler, batch_size=None, num_workers=num_workers,
                                           pin_memory=pin_memory)
    if pin_memory:
        return ({k: v.pin_memory() for k, v in dataset[idx].items()} for idx in sampler)
    return (dataset[idx] for idx in sampler)

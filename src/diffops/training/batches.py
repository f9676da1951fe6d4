"""Deterministic, resumable batch order.

Global step k takes images [k*B, (k+1)*B) of an endless stream made of per-epoch permutations
seeded by (seed, epoch). Rank r of W takes the r-th contiguous slice of B/W. The order depends only
on (seed, step), so a resumed run replays exactly, and the global batch is the same for any W.
"""
from __future__ import annotations

import torch


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
        start = step * self.B + self.rank * per_rank
        return [int(self._permutation(pos // self.n)[pos % self.n]) for pos in range(start, start + per_rank)]

    def __iter__(self):
        step = self.start_step
        while True:
            yield self.batch_indices(step)
            step += 1

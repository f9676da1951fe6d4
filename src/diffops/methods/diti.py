"""DiTi: diffusion time-step curriculum for disentangled representations (Yue et al., ICLR 2024;
yue-zhongqi/diti `trainer/diti_trainer.py`, `model/diffusion/gaussian_diffusion.py: pdae_timestep_loss`).

PDAE's loss, unchanged, except that z in R^d is split into k disjoint chunks over the T = 1000 steps
and the shift branch sees at time t only the cumulative prefix of the chunks up to idx(t):

    idx(t) = floor(t k / T)                          (chunk of timestep t; 15-16 steps per chunk at k = 64)
    masks[i]          = 1 on [0, end_i)              (what the decoder sees at idx(t) = i)
    k_masks[i]        = 1 on [end_{i-1}, end_i)      (the newest chunk)
    receding_masks[i] = 1 on [0, end_{i-1})          (the earlier chunks)

Modes: `base` conditions on z * masks[idx]; `stop_grad` on sg(z) * receding + z * k_mask (only the
newest chunk gets gradient at t); `dual` sums both losses.

Chunk sizes (`chunk_end_dims`): `balanced` gives chunk i the end floor(d (i+1) / k); `stages` gives
each stage [stages[s-1], stages[s]) its dims_per_stage[s] dims, split by integer division among the
chunks whose *start* t lies in it, the stage's last chunk taking the remainder (`get_mask_end_dim`).

Exactness notes. idx(t) and the balanced ends are computed in integers; the reference's float
expressions (int(t / (T / k)), int(d / k * (i + 1))) agree for k = 64 and every power of two but
differ by one at a few boundaries for other k (e.g. k = 30), where ours is the exact floor.
"""
from __future__ import annotations

import torch

from ..config.diti import allocation_problem, chunk_starts, stage_chunk_counts  # noqa: F401 (chunk_starts: re-exported)   # pure integers; chunk_starts re-exported
from ..diffusion.ddpm import T
from .pdae import PDAE

MODES = ("base", "stop_grad", "dual")
ALLOCATIONS = ("balanced", "stages")


# ----------------------------------------------------------------------------
# Chunk allocation (chunk_starts, stage_chunk_counts and allocation_problem live in config.diti).

def chunk_index(t, k: int, num_steps: int = T):
    """idx(t) = floor(t k / T) for an int or an integer tensor."""
    return (t * k) // num_steps


def chunk_end_dims(latent_dim: int, k: int, allocation: str = "balanced", stages=(), dims_per_stage=(),
                   num_steps: int = T) -> list[int]:
    """end_i for i = 0 .. k-1: chunk i is z[end_{i-1}:end_i] (end_{-1} = 0), end_{k-1} = latent_dim."""
    problem = allocation_problem(latent_dim, k, allocation, stages, dims_per_stage, num_steps)
    if problem:
        raise ValueError(f"diti.{problem[0]}: {problem[1]}")
    if k == 1:
        return [latent_dim]
    if allocation == "balanced":
        return [latent_dim * (i + 1) // k for i in range(k)]
    ends, offset = [], 0
    for n, dims in zip(stage_chunk_counts(k, stages, num_steps), dims_per_stage):
        ends += [offset + (dims if j == n - 1 else dims // n * (j + 1)) for j in range(n)]
        offset += dims
    return ends


def mask_tables(ends: list[int], latent_dim: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """masks, k_masks, receding_masks, each (k, latent_dim) float32 of 0/1."""
    k = len(ends)
    d = torch.arange(latent_dim)
    end = torch.tensor(ends)[:, None]
    prev = torch.tensor([0] + ends[:-1])[:, None]
    masks = (d < end).float()
    k_masks = ((d >= prev) & (d < end)).float()
    receding = (d < prev).float()
    assert masks.shape == (k, latent_dim)
    return masks, k_masks, receding


# ----------------------------------------------------------------------------

class DiTi(PDAE):
    name = "diti"

    @staticmethod
    def representation_params(d):
        return d

    def __init__(self, cfg):
        super().__init__(cfg)
        d = cfg.diti
        self.k, self.mode = d.k, d.mode
        self.ends = chunk_end_dims(d.latent_dim, d.k, d.allocation, d.stages, d.dims_per_stage, self.sched.T)
        self.masks, self.k_masks, self.receding_masks = mask_tables(self.ends, d.latent_dim)

    def _at(self, table: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return table.to(t.device)[chunk_index(t.long(), self.k, self.sched.T)]

    def conditions(self, z: torch.Tensor, t: torch.Tensor) -> list[torch.Tensor]:
        out = []
        if self.mode in ("base", "dual"):
            out.append(z * self._at(self.masks, t))
        if self.mode in ("stop_grad", "dual"):
            out.append(z.detach() * self._at(self.receding_masks, t) + z * self._at(self.k_masks, t))
        return out

    def condition_at(self, z: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return z * self._at(self.masks, t)             # masked_guided_ddim: the cumulative prefix at every step

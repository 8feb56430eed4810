"""Samplers and collation shared by every data module.

Every order is a function of ``(seed, epoch)`` only, so a resumed run sees the same batches as an
uninterrupted one. Lightning calls ``set_epoch`` on them; a plain loop gets a new order per epoch
too, because a full pass advances the epoch. Under DDP, Lightning swaps the ``RandomSampler``s
for a ``DistributedSampler(shuffle=True, seed=seed)`` (also seeded per epoch), inside
``BucketBatchSampler`` as well since it is a real ``BatchSampler`` taking a ``sampler``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence, Sized
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.utils.rnn import pad_sequence
from torch.utils.data import (
    BatchSampler,
    DataLoader,
    Dataset,
    DistributedSampler,
    RandomSampler,
    Sampler,
)


def world() -> tuple[int, int]:
    """(world size, rank) of the running process group, (1, 0) outside one."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size(), dist.get_rank()
    return 1, 0


class EpochRandomSampler(RandomSampler):
    """A ``RandomSampler`` whose order depends on ``(seed, epoch)`` only."""

    def __init__(self, data_source: Sized, seed: int = 0) -> None:
        super().__init__(data_source, generator=torch.Generator())
        self.seed, self.epoch = seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        epoch = self.epoch
        self.generator.manual_seed(self.seed + epoch)
        yield from super().__iter__()
        self.epoch = epoch + 1


class RandomWindowSampler(DistributedSampler):
    """``num_samples`` indices drawn with replacement per epoch (random text windows, as nanoGPT's
    ``get_batch``). Under DDP every rank takes every world-th draw of the same sequence, so an
    epoch stays ``num_samples`` windows in all; being a ``DistributedSampler`` already, Lightning
    leaves it in place."""

    def __init__(self, dataset: Sized, num_samples: int, seed: int = 0) -> None:
        replicas, rank = world()
        super().__init__(dataset, num_replicas=replicas, rank=rank, shuffle=True, seed=seed)
        self.num_samples = math.ceil(num_samples / replicas)
        self.total_size = self.num_samples * replicas

    def __iter__(self) -> Iterator[int]:
        epoch = self.epoch
        g = torch.Generator().manual_seed(self.seed + epoch)
        draws = torch.randint(len(self.dataset), (self.total_size,), generator=g)
        yield from draws[self.rank :: self.num_replicas].tolist()
        self.epoch = epoch + 1


class SequenceDataset(Dataset):
    """Examples made of tensors, some of them variable-length id sequences (text, pairs);
    ``lengths`` (the summed length of each example's sequences) drive length bucketing."""

    def __init__(self, *columns: Sequence[torch.Tensor]) -> None:
        self.columns = columns
        self.lengths = np.array([sum(len(f) for f in example if f.dim()) for example in
                                 zip(*columns)], dtype=np.int64)

    def __len__(self) -> int:
        return len(self.lengths)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, ...]:
        return tuple(column[i] for column in self.columns)


class BucketBatchSampler(BatchSampler):
    """Batches of similar lengths (little padding) in a random order.

    The indices of ``sampler`` are cut into pools of ``pool`` batches, each pool is sorted by
    length and cut into batches, and the batches are shuffled (seeded by ``(seed, epoch)``).
    ``pool`` trades padding (larger: less) against randomness in which texts share a batch.
    """

    def __init__(self, sampler: Sampler[int], batch_size: int, drop_last: bool = False, *,
                 lengths: Sequence[int], pool: int = 50, seed: int = 0) -> None:
        super().__init__(sampler, batch_size, drop_last)
        self.lengths, self.pool, self.seed = np.asarray(lengths), pool, seed

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)  # type: ignore[attr-defined]

    def __iter__(self) -> Iterator[list[int]]:
        rng = np.random.default_rng([self.seed, getattr(self.sampler, "epoch", 0)])
        order = np.fromiter(iter(self.sampler), dtype=np.int64)
        size = self.batch_size * self.pool
        batches: list[list[int]] = []
        for start in range(0, len(order), size):
            chunk = order[start : start + size]
            chunk = chunk[np.argsort(self.lengths[chunk], kind="stable")]
            batches += [chunk[i : i + self.batch_size].tolist()
                        for i in range(0, len(chunk), self.batch_size)]
        if self.drop_last and batches and len(batches[-1]) < self.batch_size:
            batches = [b for b in batches if len(b) == self.batch_size]
        for i in rng.permutation(len(batches)):
            yield batches[i]


class ResumableDataLoader(DataLoader):
    """A training loader Lightning saves and restores mid-epoch (its ``state_dict`` goes into the
    checkpoint): the state is the epoch being read and the batches given so far; restored, the
    next pass over that epoch skips those batches without loading them."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._epoch: int | None = None
        self._given = 0
        self._skip: tuple[int | None, int] | None = None
        self._pending = 0

    def _sampler_epoch(self) -> int | None:
        for sampler in (self.sampler, getattr(self.batch_sampler, "sampler", None)):
            if hasattr(sampler, "epoch"):
                return sampler.epoch
        return None

    @property
    def _index_sampler(self) -> Any:  # what DataLoader iterators draw indices from
        sampler, skip = super()._index_sampler, self._pending
        self._pending = 0
        return _SkipFirst(sampler, skip) if skip else sampler

    def __iter__(self) -> Iterator[Any]:
        epoch = self._sampler_epoch()
        skip = self._skip[1] if self._skip and self._skip[0] == epoch else 0
        self._skip, self._epoch, self._given, self._pending = None, epoch, skip, skip
        for batch in super().__iter__():
            self._given += 1
            yield batch

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self._epoch, "given": self._given}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._skip = (state["epoch"], state["given"])


class _SkipFirst:
    """An index sampler without its first ``n`` items (a later pass gives them all)."""

    def __init__(self, sampler: Any, n: int) -> None:
        self.sampler, self.n = sampler, n

    def __len__(self) -> int:
        return len(self.sampler) - self.n

    def __iter__(self) -> Iterator[Any]:
        it, (n, self.n) = iter(self.sampler), (self.n, 0)
        for _ in range(n):
            next(it, None)
        yield from it


def pad_collate(batch: Sequence[tuple[torch.Tensor, ...]], pad_index: int = 0
                ) -> tuple[torch.Tensor, ...]:
    """[(field_1, field_2, ...)] -> one tensor per field: 1-D id sequences padded with
    ``pad_index`` to the longest in the batch, (B, max L); scalars stacked, (B,)."""
    return tuple(pad_sequence(list(f), batch_first=True, padding_value=pad_index) if f[0].dim()
                 else torch.stack(list(f)) for f in zip(*batch))

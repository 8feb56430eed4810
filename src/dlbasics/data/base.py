"""What every data module shares: loaders, seeded shuffling, the spec, and split helpers."""

from __future__ import annotations

from typing import ClassVar

import lightning as L
import numpy as np
import torch
from sklearn.model_selection import train_test_split
from torch.utils.data import DataLoader, Dataset

from dlbasics.spec import DataSpec


class DataModule(L.LightningDataModule):
    """Base LightningDataModule.

    Subclasses declare ``input_kind`` and ``task`` as class attributes (so model/data compatibility
    can be checked from the configs alone, before any data is read), implement ``spec`` and fill
    ``train_set``/``val_set``/``test_set`` in ``setup``.
    """

    input_kind: ClassVar[str]
    task: ClassVar[str]

    def __init__(
        self,
        data_dir: str = "data",
        batch_size: int = 128,
        eval_batch_size: int | None = None,
        num_workers: int = 0,
        val_fraction: float = 0.1,
        seed: int = 0,
        pin_memory: bool = False,
    ) -> None:
        super().__init__()
        self.data_dir = data_dir
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or batch_size
        self.num_workers = num_workers
        self.val_fraction = val_fraction
        self.seed = seed
        self.pin_memory = pin_memory
        self.train_set: Dataset | None = None
        self.val_set: Dataset | None = None
        self.test_set: Dataset | None = None

    @property
    def spec(self) -> DataSpec:
        raise NotImplementedError

    def collate_fn(self, batch):  # overridden by text modules (padding)
        return torch.utils.data.default_collate(batch)

    def _loader(self, dataset: Dataset | None, train: bool) -> DataLoader:
        if dataset is None:
            raise RuntimeError(f"{type(self).__name__}.setup() has not been called")
        return DataLoader(
            dataset,
            batch_size=self.batch_size if train else self.eval_batch_size,
            shuffle=train,
            generator=torch.Generator().manual_seed(self.seed) if train else None,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            pin_memory=self.pin_memory,
            collate_fn=self.collate_fn,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, train=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, train=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_set, train=False)


def stratified_split(
    labels: np.ndarray | None, n: int, holdout: int | float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Indices (keep, held_out) of a seeded split, stratified by ``labels`` when given."""
    idx = np.arange(n)
    keep, held = train_test_split(idx, test_size=holdout, random_state=seed, stratify=labels)
    return np.sort(keep), np.sort(held)

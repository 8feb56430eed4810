"""Tabular regression: scikit-learn's diabetes data (442 patients, 10 features), offline.

Features and target are standardised with statistics of the train split only; the spec carries the
target's mean and std so metrics are reported in the original units.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import TensorDataset

from dlbasics.data.base import DataModule, stratified_split
from dlbasics.spec import DataSpec


class Diabetes(DataModule):
    input_kind = "vector"
    task = "regression"
    test_fraction = 0.2

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        from sklearn.datasets import load_diabetes

        x, y = load_diabetes(return_X_y=True, scaled=False)
        self._x = x.astype(np.float32)
        self._y = y.astype(np.float32).reshape(-1, 1)
        train, self._test = stratified_split(None, len(y), self.test_fraction, seed=0)
        self._train, self._val = stratified_split(None, len(train), self.val_fraction, self.seed)
        self._train, self._val = train[self._train], train[self._val]
        xs, ys = self._x[self._train], self._y[self._train]
        self.x_mean, self.x_std = xs.mean(0), xs.std(0)
        self.y_mean, self.y_std = ys.mean(0), ys.std(0)

    @property
    def spec(self) -> DataSpec:
        return DataSpec(task="regression", input_kind="vector", input_shape=(self._x.shape[1],),
                        num_targets=1, target_mean=tuple(self.y_mean.tolist()),
                        target_std=tuple(self.y_std.tolist()))

    def _subset(self, idx: np.ndarray) -> TensorDataset:
        x = (self._x[idx] - self.x_mean) / self.x_std
        y = (self._y[idx] - self.y_mean) / self.y_std
        return TensorDataset(torch.from_numpy(x), torch.from_numpy(y))

    def setup(self, stage: str | None = None) -> None:
        self.train_set = self._subset(self._train)
        self.val_set = self._subset(self._val)
        self.test_set = self._subset(self._test)

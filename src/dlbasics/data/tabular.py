"""Tabular regression: scikit-learn's diabetes data (442 patients, 10 features), offline.

Features and target are standardised with statistics of the train split only; the spec carries the
target's mean and std so metrics are reported in the original units.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.utils.data import TensorDataset

from dlbasics.data.base import DataModule
from dlbasics.data.splits import fixed_test_split

# scikit-learn's names: age, sex, body mass index, mean blood pressure, six blood serum measurements
FEATURES = ("age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6")


class Diabetes(DataModule):
    input_kind = "vector"
    task = "regression"

    def __init__(self, test_fraction: float = 0.2, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.test_fraction = test_fraction
        self.stats: dict[str, np.ndarray] | None = None  # train-split means and stds

    def build_datasets(self) -> tuple[TensorDataset, ...]:
        from sklearn.datasets import load_diabetes

        x, y = load_diabetes(return_X_y=True, scaled=False)
        x, y = x.astype(np.float32), y.astype(np.float32).reshape(-1, 1)
        rest, test = fixed_test_split(len(y), self.test_fraction)
        train, val = self.split_train_val(len(rest))
        train, val = rest[train], rest[val]
        self.stats = {"x_mean": x[train].mean(0), "x_std": x[train].std(0),
                      "y_mean": y[train].mean(0), "y_std": y[train].std(0)}
        y = (y - self.stats["y_mean"]) / self.stats["y_std"]
        return tuple(TensorDataset(self.standardise(x[i]), torch.from_numpy(y[i]))
                     for i in (train, val, test))

    def standardise(self, x: np.ndarray) -> torch.Tensor:
        """Raw features (N, F) as the network reads them (the train split's statistics)."""
        if self.stats is None:
            raise RuntimeError("Diabetes has no feature statistics yet: call setup() (or "
                               "load_data_state() with a checkpoint's state) first")
        return torch.from_numpy(((x - self.stats["x_mean"]) / self.stats["x_std"]).astype(np.float32))

    def input_state(self) -> dict[str, Any]:
        """``{"kind": "vector", "features": [names], "mean": [...], "std": [...]}``: a user's
        features (columns in this order, or named in a header) are standardised with the train
        split's statistics."""
        if self.stats is None:
            return {}
        return {"kind": "vector", "features": list(FEATURES),
                "mean": self.stats["x_mean"].tolist(), "std": self.stats["x_std"].tolist()}

    def load_input_state(self, state: dict[str, Any]) -> None:
        self.stats = {"x_mean": np.asarray(state["mean"], dtype=np.float32),
                      "x_std": np.asarray(state["std"], dtype=np.float32)}

    def describe(self) -> dict[str, Any]:
        if self.stats is None:
            raise RuntimeError("Diabetes.spec needs the train split's statistics: call setup() first")
        return {"input_shape": (len(self.stats["x_mean"]),), "num_targets": 1,
                "target_mean": tuple(self.stats["y_mean"].tolist()),
                "target_std": tuple(self.stats["y_std"].tolist())}

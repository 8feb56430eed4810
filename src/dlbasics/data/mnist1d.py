"""MNIST-1D (Greydanus 2020, "Scaling down deep learning"): 10 digit templates turned into length-40
1-D signals by random padding, translation, scaling, shear and noise.

Generated locally with ``mnist1d.data.make_dataset`` and the package's standard settings
(``get_dataset_args()``: 5,000 signals, the first 4,000 for training, the last 1,000 the fixed test
set, length 40, generator seed 42), never downloaded. The arrays are cached under ``data_dir``.
The validation split is a stratified, seeded part of the 4,000 training signals.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import TensorDataset

from dlbasics.data.base import DataModule, cached_arrays

CLASS_NAMES = tuple(str(i) for i in range(10))
KEYS = ("x", "y", "x_test", "y_test")


def generate(seed: int = 42, shuffle_seq: bool = False) -> dict[str, np.ndarray]:
    """``make_dataset`` with the standard arguments; the global RNG states are left untouched."""
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.seed, args.shuffle_seq = seed, shuffle_seq
    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        data = make_dataset(args)  # seeds numpy's and python's global generators
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
    return {k: data[k].astype(np.int64 if k.startswith("y") else np.float32) for k in KEYS}


class MNIST1D(DataModule):
    input_kind = "signal"
    task = "classification"
    length = 40

    def __init__(self, generator_seed: int = 42, shuffle_seq: bool = False, cache: bool = True,
                 **kwargs: Any) -> None:
        """
        Args:
            generator_seed: seed of ``make_dataset`` (42 is the package's, the paper's dataset);
                the run's ``seed`` only picks the validation split and the batch order.
            shuffle_seq: permute the 40 time steps (one fixed permutation): the paper's control
                that removes spatial structure (CNN and GRU then drop to MLP level).
            cache: keep the generated arrays in ``data_dir/mnist1d_seed<seed>[_shuffle].npz``.
        """
        super().__init__(**kwargs)
        self.generator_seed, self.shuffle_seq, self.cache = generator_seed, shuffle_seq, cache

    def describe(self) -> dict[str, Any]:
        return {"input_shape": (1, self.length), "num_classes": 10, "class_names": CLASS_NAMES}

    @property
    def cache_path(self) -> Path:
        suffix = "_shuffle" if self.shuffle_seq else ""
        return Path(self.data_dir) / f"mnist1d_seed{self.generator_seed}{suffix}.npz"

    def load(self) -> dict[str, np.ndarray]:
        return cached_arrays(self.cache_path if self.cache else None,
                             lambda: generate(self.generator_seed, self.shuffle_seq),
                             lambda d: set(KEYS) <= set(d) and d["x"].shape[1:] == (self.length,))

    def prepare_data(self) -> None:
        self.load()  # generates and caches the arrays once

    def build_datasets(self) -> tuple[TensorDataset, ...]:
        data = self.load()
        x = torch.from_numpy(data["x"]).unsqueeze(1)  # (N, 1, 40): one channel, 40 steps
        y = torch.from_numpy(data["y"])
        keep, val = self.split_train_val(len(y), data["y"])
        keep_t, val_t = torch.from_numpy(keep), torch.from_numpy(val)
        return (TensorDataset(x[keep_t], y[keep_t]), TensorDataset(x[val_t], y[val_t]),
                TensorDataset(torch.from_numpy(data["x_test"]).unsqueeze(1),
                              torch.from_numpy(data["y_test"])))

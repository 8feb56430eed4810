"""The one way every data module cuts its splits.

``fixed_test_split`` always uses seed 0, whatever the run's seed, so every run and every seed of a
sweep is scored on the same held-out examples; the test split is never used to select anything.
``validation_split`` follows the run's seed: a held-out fraction, or fold ``fold`` of a k-fold
cross-validation of the non-test examples (``folds=k``). All are stratified by label when labels
are given, and hold out at least one example of each class.
"""

from __future__ import annotations

import math

import numpy as np
from sklearn.model_selection import KFold, StratifiedKFold, train_test_split

TEST_SEED = 0


def holdout_split(n: int, fraction: float, seed: int, labels: np.ndarray | None = None
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Sorted indices ``(kept, held_out)`` of a seeded split of ``range(n)``; ``ceil(fraction * n)``
    examples (at least one per class when stratified) are held out."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"a held-out fraction must be in (0, 1), got {fraction}")
    size = math.ceil(fraction * n)
    if labels is not None:
        size = max(size, len(np.unique(labels)))
    keep, held = train_test_split(np.arange(n), test_size=size, random_state=seed, stratify=labels)
    return np.sort(keep), np.sort(held)


def fixed_test_split(n: int, test_fraction: float, labels: np.ndarray | None = None
                     ) -> tuple[np.ndarray, np.ndarray]:
    """``(rest, test)``: the same test examples for every run."""
    return holdout_split(n, test_fraction, TEST_SEED, labels)


def validation_split(n: int, val_fraction: float, seed: int, labels: np.ndarray | None = None,
                     fold: int = 0, folds: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(train, val)`` of the non-test examples, seeded by the run; with ``folds=k``, val is
    the ``fold``-th of k disjoint parts that together cover every example."""
    if not folds:
        return holdout_split(n, val_fraction, seed, labels)
    if not 0 <= fold < folds:
        raise ValueError(f"data.fold must be in 0..{folds - 1} for data.folds={folds}, got {fold}")
    kfold = (StratifiedKFold if labels is not None else KFold)(folds, shuffle=True,
                                                               random_state=seed)
    train, val = list(kfold.split(np.zeros(n), labels))[fold]
    return np.sort(train), np.sort(val)

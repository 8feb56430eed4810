"""k-fold cross-validation on the small offline datasets: the folds are disjoint, cover every
non-test example, are stratified, and never touch the fixed test split."""

from __future__ import annotations

import numpy as np
import pytest
from hydra.errors import InstantiationException
from hydra.utils import instantiate

from dlbasics.errors import UserError


def raw(dm, split: str) -> set:
    """The raw examples of a split (as the data module read them, before any encoding that
    depends on the train split: a vocabulary, a standardisation)."""
    if hasattr(dm, "raw_splits"):
        return set(dm.raw_splits()[split][0])
    ds = getattr(dm, f"{split}_set")
    if hasattr(ds, "images"):
        return {bytes(x.numpy().tobytes()) for x in ds.images}
    x = ds.tensors[0].numpy()
    if getattr(dm, "stats", None):  # diabetes: undo the train split's standardisation
        x = x * dm.stats["x_std"] + dm.stats["x_mean"]
    return {bytes(np.round(row, 3).tobytes()) for row in x}


@pytest.mark.parametrize("data", ["digits", "diabetes", "mnist1d", "rt_sentiment"])
def test_folds_partition_the_non_test_examples(data, make_cfg):
    k = 4
    folds = []
    for fold in range(k):
        dm = instantiate(make_cfg(f"data={data}", f"data.folds={k}", f"data.fold={fold}").data)
        dm.setup()
        folds.append(dm)
    vals = [raw(dm, "val") for dm in folds]
    test = raw(folds[0], "test")
    everything = raw(folds[0], "train") | vals[0]
    for i in range(k):
        assert raw(folds[i], "test") == test  # the fixed test split is untouched
        assert not vals[i] & test
        assert raw(folds[i], "train") | vals[i] == everything  # train + val: all non-test
        assert not raw(folds[i], "train") & vals[i]
        for j in range(i):
            assert not vals[i] & vals[j]  # disjoint ...
    assert set().union(*vals) == everything  # ... and covering
    sizes = [len(v) for v in vals]
    assert max(sizes) - min(sizes) <= 2 * (1 if data == "diabetes" else 2)
    if data in ("digits", "rt_sentiment"):  # stratified: each fold keeps the class balance
        labels = [np.array([int(dm.val_set[i][-1]) for i in range(len(dm.val_set))])
                  for dm in folds]
        shares = [np.bincount(lab, minlength=10) / len(lab) for lab in labels]
        assert np.abs(np.array(shares) - shares[0]).max() < 0.02


def test_fold_out_of_range_and_unsupported_datasets_are_refused(make_cfg):
    with pytest.raises(UserError, match=r"data\.fold must be in 0\.\.2"):
        dm = instantiate(make_cfg("data=digits", "data.folds=3", "data.fold=3").data)
        dm.setup()
    with pytest.raises(InstantiationException, match="contiguously"):
        instantiate(make_cfg("data=shakespeare", "data.folds=3").data)

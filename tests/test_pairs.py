"""Every (model, data) pair meant to work gets a real ``fast_dev_run``; every other pair gets the
clear error before any data is read. Pairs come from the configs (``dlbasics.configs.pairs``)."""

from __future__ import annotations

import math

import pytest

from dlbasics.configs import choices, pairs
from dlbasics.errors import IncompatibleDataError
from dlbasics.train import train
from tests.conftest import ondisk_writers

PAIRS = pairs()
NON_PAIRS = [(m, d) for m in choices("model") for d in choices("data") if (m, d) not in PAIRS]
NEEDS_FILES = set(ondisk_writers())


def _overrides(model: str, data: str, ondisk_root) -> list[str]:
    out = [f"model={model}", f"data={data}", "trainer.fast_dev_run=true", "callbacks=none",
           "logger=none", "trainer.enable_model_summary=false",
           "trainer.enable_progress_bar=false"]
    if data in NEEDS_FILES:
        out += [f"data.data_dir={ondisk_root}", "data.download=false"]
    return out


@pytest.mark.parametrize(("model", "data"), PAIRS, ids=[f"{m}-{d}" for m, d in PAIRS])
def test_pair_fast_dev_run(model, data, make_cfg, ondisk_root):
    cfg = make_cfg(*_overrides(model, data, ondisk_root))
    metrics = train(cfg)
    assert metrics["global_step"] == 1
    test_metrics = {k: v for k, v in metrics.items() if k.startswith("test/")}
    assert "test/loss" in test_metrics
    assert all(math.isfinite(v) for v in test_metrics.values())


@pytest.mark.parametrize(("model", "data"), NON_PAIRS, ids=[f"{m}-{d}" for m, d in NON_PAIRS])
def test_incompatible_pair_is_refused(model, data, make_cfg, ondisk_root):
    cfg = make_cfg(*_overrides(model, data, ondisk_root))
    with pytest.raises(IncompatibleDataError, match=r"works with data: .*works with model: "):
        train(cfg)


def test_the_core_pairs_are_meant_to_work():
    for pair in [("mlp", "mnist5k"), ("cnn", "mnist5k"), ("resnet", "mnist5k"), ("mlp", "digits"),
                 ("mlp", "diabetes"), ("cnn", "cifar10"), ("resnet", "fashion_mnist")]:
        assert pair in PAIRS
    assert ("cnn", "diabetes") in NON_PAIRS

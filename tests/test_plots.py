"""The run folder's plots read the figures of the epoch they are drawn for."""

from __future__ import annotations

import csv

import lightning as L
import pytest

from dlbasics.build import build_datamodule, build_module
from dlbasics.plots import RunPlots
from dlbasics.speedrun import compose_recipe


def test_learning_curves_hold_each_epochs_own_training_loss(tmp_path):
    """The module logs train/loss in its own on_train_epoch_end, after the callbacks' hook:
    the curve must still hold epoch k's mean at epoch k (not epoch k-1's)."""
    cfg = compose_recipe(["model=mlp", "data=digits", "trainer.max_epochs=3"], tmp_path)
    dm = build_datamodule(cfg)
    module = build_module(cfg, dm.spec)
    plots = RunPlots(folder=str(tmp_path))
    trainer = L.Trainer(max_epochs=3, logger=L.pytorch.loggers.CSVLogger(tmp_path, name="csv"),
                        callbacks=[plots], enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, limit_train_batches=5, limit_val_batches=2)
    trainer.fit(module, datamodule=dm)
    with open(next(tmp_path.rglob("metrics.csv")), newline="") as f:
        logged = [(int(r["epoch"]), float(r["train/loss"])) for r in csv.DictReader(f)
                  if r.get("train/loss")]
    drawn = plots.history["loss"]["train"]
    assert [e for e, _ in drawn] == [0, 1, 2]
    assert [e for e, _ in logged] == [0, 1, 2]
    assert [v for _, v in drawn] == pytest.approx([v for _, v in logged], rel=1e-6)
    assert drawn[0][1] > drawn[2][1]  # it trains: three different epochs, not one repeated
    assert [e for e, _ in plots.history["loss"]["val"]] == [0, 1, 2]
    assert (tmp_path / "learning_curves.png").stat().st_size > 0

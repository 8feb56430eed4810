"""Experiment tracking: the resolved config (tags included) reaches every logger: the CSV
logger always, MLflow (local SQLite store) and Weights & Biases (offline) where installed."""

from __future__ import annotations

import json

import pytest
import yaml

from tests.clirun import FAST, call

RUN = ["model=mlp", "data=digits", "trainer.max_epochs=1", "tags=[smoke,cpu]", *FAST]


def test_csv_logger_and_run_record_hold_the_config_and_tags(tmp_path):
    code, out, err = call("dlbasics.train", *RUN, f"hydra.run.dir={tmp_path / 'run'}")
    assert code == 0, err
    hparams = yaml.safe_load((tmp_path / "run" / "csv" / "hparams.yaml").read_text())
    assert hparams["optimizer"]["lr"] == 0.003 and hparams["tags"] == ["smoke", "cpu"]
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    assert record["tags"] == ["smoke", "cpu"] and record["git_commit"]
    assert record["versions"]["torch"].startswith("2.") and record["hardware"]["cpu_count"]
    assert "config" in out and "optimizer" in out  # the config tree printed at the start


def test_mlflow_local_store(tmp_path, monkeypatch):
    mlflow = pytest.importorskip("mlflow")
    monkeypatch.setenv("DLBASICS_LOG_DIR", str(tmp_path))
    code, _, err = call("dlbasics.train", *RUN, "logger=mlflow", "print_config=false")
    assert code == 0, err
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    (run,) = mlflow.search_runs(experiment_names=["dlbasics"], output_format="list")
    assert run.data.params["optimizer/lr"] == "0.003"
    assert run.data.params["tags"] == "['smoke', 'cpu']"
    assert 0.0 < run.data.metrics["test/acc"] <= 1.0


def test_wandb_offline_run(tmp_path):
    pytest.importorskip("wandb")
    code, _, err = call("dlbasics.train", *RUN, "logger=wandb", "print_config=false",
                        f"hydra.run.dir={tmp_path / 'run'}")
    assert code == 0, err
    (log,) = (tmp_path / "run" / "wandb").glob("offline-run-*/run-*.wandb")
    data = log.read_bytes()
    assert b"optimizer" in data and b"smoke" in data and b"test/acc" in data

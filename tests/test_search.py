"""Hyperparameter search with Optuna through Hydra's sweeper: every search config runs, the
study persists and continues, and a real search on digits writes its best parameters."""

from __future__ import annotations

import sqlite3

import pytest
from omegaconf import OmegaConf

from dlbasics.configs import choices
from tests.clirun import FAST, call

BASE = {"digits_mlp": ["model=mlp", "data=digits", "trainer.max_epochs=10"]}


def search(name: str, *extra: str) -> tuple[int, str, str]:
    return call("dlbasics.train", *BASE.get(name, [f"experiment={name}"]),
                f"hparams_search={name}", "logger=csv", *FAST, *extra)


def trials(study_dir) -> list[tuple[int, str]]:
    with sqlite3.connect(study_dir / "optuna.db") as db:
        return db.execute("SELECT number, state FROM trials ORDER BY number").fetchall()


@pytest.mark.parametrize("name", choices("hparams_search"))
def test_every_search_runs_two_trials(name, tmp_path, monkeypatch):
    monkeypatch.setenv("DLBASICS_LOG_DIR", str(tmp_path))
    code, _, err = search(name, "hydra.sweeper.n_trials=2", "trainer.fast_dev_run=true")
    assert code == 0, err[-3000:]
    study = tmp_path / "hparams_search" / name
    assert [state for _, state in trials(study)] == ["COMPLETE", "COMPLETE"]
    best = OmegaConf.load(study / "optimization_results.yaml")
    assert set(best.best_params) == {"optimizer.lr", "optimizer.weight_decay", "model.hidden",
                                     "model.dropout"}
    assert len((study / "jobs.csv").read_text().splitlines()) == 3  # header + 2 trials


def test_the_same_command_continues_the_study(tmp_path, monkeypatch):
    monkeypatch.setenv("DLBASICS_LOG_DIR", str(tmp_path))
    for _ in range(2):
        code, _, err = search("digits_mlp", "hydra.sweeper.n_trials=2", "trainer.max_epochs=1")
        assert code == 0, err[-3000:]
    study = tmp_path / "hparams_search" / "digits_mlp"
    assert [n for n, _ in trials(study)] == [0, 1, 2, 3]  # one study, four trials
    assert len([p for p in study.iterdir() if (p / "metrics.json").is_file()]) == 4  # none reused


@pytest.mark.slow
def test_a_real_search_on_digits_finds_good_parameters(tmp_path, monkeypatch):
    monkeypatch.setenv("DLBASICS_LOG_DIR", str(tmp_path))
    code, _, err = search("digits_mlp")  # 8 trials of 10 epochs
    assert code == 0, err[-3000:]
    study = tmp_path / "hparams_search" / "digits_mlp"
    states = [state for _, state in trials(study)]
    assert len(states) == 8 and states.count("COMPLETE") == 8
    best = OmegaConf.load(study / "optimization_results.yaml")
    assert best.best_value > 0.9  # validation accuracy of the best trial (chance: 0.1)
    assert 3e-4 <= best.best_params["optimizer.lr"] <= 1e-2

"""Shared fixtures: tiny real-format dataset files, and a Hydra config composer for tests."""

from __future__ import annotations

import importlib
import logging
import pkgutil
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, open_dict

import tests.ondisk as ondisk
from dlbasics.cli import register_resolvers
from dlbasics.configs import CONF_DIR

register_resolvers()
# The tests run tiny models, for which a second intra-op thread only adds synchronisation (measured
# 10-100x slower on a busy machine); pytest-xdist gives each core its own worker instead.
torch.set_num_threads(1)

# `make test` runs pytest-xdist with --dist loadfile, which hands whole files to the two workers
# in collection order. These files take a minute or more each (CLI runs, trained checkpoints);
# collected first, they start at once and the short files fill in around them, instead of one
# worker running the last long file alone for minutes at the end (measured: 3.5 min of tail).
LONGEST_FIRST = ("test_user_errors.py", "test_readme.py", "test_cli.py", "test_experiments.py",
                 "test_ddp.py", "test_explain.py", "test_predict.py", "test_resume.py",
                 "test_search.py", "test_aggregate.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: file order kept


def ondisk_writers() -> dict[str, Callable[[Path], None]]:
    """{data config name: writer of its tiny files}, collected from ``tests/ondisk/*.py``."""
    writers: dict[str, Callable[[Path], None]] = {}
    for mod in pkgutil.iter_modules(ondisk.__path__):
        writers.update(importlib.import_module(f"tests.ondisk.{mod.name}").WRITERS)
    return writers


@pytest.fixture(scope="session")
def ondisk_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One folder holding tiny files for every dataset that is normally downloaded."""
    root = tmp_path_factory.mktemp("ondisk")
    for write in ondisk_writers().values():
        write(root)
    return root


@pytest.fixture()
def make_cfg(tmp_path: Path) -> Callable[..., DictConfig]:
    """Compose ``conf/<name>.yaml`` with overrides, writing outputs under ``tmp_path``."""

    def _make(*overrides: str, config_name: str = "train") -> DictConfig:
        with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
            cfg = compose(config_name, overrides=list(overrides), return_hydra_config=False)
        with open_dict(cfg):
            cfg.paths.output_dir = str(tmp_path / "run")
            cfg.paths.log_dir = str(tmp_path / "logs")
        return cfg

    return _make


@pytest.fixture(autouse=True)
def _dlbasics_loggers_enabled():
    """Hydra's job logging, configured by CLI runs in this process, disables the loggers that
    exist then: the next test's caplog would see nothing from them."""
    for name in list(logging.root.manager.loggerDict):
        if name.startswith("dlbasics"):
            logging.getLogger(name).disabled = False

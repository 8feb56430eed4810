"""Every ``python -m dlbasics.*`` command of the README runs as written (with
``trainer.fast_dev_run=true``); those that need a GPU or downloaded data end in one clear line."""

from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path

import pytest
import torch

from dlbasics.configs import PROJECT_ROOT
from tests.clirun import FAST, call, run

DOWNLOADED = {"mnist", "fashion_mnist", "cifar10", "ag_news", "imdb", "tab_pairs"}


def readme_commands() -> list[str]:
    commands, fenced = [], False
    for line in (PROJECT_ROOT / "README.md").read_text().splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif fenced and line.startswith("python -m dlbasics."):
            commands.append(line)
    return commands


COMMANDS = readme_commands()


def test_the_readme_has_commands():
    assert len(COMMANDS) > 15
    assert any("trainer=ddp" in c for c in COMMANDS) and any("-m " in c for c in COMMANDS)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, Path]:
    """A tiny trained run of each kind the README's commands start from."""
    root = tmp_path_factory.mktemp("readme_ckpts")
    runs = {"classification": [],  # the default recipe: mnist5k, cnn
            "text": ["experiment=rt_lstm", "model.hidden=16", "model.embed_dim=16"],
            "regression": ["model=mlp", "data=diabetes"],
            "language_model": ["experiment=shakespeare_transformer", "model.n_layer=1"],
            "seq2seq": ["experiment=numbers_bahdanau", "data.n_train=200", "data.n_val=20",
                        "data.n_test=20"]}
    out = {}
    for kind, args in runs.items():
        code, _, err = call("dlbasics.train", *args, "trainer.max_epochs=1", "trainer.max_steps=2",
                            "trainer.limit_val_batches=2", "trainer.limit_test_batches=2",
                            "logger=none", f"hydra.run.dir={root / kind}", *FAST)
        assert code == 0, err[-2000:]
        out[kind] = root / kind / "checkpoints" / "last.ckpt"
    code, _, err = call("dlbasics.train", "-m", "model=mlp", "data=digits", "seed=1,2",
                        "trainer.fast_dev_run=true", "logger=none", *FAST,
                        f"hydra.sweep.dir={root / 'sweep'}")
    assert code == 0, err[-2000:]
    out["multirun"] = root / "sweep"
    return out


def expected_failure(args: list[str]) -> str | None:
    """The error a command must end with on this machine, or None when it must succeed."""
    if "hydra/launcher=slurm" in args and shutil.which("sbatch") is None:
        return "SLURM launcher could not submit"
    if not torch.cuda.is_available() and ("trainer=gpu" in args or (
            "trainer=ddp" in args and "trainer.accelerator=cpu" not in args)):
        return "GPU"
    data = next((a.split("=", 1)[1] for a in args if a.startswith("data=")), None)
    return "missing" if data in DOWNLOADED else None


def slow(command: str) -> bool:
    """Commands whose fast twin is tested elsewhere: DDP processes (tests/test_ddp.py), bf16 on
    the CPU with loader workers (tests/test_cli.py) and multiruns of several jobs (sweeps:
    tests/test_cli.py, seeds: tests/test_aggregate.py, folds: tests/test_folds.py, searches:
    tests/test_search.py, each fast)."""
    return (("trainer=ddp" in command and "accelerator=cpu" in command)
            or "precision=bf16" in command or "-m" in command.split()[3:]
            or "hparams_search=" in command)


@pytest.mark.parametrize("command", [pytest.param(c, marks=pytest.mark.slow) if slow(c) else c
                                     for c in COMMANDS])
def test_readme_command(command, checkpoints, tmp_path, monkeypatch):
    words = shlex.split(command, comments=True)
    module, args = words[2], words[3:]
    kind = {"dlbasics.generate": "language_model", "dlbasics.translate": "seq2seq"}.get(
        module, "classification")
    if module in ("dlbasics.predict", "dlbasics.explain"):  # the input says which model reads it
        if any(a.startswith("text=") or a.endswith(".txt") for a in args):
            kind = "text"
        elif any(a.endswith(".csv") for a in args):
            kind = "regression"
    args = [re.sub(r"outputs/\S*<run>\S*", str(checkpoints[kind]), a) for a in args]
    args = [f"resume={checkpoints[kind].parents[1]}" if a.startswith("resume=") else a
            for a in args]
    args = [str(checkpoints["multirun"]) if "<date>" in a else a for a in args]
    monkeypatch.setenv("DLBASICS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DLBASICS_LOG_DIR", str(tmp_path / "logs"))
    if module == "dlbasics.train" and "--cfg" not in args:
        args += ["trainer.fast_dev_run=true"]
        if not any(a.startswith("resume=") for a in args):
            args += ["logger=none"]
        if any(a.startswith("hparams_search=") for a in args):
            args += ["hydra.sweeper.n_trials=1"]  # 2 trials each: tests/test_search.py
    elif module == "dlbasics.eval":
        args += ["trainer.limit_test_batches=2"]
    if module != "dlbasics.aggregate":
        args += FAST[3:] if module != "dlbasics.train" else FAST
    failure = expected_failure(args)
    if "trainer=ddp" in args and failure is None:  # DDP starts the script again: a real process
        proc = run(module, *args, log_dir=tmp_path / "logs", check=False)
        code, out, err = proc.returncode, proc.stdout, proc.stderr
    else:
        code, out, err = call(module, *args)
    assert "Traceback" not in err
    if failure is None:
        assert code == 0, err[-3000:]
    else:
        assert code == 2, err[-3000:]
        lines = [line for line in err.splitlines() if line.startswith("error: ")]
        assert len(lines) == 1 and failure in lines[0], err[-3000:]

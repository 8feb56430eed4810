"""Exact resume: a run SIGKILLed at any point and continued with ``resume=<run folder>`` ends
with the same metrics and the same weights as the uninterrupted run (CPU, deterministic), and a
finished run continues to a larger budget."""

from __future__ import annotations

import json
import signal

import pytest
import torch

from dlbasics.configs import PROJECT_ROOT
from tests.clirun import FAST, call, run, run_here

# a CNN with dropout on augmented digits: data order, augmentation and dropout all draw random
# numbers; 21 steps per epoch, a step checkpoint every 5 steps
RECIPE = ["model=cnn", "data=digits", "data.rotation=10", "data.crop_padding=1",
          "model.dropout=0.25", "trainer.max_epochs=2", "trainer.deterministic=true", "seed=3",
          "callbacks.step_checkpoint.every_n_train_steps=5",
          "callbacks.step_checkpoint.train_time_interval=null", *FAST]
KILLS = {"mid-epoch": (12, "batch"), "after-a-checkpoint": (25, "after_checkpoint"),
         "during-validation": (30, "validation")}


def train_in(folder, *extra: str, check: bool = True):
    return run("dlbasics.train", *RECIPE, f"hydra.run.dir={folder}", *extra,
               log_dir=folder.parent, cwd=PROJECT_ROOT, check=check)


def outcome(folder) -> tuple[dict, dict]:
    metrics = json.loads((folder / "metrics.json").read_text())
    metrics.pop("fit_seconds")
    weights = torch.load(folder / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    return metrics, weights


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    folder = tmp_path_factory.mktemp("resume") / "whole"
    run_here("dlbasics.train", *RECIPE, f"hydra.run.dir={folder}", log_dir=folder.parent)
    return outcome(folder)


def kill_and_resume(folder, step: int, where: str) -> None:
    killed = train_in(folder, "+callbacks.kill._target_=tests.faults.KillAt",
                      f"+callbacks.kill.step={step}", f"+callbacks.kill.where={where}",
                      check=False)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert not (folder / "metrics.json").exists()
    run_here("dlbasics.train", f"resume={folder}", "~callbacks.kill", log_dir=folder.parent)


def assert_same(resumed: tuple[dict, dict], whole: tuple[dict, dict]) -> None:
    assert resumed[0] == whole[0]
    assert resumed[1].keys() == whole[1].keys()
    for name, tensor in whole[1].items():
        assert torch.equal(resumed[1][name], tensor), name


def test_killed_mid_epoch_resumes_exactly(uninterrupted, tmp_path):
    kill_and_resume(tmp_path / "run", *KILLS["mid-epoch"])
    assert_same(outcome(tmp_path / "run"), uninterrupted)


@pytest.mark.slow
@pytest.mark.parametrize("point", ["after-a-checkpoint", "during-validation"])
def test_killed_anywhere_resumes_exactly(point, uninterrupted, tmp_path):
    kill_and_resume(tmp_path / "run", *KILLS[point])
    assert_same(outcome(tmp_path / "run"), uninterrupted)


def test_two_runs_with_one_seed_give_identical_metrics(tmp_path):
    args = ["model=mlp", "data=digits", "trainer.max_epochs=2", "trainer.deterministic=true",
            "model.dropout=0.3", "logger=none", *FAST]
    first = [call("dlbasics.train", *args, f"hydra.run.dir={tmp_path / n}") for n in "ab"]
    assert all(code == 0 for code, _, _ in first)
    a, b = (json.loads((tmp_path / n / "metrics.json").read_text()) for n in "ab")
    a.pop("fit_seconds"), b.pop("fit_seconds")
    assert a == b and a["test/acc"] > 0.5


def test_a_finished_run_continues_to_a_larger_budget(tmp_path):
    folder = tmp_path / "run"
    code, _, err = call("dlbasics.train", "model=mlp", "data=digits", "trainer.max_epochs=1",
                        "logger=none", *FAST, f"hydra.run.dir={folder}")
    assert code == 0, err
    first = json.loads((folder / "metrics.json").read_text())
    code, _, err = call("dlbasics.train", f"resume={folder}", "trainer.max_epochs=3", *FAST)
    assert code == 0, err
    extended = json.loads((folder / "metrics.json").read_text())
    assert extended["epochs"] == 3 and extended["global_step"] == 3 * first["global_step"]
    assert extended["status"] == "finished"
    assert (folder / ".hydra" / "resume-1" / "overrides.yaml").is_file()  # the first kept
    assert "trainer.max_epochs=1" in (folder / ".hydra" / "overrides.yaml").read_text()

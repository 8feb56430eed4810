"""The real CLIs end to end: train with overrides, multirun, resume, eval, a sweep that survives
a diverging job, Ctrl-C, and mistakes through a real process (one clear line, exit 2, no
traceback). Most run the entry points in this process (``run_here``); those that need a process
of their own (signals, start-up) start one (``run``)."""

from __future__ import annotations

import json
import math
import os
import re
import signal
import subprocess
import sys
import time

import pytest
import torch

from tests.clirun import FAST, metrics_files, run_here


def test_train_then_resume_then_eval(tmp_path):
    logs = tmp_path / "logs"
    # from another working directory, with overrides of several groups
    run_here("dlbasics.train", "model=mlp", "data=digits", "optimizer=momentum", "scheduler=cosine",
             "trainer.max_epochs=4", "optimizer.lr=0.1", "model.hidden=64", "module.l1=1e-5", *FAST,
             log_dir=logs, cwd=tmp_path)
    (first,) = metrics_files(logs)
    m = json.loads(first.read_text())
    assert m["epochs"] == 4 and m["test/acc"] > 0.8  # 10 classes: chance is 0.1
    run_dir = first.parent
    assert (run_dir / ".hydra" / "config.yaml").is_file()
    last = run_dir / "checkpoints" / "last.ckpt"
    assert last.is_file()

    # resume: continues from epoch 4 to 5 instead of starting over
    run_here("dlbasics.train", "model=mlp", "data=digits", "optimizer=momentum", "scheduler=cosine",
             "trainer.max_epochs=5", "optimizer.lr=0.1", "model.hidden=64",
             f"ckpt_path={last}", *FAST, log_dir=logs)
    resumed = json.loads(next(p for p in metrics_files(logs) if p != first).read_text())
    assert resumed["epochs"] == 5
    assert resumed["global_step"] == m["global_step"] * 5 // 4

    # eval rebuilds model and data from the checkpoint alone and reproduces the test numbers
    best = torch.load(last, weights_only=True)["callbacks"]
    best_path = next(v["best_model_path"] for k, v in best.items() if "ModelCheckpoint" in k)
    proc = run_here("dlbasics.eval", f"ckpt_path={best_path}", *FAST[1:], log_dir=logs)
    assert "test metrics" in proc.stdout
    evaluated = json.loads(sorted((logs / "eval").rglob("metrics.json"))[0].read_text())
    assert evaluated["test/acc"] == pytest.approx(m["test/acc"], abs=1e-6)


def test_regression_reports_mse_and_r2(make_cfg):
    from dlbasics.train import train

    m = train(make_cfg("model=mlp", "data=diabetes", "model.hidden=64", "model.depth=1",
                       "model.dropout=0.0", "trainer.max_epochs=30", "optimizer=adam",
                       "scheduler=none", "callbacks.progress_bar=null", "callbacks.lr_monitor=null",
                       "logger=none",
                       "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false"))
    assert 0.2 < m["test/r2"] < 1.0  # linear regression gets ~0.45 on this data
    assert 1500 < m["test/mse"] < 5000  # in the target's original units
    assert 30 < m["test/mae"] < 70


def test_multirun_sweep_gives_one_folder_per_job(tmp_path):
    run_here("dlbasics.train", "-m", "model=mlp,lenet", "data=digits", "trainer.max_epochs=1",
        *FAST, log_dir=tmp_path)
    files = metrics_files(tmp_path)
    assert len(files) == 2
    assert {f.parent.name for f in files} == {"0", "1"}
    assert files[0].parent.parent == files[1].parent.parent  # one sweep folder
    overrides = [(f.parent / ".hydra" / "overrides.yaml").read_text() for f in files]
    assert any("model=mlp" in o for o in overrides) and any("model=lenet" in o for o in overrides)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["model=nosuchmodel"], r"Could not find 'model/nosuchmodel'.*cnn"),
    ],
    ids=["unknown-model"],
)
def test_user_errors_end_in_one_clear_message(tmp_path, args, expected):
    """A mistake through the entry point (the full table: tests/test_user_errors.py; a real
    process: the Ctrl-C test below)."""
    proc = run_here("dlbasics.train", *args, "trainer.max_epochs=1", *FAST, log_dir=tmp_path / "logs",
               check=False)
    assert proc.returncode == 2
    assert re.search(expected, proc.stderr, re.S), proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr


def test_a_diverging_job_does_not_end_the_sweep(tmp_path):
    proc = run_here("dlbasics.train", "-m", "model=mlp", "data=diabetes", "optimizer=sgd",
                    "scheduler=none", "trainer.max_epochs=2", "optimizer.lr=0.01,1e9,0.1",
                    "logger=none", *FAST, log_dir=tmp_path, check=False)
    assert proc.returncode == 1
    finished = {f.parent.name: json.loads(f.read_text()) for f in metrics_files(tmp_path)}
    assert finished["0"]["status"] == finished["2"]["status"] == "finished"
    assert finished["1"]["status"].startswith("failed: the training loss became")
    (error,) = tmp_path.rglob("error.txt")
    assert error.parent.name == "1" and (error.parent / "traceback.txt").is_file()
    summary = proc.stderr[proc.stderr.index("1 of 3 jobs failed"):]
    assert "job 1 (optimizer.lr=1000000000.0): the training loss became" in summary
    assert "Traceback" not in proc.stderr


def test_ctrl_c_says_where_the_checkpoint_is_and_how_to_resume(tmp_path):
    folder = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "dlbasics.train", "model=mlp", "data=digits",  # ~1 min of epochs:
         "trainer.max_epochs=1000", "callbacks.early_stopping=null",  # never over before the signal
         "logger=none", *FAST, f"hydra.run.dir={folder}"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        # Ctrl+C as in a terminal: a shell starts background jobs (CI under `cmd &`) with SIGINT
        # ignored, which the child would inherit, and Python then never raises KeyboardInterrupt
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 120
    while not list((folder / "checkpoints").glob("*.ckpt")) and time.monotonic() < deadline:
        time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode != 0, "the run ended before it was interrupted"
    assert "interrupted: the last checkpoint is " + str(folder / "checkpoints") in err, err[-2000:]
    assert f"continue with: python -m dlbasics.train resume={folder}" in err
    assert "Traceback" not in err


def test_bf16_mixed_precision_on_the_cpu(make_cfg):
    from dlbasics.train import train

    m = train(make_cfg("model=cnn", "data=digits", "trainer.precision=bf16-mixed",
                       "trainer.max_epochs=1", "callbacks=none", "logger=none",
                       "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false"))
    assert m["test/acc"] > 0.3 and math.isfinite(m["test/loss"])  # chance: 0.1

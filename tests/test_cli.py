"""The real CLIs end to end through subprocess: train with overrides, multirun, resume, eval, and
each error a user can cause (one clear line, non-zero exit, no traceback)."""

from __future__ import annotations

import json

import pytest
import torch

from tests.clirun import FAST, metrics_files, run


def test_train_then_resume_then_eval(tmp_path):
    logs = tmp_path / "logs"
    # from another working directory, with overrides of several groups
    run("dlbasics.train", "model=mlp", "data=digits", "optimizer=momentum", "scheduler=cosine",
        "trainer.max_epochs=4", "optimizer.lr=0.1", "model.hidden=64", "module.l1=1e-5", *FAST, log_dir=logs,
        cwd=tmp_path)
    (first,) = metrics_files(logs)
    m = json.loads(first.read_text())
    assert m["epochs"] == 4 and m["test/acc"] > 0.8  # 10 classes: chance is 0.1
    run_dir = first.parent
    assert (run_dir / ".hydra" / "config.yaml").is_file()
    last = run_dir / "checkpoints" / "last.ckpt"
    assert last.is_file()

    # resume: continues from epoch 4 to 5 instead of starting over
    run("dlbasics.train", "model=mlp", "data=digits", "optimizer=momentum", "scheduler=cosine",
        "trainer.max_epochs=5", "optimizer.lr=0.1", "model.hidden=64",
        f"ckpt_path={last}", *FAST, log_dir=logs)
    resumed = json.loads(next(p for p in metrics_files(logs) if p != first).read_text())
    assert resumed["epochs"] == 5
    assert resumed["global_step"] == m["global_step"] * 5 // 4

    # eval rebuilds model and data from the checkpoint alone and reproduces the test numbers
    best = torch.load(last, weights_only=True)["callbacks"]
    best_path = next(v["best_model_path"] for k, v in best.items() if "ModelCheckpoint" in k)
    proc = run("dlbasics.eval", f"ckpt_path={best_path}", *FAST[1:], log_dir=logs)
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
    run("dlbasics.train", "-m", "model=mlp,lenet", "data=digits", "trainer.max_epochs=1",
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
        (["model=cnn", "data=diabetes"],
         r"error: model=cnn cannot train on data=diabetes .* works with model: .*mlp"),
        (["model.hiden=3"], r"Could not override 'model.hiden'"),
        (["model=mlp", "data=diabetes", "optimizer=sgd", "optimizer.lr=1e9", "scheduler=none"],
         r"error: the training loss became (nan|inf) .* Lower the learning rate"),
    ],
    ids=["unknown-model", "incompatible", "bad-key", "nan-loss"],
)
def test_user_errors_end_in_one_clear_message(tmp_path, args, expected):
    garbage = tmp_path / "garbage.ckpt"
    garbage.write_bytes(b"this is not a checkpoint")
    (tmp_path / "empty").mkdir()
    args = [a.replace("EMPTY", str(tmp_path / "empty")).replace("NOFILE", str(tmp_path / "no.ckpt"))
            .replace("GARBAGE", str(garbage)) for a in args]
    proc = run("dlbasics.train", *args, "trainer.max_epochs=1", *FAST, log_dir=tmp_path / "logs",
               check=False)
    assert proc.returncode != 0
    import re

    assert re.search(expected, proc.stderr, re.S), proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["model=mlp", "model.depth=two"], r"model\.depth='two': must be an integer >= 0"),
        (["data=mnist", "data.download=false", "data.data_dir=EMPTY"],
         r"MNIST files are missing from .* Put the files there"),
        (["ckpt_path=NOFILE"], r"ckpt_path=.* does not exist"),
        (["ckpt_path=GARBAGE"], r"ckpt_path=.* is not a readable checkpoint"),
        (["finetune.ckpt_path=GARBAGE"], r"ckpt_path=.* is not a readable checkpoint"),
        (["model=mlp", "data=digits", "+module.foo=1"],
         r"module\.foo is not an option of classification models .*label_smoothing"),
        (["model=mlp", "data=digits", "module.teacher_forcing=0.5"],
         r"module\.teacher_forcing is not an option of classification models"),
        (["model=lm_lstm", "data=pydoc", "module.test_beam_size=3"],
         r"module\.test_beam_size is not an option of language_model models"),
    ],
    ids=["bad-value", "missing-files", "no-ckpt", "not-a-ckpt", "finetune-not-a-ckpt",
         "unknown-module-option", "seq2seq-option-on-classifier", "seq2seq-option-on-lm"],
)
def test_user_errors_in_process(tmp_path, make_cfg, args, expected):
    """The same UserError path as the CLI (which prints it as `error: ...`), without a subprocess."""
    from dlbasics.errors import UserError
    from dlbasics.train import train

    garbage = tmp_path / "garbage.ckpt"
    garbage.write_bytes(b"this is not a checkpoint")
    (tmp_path / "empty").mkdir()
    args = [a.replace("EMPTY", str(tmp_path / "empty")).replace("NOFILE", str(tmp_path / "no.ckpt"))
            .replace("GARBAGE", str(garbage)) for a in args]
    with pytest.raises(UserError, match=expected):
        train(make_cfg(*args, "trainer.max_epochs=1", "callbacks=none", "logger=none"))

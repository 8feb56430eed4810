"""Every mistake a user can make, table-driven: each ends with exit code 2, exactly one line
starting with ``error:`` that says what to do, no traceback, and no file of a finished run
changed. The real entry points run in this process (``tests.clirun.call``)."""

from __future__ import annotations

import hashlib
import pickle
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.clirun import FAST, call
from tests.ondisk.images import write_cifar10, write_idx, write_mnist
from tests.ondisk.text import write_ag_news, write_imdb

QUIET = [*FAST, "logger=none"]
TINY = ["model=mlp", "data=digits", "trainer.max_epochs=1", *QUIET]


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict[str, Path]:
    """A finished run, a language-model run, and damaged copies of every downloaded format."""
    root = tmp_path_factory.mktemp("mistakes")
    code, _, err = call("dlbasics.train", *TINY, f"hydra.run.dir={root / 'finished'}")
    assert code == 0, err
    code, _, err = call("dlbasics.train", "model=lm_lstm", "data=pydoc", "model.n_embd=16",
                        "model.hidden=16", "trainer.max_steps=2", "trainer.max_epochs=1",
                        "trainer.limit_val_batches=1", "trainer.limit_test_batches=1", *QUIET,
                        f"hydra.run.dir={root / 'lm'}")
    assert code == 0, err
    code, _, err = call("dlbasics.train", "model=mlp", "data=diabetes", "trainer.max_epochs=1",
                        *QUIET, f"hydra.run.dir={root / 'reg'}")
    assert code == 0, err
    write_bad_inputs(root)
    damaged = {}
    for name in ("mnist_counts", "mnist_label", "mnist_truncated"):
        write_mnist(root / name)
        damaged[name] = root / name
    raw = root / "mnist_counts" / "MNIST" / "raw"
    labels = np.frombuffer((raw / "train-labels-idx1-ubyte").read_bytes()[8:], dtype=np.uint8)
    write_idx(raw / "train-labels-idx1-ubyte", labels[:-10])  # 60 images, 50 labels
    raw = root / "mnist_label" / "MNIST" / "raw"
    write_idx(raw / "train-labels-idx1-ubyte", np.r_[labels[:-1], 200])
    raw = root / "mnist_truncated" / "MNIST" / "raw"
    data = (raw / "train-images-idx3-ubyte").read_bytes()
    (raw / "train-images-idx3-ubyte").write_bytes(data[: len(data) // 2])
    write_cifar10(root / "cifar_nodata")
    batch = root / "cifar_nodata" / "cifar-10-batches-py" / "data_batch_2"
    with open(batch, "wb") as f:
        pickle.dump({"labels": [1, 2]}, f, protocol=2)
    for name, problem in (("ag_binary", b"\x89PNG\x00\xff\xfe"), ("ag_short", b'"1","title"\n')):
        write_ag_news(root / name)
        (root / name / "ag_news" / "train.csv").write_bytes(problem)
    write_imdb(root / "imdb_bad")
    review = next((root / "imdb_bad" / "aclImdb" / "train" / "pos").glob("*.txt"))
    review.write_bytes(b"A fine film \xff\xfe\x80 of sorts")
    return {"root": root, "finished": root / "finished", "lm": root / "lm", "reg": root / "reg"}


def write_bad_inputs(root: Path) -> None:
    """Inputs predict and explain must refuse, each with one line."""
    from PIL import Image

    Image.fromarray(np.zeros((8, 30), np.uint8)).save(root / "wide.png")
    Image.fromarray(np.zeros((8, 8), np.uint16) + 300).save(root / "deep.png")  # 16-bit
    (root / "empty.png").write_bytes(b"")
    (root / "empty.csv").write_text("\n")
    (root / "three.csv").write_text("1,2,3\n4,5,6\n")
    (root / "words.csv").write_text("1,2,3,4,5,6,7,8,9,ten\n")
    (root / "nothing_here").mkdir(exist_ok=True)


def fingerprint(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.md5(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def data_at(name: str, data: str) -> list[str]:
    model = "rnn" if data in ("ag_news", "imdb") else "cnn"
    return [f"model={model}", f"data={data}", f"data.data_dir=ROOT/{name}", "data.download=false",
            "trainer.fast_dev_run=true", *QUIET]


FINISHED_CKPT = "FINISHED/checkpoints/last.ckpt"
CASES = {  # id: (entry point, arguments, what the one line must say)
    # values of the wrong type or out of range, caught before any data is read
    "epochs-not-a-number": ("train", ["trainer.max_epochs=abc"],
                            r"trainer\.max_epochs='abc': must be an integer >= -1"),
    "seed-not-a-number": ("train", ["seed=abc"], r"seed='abc': must be an integer >= 0"),
    "negative-width": ("train", ["model=mlp", "model.hidden=-5"],
                       r"model\.hidden=-5: must be an integer >= 0"),
    "zero-batch": ("train", ["data.batch_size=0"], r"data\.batch_size=0: must be an integer >= 1"),
    "negative-lr": ("train", ["optimizer.lr=-1"], r"optimizer\.lr=-1: must be a number > 0"),
    "fraction-above-one": ("train", ["data.val_fraction=1.5"],
                           r"data\.val_fraction=1\.5: must be a number > 0 and < 1"),
    "dropout-of-one": ("train", ["model.dropout=1.0"], r"model\.dropout=1\.0: must be a number"),
    "unknown-choice-value": ("train", ["model=transformer", "data=mnist1d",
                                       "model.positional=rotary"],
                             r"model\.positional='rotary': must be 'learned' or 'sinusoidal'"),
    "not-a-bool": ("train", ["trainer.deterministic=abc"],
                   r"trainer\.deterministic='abc': must be"),
    "bad-width-list": ("train", ["model.channels=[0,3]"], r"model\.channels=\[0, 3\]"),
    # config composition
    "unknown-model": ("train", ["model=nosuchmodel"], r"Could not find 'model/nosuchmodel'.*cnn"),
    "misspelt-key": ("train", ["model.hiden=3"], r"Could not override 'model\.hiden'"),
    "override-syntax": ("train", ["model.hidden=["], r"no viable alternative"),
    "incompatible-pair": ("train", ["model=cnn", "data=diabetes"],
                          r"model=cnn cannot train on data=diabetes .*works with model: .*mlp"),
    "unknown-module-option": ("train", ["model=mlp", "data=digits", "+module.foo=1"],
                              r"module\.foo is not an option of classification models"),
    "unknown-target": ("train", ["+callbacks.x._target_=no.such.Callback"],
                       r"Error loading 'no\.such\.Callback'"),
    # the machine
    "no-gpu": ("train", ["trainer=gpu"], r"do not fit this machine .*trainer=cpu"),
    "sync-batchnorm-on-cpu": ("train", ["trainer.sync_batchnorm=true"],
                              r"sync_batchnorm=true needs GPUs"),
    "log-folder-unwritable": ("train", ["hydra.run.dir=/proc/dlbasics/run"],
                              r"could not create /proc/dlbasics.* DLBASICS_LOG_DIR"),
    # run folders and checkpoints
    "run-folder-taken": ("train", [*TINY, "hydra.run.dir=FINISHED"],
                         r"already holds a run: .*resume=.*existing_run_dir=version"),
    "resume-changes-the-model": ("train", ["resume=FINISHED", "model.hidden=128"],
                                 r"model\.hidden=128 cannot change"),
    "resume-not-a-run": ("train", ["resume=ROOT"], r"is not a run folder"),
    "ckpt-missing": ("train", ["ckpt_path=ROOT/none.ckpt"], r"does not exist"),
    "ckpt-is-a-folder": ("train", ["ckpt_path=FINISHED"],
                         r"is a folder, not a checkpoint file: continue that run with resume="),
    "ckpt-not-a-checkpoint": ("train", ["ckpt_path=ROOT/garbage.ckpt"],
                              r"is not a readable checkpoint"),
    "ckpt-of-another-model": ("train", ["model=cnn", "data=digits", f"ckpt_path={FINISHED_CKPT}"],
                              r"was trained with model=mlp .*not model=cnn"),
    "ckpt-of-another-width": ("train", ["model=mlp", "data=digits", "model.hidden=32",
                                        f"ckpt_path={FINISHED_CKPT}"],
                              r"model=mlp \(hidden=256\), not model=mlp \(hidden=32\)"),
    "ckpt-of-another-dataset": ("train", ["model=mlp", "data=mnist5k",
                                          f"ckpt_path={FINISHED_CKPT}"],
                                r"was trained with data=digits"),
    "ckpt-of-another-optimizer": ("train", ["model=mlp", "data=digits", "optimizer=momentum",
                                            f"ckpt_path={FINISHED_CKPT}"],
                                  r"was trained with optimizer=adamw"),
    "finetune-not-a-checkpoint": ("train", ["finetune.ckpt_path=ROOT/garbage.ckpt"],
                                  r"finetune\.ckpt_path=.* is not a readable checkpoint"),
    # data files present but damaged, or absent
    "mnist-missing": ("train", data_at("empty", "mnist"),
                      r"MNIST files are missing from .* Put the files there"),
    "mnist-counts-disagree": ("train", data_at("mnist_counts", "mnist"),
                              r"damaged \(the train split has 60 images but 50 labels\)"),
    "mnist-label-200": ("train", data_at("mnist_label", "mnist"),
                        r"damaged \(a train label is 200, outside 0\.\.9\)"),
    "mnist-truncated": ("train", data_at("mnist_truncated", "mnist"), r"MNIST in .* is damaged"),
    "cifar-without-data": ("train", data_at("cifar_nodata", "cifar10"),
                           r"CIFAR10 in .* is damaged \(KeyError"),
    "ag-news-binary": ("train", data_at("ag_binary", "ag_news"),
                       r"train\.csv is damaged \(not UTF-8 text"),
    "ag-news-short-rows": ("train", data_at("ag_short", "ag_news"),
                           r"train\.csv is damaged \(line 1 is not .* but 2 fields"),
    "imdb-unreadable-review": ("train", data_at("imdb_bad", "imdb"),
                               r"aclImdb/train/pos/.*\.txt is damaged \(not UTF-8"),
    # non-finite numbers
    "nan-loss": ("train", ["model=mlp", "data=diabetes", "optimizer=sgd", "optimizer.lr=1e9",
                           "scheduler=none", *QUIET],
                 r"the (training loss|gradient of .*) became .* Lower the learning rate"),
    "nan-validation": ("train", [*TINY, "optimizer=sgd", "optimizer.lr=1e9", "scheduler=none",
                                 "trainer.limit_train_batches=1", "trainer.max_epochs=3"],
                       r"validation gave \{'val/loss': nan\}"),
    # the other entry points
    "eval-without-checkpoint": ("eval", [], r"give the checkpoint to evaluate"),
    "generate-from-a-classifier": ("generate", [f"ckpt_path={FINISHED_CKPT}"],
                                   r"is a classification checkpoint \(model=mlp\), not a "
                                   r"language model one"),
    "generate-temperature-zero": ("generate", ["ckpt_path=LM/checkpoints/last.ckpt",
                                               "temperature=0"], r"temperature=0: must be"),
    "translate-a-classifier": ("translate", [f"ckpt_path={FINISHED_CKPT}", "text=one"],
                               r"is a classification checkpoint .*not a seq2seq one"),
    # predict: inputs the model cannot read
    "predict-without-checkpoint": ("predict", [], r"give the checkpoint to predict with"),
    "predict-a-language-model": ("predict", ["ckpt_path=LM/checkpoints/last.ckpt"],
                                 r"is a language model checkpoint: predict takes classifiers "
                                 r"and regressors; use python -m dlbasics\.generate"),
    "predict-missing-input": ("predict", [f"ckpt_path={FINISHED_CKPT}", "input=ROOT/none.png"],
                              r"input=.*none\.png does not exist"),
    "predict-image-other-proportions": ("predict", [f"ckpt_path={FINISHED_CKPT}",
                                                    "input=ROOT/wide.png"],
                                        r"wide\.png is 30x8 pixels but the model reads 8x8 "
                                        r"images: crop it"),
    "predict-image-16-bit": ("predict", [f"ckpt_path={FINISHED_CKPT}", "input=ROOT/deep.png"],
                             r"deep\.png is a I;16-mode image .* save it as an 8-bit"),
    "predict-empty-image-file": ("predict", [f"ckpt_path={FINISHED_CKPT}", "input=ROOT/empty.png"],
                                 r"empty\.png is not an image that can be read"),
    "predict-folder-without-images": ("predict", [f"ckpt_path={FINISHED_CKPT}",
                                                  "input=ROOT/nothing_here"],
                                      r"holds no PNG or JPEG file"),
    "predict-text-to-an-image-model": ("predict", [f"ckpt_path={FINISHED_CKPT}", "text=hello"],
                                       r"text= is for text models; this checkpoint reads image"),
    "predict-empty-csv": ("predict", ["ckpt_path=REG/checkpoints/last.ckpt", "input=ROOT/empty.csv"],
                          r"empty\.csv is empty: give a CSV file"),
    "predict-csv-too-few-columns": ("predict", ["ckpt_path=REG/checkpoints/last.ckpt",
                                                "input=ROOT/three.csv"],
                                    r"three\.csv has 3 columns but the model reads 10 features "
                                    r"\(age, sex, bmi"),
    "predict-csv-not-a-number": ("predict", ["ckpt_path=REG/checkpoints/last.ckpt",
                                             "input=ROOT/words.csv"],
                                 r"words\.csv has a header but no rows of numbers"),
    # explain
    "explain-a-regressor": ("explain", ["ckpt_path=REG/checkpoints/last.ckpt"],
                            r"is a regression checkpoint .*not a classification one"),
    "explain-unknown-method": ("explain", [f"ckpt_path={FINISHED_CKPT}", "method=lime"],
                               r"method=lime does not apply to image inputs: use one of "
                               r"integrated_gradients, saliency"),
    "explain-gradcam-without-convolutions": ("explain", [f"ckpt_path={FINISHED_CKPT}",
                                                         "method=gradcam"],
                                             r"gradcam needs a convolutional network, and MLP"),
    "explain-zero-steps": ("explain", [f"ckpt_path={FINISHED_CKPT}", "steps=0"],
                           r"steps=0: must be an integer >= 1"),
    # transfer learning and the image data options
    "freeze-without-pretrained-weights": ("train", [*TINY, "finetune.freeze=true"],
                                          r"finetune\.freeze=True applies when fine-tuning: give "
                                          r"the pre-trained weights with finetune\.ckpt_path"),
    "unfreeze-without-freeze": ("train", [*TINY, f"finetune.ckpt_path={FINISHED_CKPT}",
                                          "finetune.unfreeze_at_epoch=2"],
                                r"unfreeze_at_epoch thaws a frozen backbone: add "
                                r"finetune\.freeze=true"),
    "backbone-lr-scale-zero": ("train", [*TINY, "finetune.backbone_lr_scale=0"],
                               r"finetune\.backbone_lr_scale=0: must be a number > 0"),
    "freeze-not-a-bool": ("train", [*TINY, "finetune.freeze=maybe"],
                          r"finetune\.freeze='maybe': must be bool"),
    "train-size-below-the-classes": ("train", [*TINY, "data.train_size=5"],
                                     r"train_size=5 cannot hold one image of each of the 10 "
                                     r"classes"),
    "train-size-above-the-split": ("train", [*TINY, "data.train_size=5000"],
                                   r"train_size=5000 but the training split has 1293 images"),
    "margin-fills-the-image": ("train", [*TINY, "data.image_size=8", "data.image_margin=4"],
                               r"image_margin=4 leaves no room inside data\.image_size=8"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_mistake_ends_in_one_clear_line(case, world, tmp_path, monkeypatch):
    entry, args, expected = CASES[case]
    (world["root"] / "garbage.ckpt").write_bytes(b"this is not a checkpoint")
    (world["root"] / "empty").mkdir(exist_ok=True)
    args = [a.replace("FINISHED", str(world["finished"])).replace("LM", str(world["lm"]))
            .replace("ROOT", str(world["root"])).replace("REG", str(world["reg"])) for a in args]
    monkeypatch.setenv("DLBASICS_LOG_DIR", str(tmp_path / "logs"))
    finished = fingerprint(world["finished"])
    code, out, err = call(f"dlbasics.{entry}", *args,
                          *([] if entry == "train" else FAST[3:]))
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert code == 2, err[-3000:]
    assert len(lines) == 1 and re.search(expected, lines[0]), err[-3000:]
    assert "Traceback" not in err + out
    assert fingerprint(world["finished"]) == finished  # no finished file touched
    for run in (tmp_path / "logs").rglob("metrics.json"):  # a failed run says so, in valid JSON
        import json

        assert json.loads(run.read_text())["status"].startswith("failed")


def test_version_instead_of_refusing(world, tmp_path):
    taken = tmp_path / "run"
    shutil.copytree(world["finished"], taken)
    code, out, err = call("dlbasics.train", *TINY, f"hydra.run.dir={taken}",
                          "existing_run_dir=version")
    assert code == 0, err
    assert f"run folder: {taken}-v2" in out and (Path(f"{taken}-v2") / "metrics.json").is_file()

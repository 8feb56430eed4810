"""``predict`` end to end: PNG files the test writes (other sizes, modes, a folder), a text
file and ``text=``, a regression CSV (values in the target's units), and the checkpoint's
recorded input conversion; old checkpoints without it still load."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from dlbasics.build import load_run
from dlbasics.checkpoint import KEY
from dlbasics.data.images import MNIST5k
from dlbasics.examples import read_examples
from tests.clirun import FAST, call

QUIET = [*FAST, "logger=none"]


def train(root: Path, *args: str) -> Path:
    code, _, err = call("dlbasics.train", *args, *QUIET, f"hydra.run.dir={root}")
    assert code == 0, err[-2000:]
    return root / "checkpoints" / "last.ckpt"


@pytest.fixture(scope="module")
def digits_cnn(tmp_path_factory) -> Path:
    """A CNN on real MNIST digits (2 epochs of 29 steps: clearly better than chance)."""
    return train(tmp_path_factory.mktemp("predict_cnn"), "experiment=mnist5k_cnn",
                 "trainer.max_epochs=2", "trainer.limit_train_batches=40",
                 "trainer.limit_val_batches=2", "test=false")


def read_predictions(folder: Path) -> list[dict[str, str]]:
    with open(folder / "predictions.csv", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_predict_png_files_of_any_size_and_mode(digits_cnn, tmp_path):
    """Test-split digits saved as PNGs the way users have them (bigger, RGB, RGBA with a
    transparent background, a JPEG) are predicted as the test split itself is."""
    dm = MNIST5k(data_dir=str(tmp_path / "data"))
    _, _, test_x, test_y = dm.load()
    folder = tmp_path / "mine"
    folder.mkdir()
    for i in range(12):
        digit = test_x[i, 0].numpy()
        if i % 4 == 0:
            Image.fromarray(digit).save(folder / f"{i:02d}_gray.png")
        elif i % 4 == 1:
            Image.fromarray(digit).resize((112, 112), Image.BILINEAR).convert("RGB").save(
                folder / f"{i:02d}_rgb_big.png")
        elif i % 4 == 2:
            rgba = np.zeros((28, 28, 4), np.uint8)
            rgba[..., :3], rgba[..., 3] = 255, digit  # white ink, transparent paper
            Image.fromarray(rgba, "RGBA").save(folder / f"{i:02d}_rgba.png")
        else:
            Image.fromarray(digit).save(folder / f"{i:02d}_digit.jpg", quality=95)
    (folder / "notes.txt").write_text("not an image: skipped")
    code, out, err = call("dlbasics.predict", f"ckpt_path={digits_cnn}", f"input={folder}",
                          f"hydra.run.dir={tmp_path / 'out'}", *FAST[3:])
    assert code == 0, err[-2000:]
    rows = read_predictions(tmp_path / "out")
    assert [r["input"] for r in rows] == sorted(p.name for p in folder.glob("*.[pj]*g"))
    run = load_run(str(digits_cnn))
    test = read_examples(run, n=None)
    with torch.no_grad():
        expected = run.module.net(torch.stack(test.inputs[:12])).softmax(-1)
    for row, probs in zip(rows, expected):
        assert row["predicted"] == str(int(probs.argmax()))
        if "jpg" not in row["input"] and "big" not in row["input"]:  # the very same pixels
            assert float(row["probability"]) == pytest.approx(float(probs.max()), abs=1e-3)
        assert sum(float(row[f"p({k})"]) for k in range(10)) == pytest.approx(1.0, abs=1e-3)
    correct = sum(r["predicted"] == str(int(y)) for r, y in zip(rows, test_y[:12]))
    assert correct >= 10, rows
    assert "predicted" in out and "12 predictions" in out


def test_the_checkpoint_records_how_images_were_converted(digits_cnn):
    inputs = torch.load(digits_cnn, weights_only=True)[KEY]["data_state"]["inputs"]
    assert inputs == {"kind": "image", "shape": [1, 28, 28], "mean": [0.1307], "std": [0.3081],
                      "margin": 0}


def test_predict_a_text_file_and_a_sentence(tmp_path):
    ckpt = train(tmp_path / "run", "experiment=rt_lstm", "trainer.max_epochs=1",
                 "trainer.limit_train_batches=40", "trainer.limit_val_batches=2", "test=false")
    lines = tmp_path / "reviews.txt"
    lines.write_text("a masterpiece: moving, funny and wise\n\n"
                     "dull, lifeless and far too long\nzzzqx blorf\n", encoding="utf-8")
    code, out, err = call("dlbasics.predict", f"ckpt_path={ckpt}", f"input={lines}",
                          f"hydra.run.dir={tmp_path / 'out'}", *FAST[3:])
    assert code == 0, err[-2000:]
    rows = read_predictions(tmp_path / "out")
    assert [r["input"] for r in rows] == ["a masterpiece: moving, funny and wise",
                                          "dull, lifeless and far too long", "zzzqx blorf"]
    assert {r["predicted"] for r in rows} <= {"rotten", "fresh"}
    assert "words unknown to the model" in out and "zzzqx" in out
    code, out, err = call("dlbasics.predict", f"ckpt_path={ckpt}", 'text="dull and lifeless"',
                          f"hydra.run.dir={tmp_path / 'one'}", *FAST[3:])
    assert code == 0, err[-2000:]
    (row,) = read_predictions(tmp_path / "one")
    assert row["input"] == "dull and lifeless" and row["predicted"] in ("rotten", "fresh")


def test_predict_a_regression_csv(tmp_path):
    from sklearn.datasets import load_diabetes

    from dlbasics.data.tabular import FEATURES

    ckpt = train(tmp_path / "run", "model=mlp", "data=diabetes", "trainer.max_epochs=30")
    x, y = load_diabetes(return_X_y=True, scaled=False)
    table = tmp_path / "patients.csv"
    order = list(reversed(FEATURES))  # a header names the columns: any order
    with open(table, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(order)
        writer.writerows([[row[FEATURES.index(name)] for name in order] for row in x[:40]])
    code, out, err = call("dlbasics.predict", f"ckpt_path={ckpt}", f"input={table}",
                          f"hydra.run.dir={tmp_path / 'out'}", *FAST[3:])
    assert code == 0, err[-2000:]
    predicted = np.array([float(r["predicted"]) for r in read_predictions(tmp_path / "out")])
    assert len(predicted) == 40
    # in the target's units (disease progression, 25..346), and informative
    assert 25 < predicted.mean() < 350 and np.corrcoef(predicted, y[:40])[0, 1] > 0.5
    without_header = tmp_path / "plain.csv"
    np.savetxt(without_header, x[:40], delimiter=",")
    code, _, err = call("dlbasics.predict", f"ckpt_path={ckpt}", f"input={without_header}",
                        f"hydra.run.dir={tmp_path / 'plain'}", *FAST[3:])
    assert code == 0, err[-2000:]
    again = np.array([float(r["predicted"]) for r in read_predictions(tmp_path / "plain")])
    np.testing.assert_allclose(again, predicted, atol=1e-3)


def test_an_old_checkpoint_without_inputs_still_predicts(digits_cnn, tmp_path):
    ckpt = torch.load(digits_cnn, weights_only=True)
    del ckpt[KEY]["data_state"]["inputs"]
    old = tmp_path / "old.ckpt"
    torch.save(ckpt, old)
    image = tmp_path / "x.png"
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(image)
    code, _, err = call("dlbasics.predict", f"ckpt_path={old}", f"input={image}",
                        f"hydra.run.dir={tmp_path / 'out'}", *FAST[3:])
    assert code == 0, err[-2000:]

"""Attributions and their sanity checks: exact on models whose answer is known, meaningful on a
CNN trained on real MNIST digits and an LSTM trained on Rotten Tomatoes, and ``explain`` end to
end (the PNG grid, the text page with its TSV/JSON, signals, the one-line mistakes)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from dlbasics.attribution import (
    Inputs,
    attribute,
    deletion_check,
    gradcam_layer,
    randomisation_check,
    randomised_copy,
    rank_correlations,
)
from dlbasics.build import load_run
from dlbasics.examples import read_examples
from dlbasics.explain import batch_inputs
from tests.clirun import FAST, call

QUIET = [*FAST, "logger=none"]
RANDOMISATION_THRESHOLD = 0.3  # |Spearman rho| of signed IG scores, trained vs re-initialised


class Linear(nn.Module):
    """logits = W x: integrated gradients from a zero baseline are exactly W[c] * x."""

    def __init__(self, weight: torch.Tensor) -> None:
        super().__init__()
        self.fc = nn.Linear(weight.shape[1], weight.shape[0], bias=False)
        self.fc.weight.data = weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.flatten(1))


def test_integrated_gradients_of_a_linear_model_are_weight_times_input():
    torch.manual_seed(0)
    w, x = torch.randn(3, 12), torch.randn(4, 1, 12)
    target = torch.tensor([0, 1, 2, 1])
    scores = attribute(Linear(w), Inputs("signal", x, torch.zeros_like(x)), target,
                       "integrated_gradients")
    torch.testing.assert_close(scores, w[target] * x[:, 0], atol=1e-5, rtol=1e-4)
    saliency = attribute(Linear(w), Inputs("signal", x, torch.zeros_like(x)), target, "saliency")
    torch.testing.assert_close(saliency, w[target].abs())


def test_deletion_of_the_evidence_falls_faster_than_random():
    """Class 1 is decided by the first 3 of 12 steps: removing them first drops its probability
    at once; random orders drop it on average much later."""
    w = torch.zeros(2, 12)
    w[1, :3] = 4.0
    x = torch.ones(8, 1, 12)
    inputs = Inputs("signal", x, torch.zeros_like(x))
    target = torch.ones(8, dtype=torch.long)
    net = Linear(w)
    scores = attribute(net, inputs, target, "integrated_gradients")
    result = deletion_check(net, inputs, target, scores, random_orders=20)
    assert result.method_curve[0] == pytest.approx(torch.sigmoid(torch.tensor(12.0)).item())
    # 25% removed: all the evidence gone, both logits 0
    assert result.method_curve[5:] == pytest.approx([0.5] * 16)
    assert result.method_auc < 0.62 and result.random_auc > 0.8


def test_randomisation_check_tells_a_model_from_its_input():
    """Attributions that depend on the weights decorrelate from a re-initialised copy's; an
    attribution that only reads the input (here: the input itself) does not."""
    torch.manual_seed(1)  # not the copy's seed (0), which would rebuild these very weights
    net = nn.Sequential(nn.Flatten(), nn.Linear(20, 16), nn.Tanh(), nn.Linear(16, 3))
    x = torch.randn(32, 1, 20)
    inputs = Inputs("signal", x, torch.zeros_like(x))
    target = net(x).argmax(-1)
    scores = attribute(net, inputs, target, "saliency")
    honest = randomisation_check(net, inputs, target, scores, "saliency")
    copycat = randomisation_check(net, inputs, target, x[:, 0].abs(), "saliency",
                                  attribute_fn=lambda *a: a[1].x[:, 0].abs())
    assert abs(honest.spearman) < 0.3 and copycat.spearman == pytest.approx(1.0)
    fresh = randomised_copy(net)
    assert not torch.equal(fresh[1].weight, net[1].weight)


def test_rank_correlations_skip_constant_scores_and_pads():
    a = torch.tensor([[1.0, 2.0, 3.0, 9.0], [1.0, 1.0, 1.0, 1.0]])
    b = torch.tensor([[3.0, 2.0, 1.0, -9.0], [1.0, 2.0, 3.0, 4.0]])
    signed, absolute = rank_correlations(a, b, lengths=[3, 4])
    assert signed == [pytest.approx(-1.0)] and absolute == [pytest.approx(-1.0)]


def test_gradcam_layer_is_the_last_conv_block():
    from dlbasics.models.cnn import CNN
    from dlbasics.models.mlp import MLP
    from dlbasics.spec import DataSpec

    spec = DataSpec("classification", "image", (1, 28, 28), num_classes=10)
    cnn = CNN(spec, channels=(8, 16), batch_norm=True)
    assert gradcam_layer(cnn) is cnn.features[-3]  # conv -> bn -> [relu] -> pool -> flatten
    assert isinstance(gradcam_layer(cnn), nn.ReLU)
    assert gradcam_layer(MLP(spec)) is None
    from dlbasics.models.resnet import ResNet

    resnet = ResNet(spec, widths=(4, 8), blocks_per_stage=1)
    assert gradcam_layer(resnet) is resnet.stages[-1]
    cam = attribute(resnet.eval(), Inputs("image", torch.randn(2, 1, 28, 28),
                                          torch.zeros(2, 1, 28, 28)), torch.tensor([1, 2]), "gradcam")
    assert cam.shape == (2, 28, 28) and (cam >= 0).all()


def trained_checkpoint(root: Path, experiment: str, epochs: int, batches: int) -> Path:
    """``experiment`` trained for ``epochs`` epochs of ``batches`` steps, untested: its last.ckpt."""
    code, _, err = call("dlbasics.train", f"experiment={experiment}",
                        f"trainer.max_epochs={epochs}", f"trainer.limit_train_batches={batches}",
                        "trainer.limit_val_batches=2", "test=false", *QUIET,
                        f"hydra.run.dir={root}")
    assert code == 0, err[-2000:]
    return root / "checkpoints" / "last.ckpt"


@pytest.fixture(scope="module")
def mnist_cnn(tmp_path_factory) -> Path:
    """The make-train CNN after 2 epochs (2 x 29 steps of 128) on real MNIST digits."""
    return trained_checkpoint(tmp_path_factory.mktemp("explain_cnn"), "mnist5k_cnn", 2, 29)


@pytest.fixture(scope="module")
def rt_lstm(tmp_path_factory) -> Path:
    """The rt_lstm recipe after 120 steps on the Rotten Tomatoes snippets."""
    return trained_checkpoint(tmp_path_factory.mktemp("explain_lstm"), "rt_lstm", 1, 120)


def sanity(ckpt: Path, method: str, n: int = 32) -> tuple[object, object]:
    run = load_run(str(ckpt), tasks=("classification",))
    examples = read_examples(run, n=n, seed=0)
    inputs = batch_inputs(run, examples)
    net = run.module.net
    target = net(inputs.x).argmax(-1)
    scores = attribute(net, inputs, target, method)
    return (deletion_check(net, inputs, target, scores),
            randomisation_check(net, inputs, target, scores, method))


def test_cnn_attributions_pass_both_sanity_checks(mnist_cnn):
    deletion, randomised = sanity(mnist_cnn, "integrated_gradients")
    assert deletion.method_auc < 0.6 * deletion.random_auc, deletion
    assert sum(m < r for m, r in zip(deletion.method_auc_per_example,
                                     deletion.random_auc_per_example)) >= 28  # of 32
    assert abs(randomised.spearman) < RANDOMISATION_THRESHOLD, randomised


def test_text_attributions_pass_both_sanity_checks(rt_lstm):
    deletion, randomised = sanity(rt_lstm, "integrated_gradients", n=64)
    assert deletion.method_auc < deletion.random_auc - 0.05, deletion
    assert abs(randomised.spearman) < RANDOMISATION_THRESHOLD, randomised


@pytest.mark.parametrize("method", ["integrated_gradients", "saliency", "occlusion", "gradcam"])
def test_explain_images_writes_the_grid_and_the_checks(mnist_cnn, tmp_path, method):
    code, out, err = call("dlbasics.explain", f"ckpt_path={mnist_cnn}", f"method={method}", "n=8",
                          f"hydra.run.dir={tmp_path}", *FAST[3:])
    assert code == 0, err[-2000:]
    assert (tmp_path / "attributions.png").stat().st_size > 10_000
    assert (tmp_path / "deletion.png").is_file()
    report = json.loads((tmp_path / "sanity.json").read_text())
    assert report["examples"] == 8 and 0 <= report["deletion"]["auc"] <= 1
    assert "deletion: area under" in out and "model randomisation" in out


def test_explain_text_writes_the_page_and_the_scores(rt_lstm, tmp_path):
    code, out, err = call("dlbasics.explain", f"ckpt_path={rt_lstm}", "n=6", "sanity=false",
                          f"hydra.run.dir={tmp_path}", *FAST[3:])
    assert code == 0, err[-2000:]
    rows = json.loads((tmp_path / "attributions.json").read_text())
    assert len(rows) == 6 and all(len(r["tokens"]) == len(r["scores"]) for r in rows)
    page = (tmp_path / "attributions.html").read_text()
    assert page.count("class='row'") == 6 and "rgba(" in page
    tsv = (tmp_path / "attributions.tsv").read_text().splitlines()
    assert tsv[0] == "example\tposition\ttoken\tscore"
    assert len(tsv) == 1 + sum(len(r["tokens"]) for r in rows)


def test_explain_a_users_sentence(rt_lstm, tmp_path):
    code, out, err = call("dlbasics.explain", f"ckpt_path={rt_lstm}",
                          'text="a thoroughly enjoyable, beautifully acted film"',
                          f"hydra.run.dir={tmp_path}", *FAST[3:])
    assert code == 0, err[-2000:]
    (row,) = json.loads((tmp_path / "attributions.json").read_text())
    assert row["tokens"] == ["a", "thoroughly", "enjoyable", ",", "beautifully", "acted", "film"]


def test_transformer_attention_rollout(tmp_path):
    code, _, err = call("dlbasics.train", "experiment=rt_transformer", "model.dim=32",
                        "model.depth=2", "trainer.max_epochs=1", "trainer.limit_train_batches=20",
                        *QUIET, f"hydra.run.dir={tmp_path / 'run'}")
    assert code == 0, err[-2000:]
    run = load_run(str(tmp_path / "run" / "checkpoints" / "last.ckpt"))
    inputs = batch_inputs(run, read_examples(run, n=8))
    scores = attribute(run.module.net, inputs, torch.zeros(8, dtype=torch.long),
                       "attention_rollout")
    real = inputs.x != inputs.pad_index
    assert (scores[~real] == 0).all() and (scores[real] > 0).all()
    # mean pooling: each layer's rows sum to one, so the scores of a text sum to one
    torch.testing.assert_close(scores.sum(1), torch.ones(8), atol=1e-5, rtol=0)


def test_explain_signals(tmp_path):
    code, _, err = call("dlbasics.train", "experiment=mnist1d_cnn", "trainer.max_epochs=1",
                        *QUIET, f"hydra.run.dir={tmp_path / 'run'}")
    assert code == 0, err[-2000:]
    code, out, err = call("dlbasics.explain", f"ckpt_path={tmp_path / 'run/checkpoints/last.ckpt'}",
                          "method=gradcam", "n=8", f"hydra.run.dir={tmp_path / 'x'}", *FAST[3:])
    assert code == 0, err[-2000:]
    assert (tmp_path / "x" / "attributions.png").stat().st_size > 10_000
    assert json.loads((tmp_path / "x" / "sanity.json").read_text())["examples"] == 8

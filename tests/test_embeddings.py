"""Pretrained word vectors: a small GloVe/word2vec text file written here, rows landing on the right
words, the hit rate, frozen vs fine-tuned, and the clear errors."""

from __future__ import annotations

import gzip
import logging
from functools import partial
from pathlib import Path

import pytest
import torch

from dlbasics.data.vocab import Vocab
from dlbasics.errors import UserError
from dlbasics.lit import LitModule
from dlbasics.models.inputs import read_vectors, sequence_input
from dlbasics.models.rnn import RNNClassifier
from dlbasics.models.transformer import TransformerClassifier
from tests import seqdata

# 4-d vectors for some words of tests/seqdata.SENTENCES, plus words that are not in the vocabulary
VECTORS = {
    "the": [0.418, 0.24968, -0.41242, 0.1217],
    "fox": [0.44206, -0.26162, 0.13414, -0.31048],
    "dog": [0.11008, -0.38781, -0.57615, -0.27714],
    "question": [-0.2, 0.61, 0.05, -0.33],
    "gold": [0.91, -0.12, 0.44, 0.02],
    "rain": [0.3, 0.3, -0.1, 0.7],
    "zebra": [9.0, 9.0, 9.0, 9.0],
    "quantum": [-9.0, -9.0, -9.0, -9.0],
}
HITS = 6  # the, fox, dog, question, gold, rain


def write_vectors(path: Path, header: bool = False, dim: int = 4) -> Path:
    lines = [f"{w} " + " ".join(f"{x:.5f}" for x in (v + v)[:dim]) for w, v in VECTORS.items()]
    lines.insert(3, "the " + " ".join(["7.0"] * dim))  # a duplicate: the first occurrence wins
    if header:
        lines.insert(0, f"{len(lines)} {dim}")
    text = "\n".join(lines) + "\n"
    if path.suffix == ".gz":
        with gzip.open(path, "wt", encoding="utf-8") as f:
            f.write(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(("name", "header"), [("glove.txt", False), ("w2v.txt", True),
                                              ("glove.txt.gz", False)])
def test_rows_land_on_the_right_words(tmp_path, caplog, name, header):
    v = seqdata.vocab()
    spec = seqdata.token_spec(v)
    path = write_vectors(tmp_path / name, header=header)
    torch.manual_seed(0)
    with caplog.at_level(logging.INFO, logger="dlbasics"):
        layer = sequence_input(spec, 4, pretrained=str(path))
    weight = layer.embedding.weight.detach()
    for word, vector in VECTORS.items():
        if word in v.stoi:
            torch.testing.assert_close(weight[v.stoi[word]], torch.tensor(vector), rtol=0,
                                       atol=1e-5)
    assert weight[v.pad_index].abs().sum() == 0
    n_words = len(v) - 2  # <pad> and <unk> do not count
    assert layer.hit_rate == pytest.approx(HITS / n_words)
    assert f"{HITS} of {n_words} vocabulary words found" in caplog.text
    # a word missing from the file keeps a random row on the scale of the file's vectors
    missing = torch.stack([weight[v.stoi[w]] for w in ("quick", "stitch", "time", "saves")])
    assert 0 < missing.abs().mean() < 1.5 and not (weight[v.stoi["quick"]] == 0).all()


def test_cased_vocabulary_falls_back_to_lowercase_vectors(tmp_path):
    """GloVe is lower-cased: a vocabulary that keeps case still finds 'Dog' under 'dog'."""
    v = Vocab.build([["Dog", "the", "Zebra", "Unicorn"]])
    layer = sequence_input(seqdata.token_spec(v), 4, pretrained=str(write_vectors(tmp_path / "g")))
    weight = layer.embedding.weight.detach()
    torch.testing.assert_close(weight[v.stoi["Dog"]], torch.tensor(VECTORS["dog"]), rtol=0,
                               atol=1e-5)
    assert layer.hit_rate == pytest.approx(3 / 4)


def test_read_vectors_parses_only_wanted_words(tmp_path):
    path = write_vectors(tmp_path / "v.txt")
    found = read_vectors(path, {"dog", "zebra", "cat"}, 4)
    assert set(found) == {"dog", "zebra"}
    torch.testing.assert_close(found["zebra"], torch.full((4,), 9.0))


def _train_steps(net: torch.nn.Module, batch: torch.Tensor, steps: int = 3) -> None:
    spec = seqdata.token_spec()
    task = LitModule(net, spec, optimizer=partial(torch.optim.AdamW, lr=0.1, weight_decay=0.5))
    opt = task.configure_optimizers()
    y = torch.tensor([0, 1, 2, 0, 1])
    for _ in range(steps):
        loss = torch.nn.functional.cross_entropy(task(batch), y)
        opt.zero_grad()
        loss.backward()
        opt.step()


@pytest.mark.parametrize("model_cls", [RNNClassifier, TransformerClassifier])
@pytest.mark.parametrize("freeze", [True, False])
def test_frozen_stays_frozen(tmp_path, model_cls, freeze):
    path = write_vectors(tmp_path / "glove.txt")
    spec = seqdata.token_spec()
    size = {"embed_dim": 4, "hidden": 8} if model_cls is RNNClassifier else {"embed_dim": 4,
                                                                             "dim": 8}
    net = model_cls(spec, pretrained_embeddings=str(path), freeze_embeddings=freeze, **size)
    emb = net.inputs.embedding.weight
    before, head_before = emb.detach().clone(), net.head.weight.detach().clone()
    _train_steps(net, seqdata.pad_batch(seqdata.encoded()))
    assert not net.head.weight.detach().equal(head_before)  # the rest trains
    assert emb.requires_grad is not freeze
    if freeze:
        assert emb.grad is None and emb.detach().equal(before)
    else:
        changed = (emb.detach() - before).abs().sum(1) > 0
        assert changed[seqdata.encoded()[0]].all()  # rows of words in the batch moved
        assert not changed[0]  # the pad row never trains (padding_idx)


def test_errors_say_what_to_do(tmp_path):
    spec = seqdata.token_spec()
    with pytest.raises(UserError, match="no such file"):
        sequence_input(spec, 4, pretrained=str(tmp_path / "missing.txt"))
    path = write_vectors(tmp_path / "glove.txt")
    with pytest.raises(UserError, match=r"dimension 4.*model.embed_dim=4"):
        sequence_input(spec, 8, pretrained=str(path))
    w2v = write_vectors(tmp_path / "w2v.txt", header=True, dim=3)
    with pytest.raises(UserError, match=r"dimension 3.*model.embed_dim=3"):
        RNNClassifier(spec, embed_dim=8, pretrained_embeddings=str(w2v))
    truncated = tmp_path / "cut.txt"
    truncated.write_text("the 0.1 0.2 0.3 0.4\nfox 0.1 0.2\n")
    with pytest.raises(UserError, match="line 2"):
        sequence_input(spec, 4, pretrained=str(truncated))
    with pytest.raises(UserError, match="freeze_embeddings=true needs"):
        sequence_input(spec, 4, freeze=True)
    with pytest.raises(UserError, match="token inputs"):
        sequence_input(seqdata.signal_spec(), 4, pretrained=str(path))


def test_masks():
    spec = seqdata.token_spec()
    batch = seqdata.pad_batch(seqdata.encoded())
    seq, mask = sequence_input(spec, 4)(batch)
    assert seq.shape == (*batch.shape, 4) and mask.equal(batch == spec.pad_index)
    x, _ = seqdata.templates()
    seq, mask = sequence_input(seqdata.signal_spec(), 4)(x.float())
    assert seq.shape == (10, 12, 4) and mask is None


def test_signal_projection_window():
    """kernel=1 sees one step; kernel=5 sees steps t-2..t+2 (a conv stem), length kept."""
    x, _ = seqdata.templates()
    spec = seqdata.signal_spec()
    for kernel in (1, 5):
        torch.manual_seed(0)
        layer = sequence_input(spec, 4, signal_kernel=kernel).double()
        seq, _ = layer(x)
        bumped = x.clone()
        bumped[:, :, 6] += 1.0
        changed = (layer(bumped)[0] - seq).abs().sum(dim=(0, 2)) > 1e-12
        assert seq.shape == (10, 12, 4)
        assert changed.nonzero().flatten().tolist() == list(range(6 - kernel // 2,
                                                                  7 + kernel // 2))
    with pytest.raises(ValueError, match="odd"):
        sequence_input(spec, 4, signal_kernel=4)


def test_word_dropout_reads_training_tokens_as_unk():
    """In training, about p of the real tokens embed as <unk>, pads never, and the mask is the
    data's; in eval the layer reads every token; signals refuse the option."""
    spec = seqdata.token_spec()
    batch = seqdata.pad_batch(seqdata.encoded()).repeat(50, 1)
    layer = sequence_input(spec, 4, word_dropout=0.25)
    unk_row = layer.embedding.weight[spec.vocab.index("<unk>")]
    real = batch != spec.pad_index
    torch.manual_seed(0)
    seq, mask = layer(batch)
    as_unk = (seq == unk_row).all(-1) & (batch != spec.vocab.index("<unk>"))
    assert mask.equal(~real)
    assert not as_unk[~real].any()
    assert as_unk[real].float().mean().item() == pytest.approx(0.25, abs=0.03)
    layer.eval()
    assert layer(batch)[0].equal(layer.embedding(batch))
    with pytest.raises(UserError, match="token inputs"):
        sequence_input(seqdata.signal_spec(), 4, word_dropout=0.1)

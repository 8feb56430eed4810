"""TransformerClassifier: attention masks, padding invariance, positional encodings, pooling, the
max_len guard, scratch attention, and refused data."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from dlbasics.errors import IncompatibleDataError, UserError
from dlbasics.models.blocks import sinusoidal_positions
from dlbasics.models.transformer import TransformerClassifier
from dlbasics.spec import DataSpec
from tests import seqdata

TOL = 1e-10  # float64


def _model(spec: DataSpec | None = None, impl: str = "torch", **kw) -> TransformerClassifier:
    torch.manual_seed(0)
    kw = {"dim": 16, "depth": 2, "heads": 2, "ff_mult": 2, "dropout": 0.2, "max_len": 40, **kw}
    return TransformerClassifier(spec or seqdata.token_spec(), impl=impl, **kw).double().eval()


@pytest.mark.parametrize("positional", ["sinusoidal", "learned"])
@pytest.mark.parametrize("pool", ["cls", "mean", "max"])
def test_padding_never_changes_a_prediction(pool, positional):
    model = _model(pool=pool, positional=positional)
    seqs = seqdata.encoded()
    batch = seqdata.pad_batch(seqs, extra=3)
    with torch.no_grad():
        together = model(batch)
        alone = torch.cat([model(s.unsqueeze(0)) for s in seqs])
    torch.testing.assert_close(together, alone, rtol=0, atol=TOL)


@pytest.mark.parametrize("pool", ["cls", "mean"])
def test_what_sits_at_padded_positions_changes_nothing(pool):
    """Give the pad positions other vectors (the pad row of the embedding): the key padding mask
    hides them. Without the mask (control) the same change does move the outputs."""
    model = _model(pool=pool)
    seqs = seqdata.encoded()
    batch = seqdata.pad_batch(seqs, extra=2)
    pad = batch == 0
    with torch.no_grad():
        before, _ = model.encode(batch)
        model.inputs.embedding.weight[0] = torch.linspace(-3, 3, 16, dtype=torch.float64)
        after, mask = model.encode(batch)
        real = ~mask
        torch.testing.assert_close(after[real], before[real], rtol=0, atol=TOL)
        # control: the same blocks without the mask let the pads leak into real positions
        h = model.in_proj(model.inputs.embedding(batch)) + model.positions.table[: batch.shape[1]]
        if pool == "cls":
            h = torch.cat([model.cls.expand(len(h), -1, -1), h], dim=1)
        unmasked = h
        for block in model.blocks:
            unmasked = block(unmasked)[0]
        assert (model.norm(unmasked)[real] - after[real]).abs().max() > 1e-3
    assert mask.shape[1] == batch.shape[1] + (pool == "cls")
    assert mask[:, int(pool == "cls"):].equal(pad)


def test_empty_text_gives_finite_outputs():
    model = _model(pool="mean")
    batch = seqdata.pad_batch([seqdata.encoded()[0], torch.tensor([], dtype=torch.long)])
    with torch.no_grad():
        assert torch.isfinite(model(batch)).all()


def test_sinusoidal_table():
    pe = sinusoidal_positions(50, 8).double()
    assert pe.shape == (50, 8)
    torch.testing.assert_close(pe[0], torch.tensor([0.0, 1.0] * 4, dtype=torch.float64))
    for p in (1, 7, 49):
        for i in range(4):
            angle = p / 10000 ** (2 * i / 8)
            assert pe[p, 2 * i].item() == pytest.approx(math.sin(angle), abs=1e-6)
            assert pe[p, 2 * i + 1].item() == pytest.approx(math.cos(angle), abs=1e-6)
    assert sinusoidal_positions(10, 5).shape == (10, 5)  # odd widths work


def test_learned_vs_sinusoidal_positions():
    sin = _model(positional="sinusoidal")
    learned = _model(positional="learned")
    # the sinusoidal table is fixed: a buffer, not saved, not trained; the learned one is a
    # parameter of shape (max_len, dim) in the state dict that receives gradients
    assert "positions.table" not in dict(sin.named_parameters())
    assert "positions.table" not in sin.state_dict()
    assert learned.positions.table.requires_grad
    assert learned.state_dict()["positions.table"].shape == (40, 16)
    batch = seqdata.pad_batch(seqdata.encoded())
    learned.train()(batch).sum().backward()
    grad = learned.positions.table.grad
    assert grad is not None and grad[: batch.shape[1]].abs().sum() > 0
    assert learned.positions.table.grad[batch.shape[1]:].abs().sum() == 0  # positions never seen


@pytest.mark.parametrize("positional", ["sinusoidal", "learned"])
def test_positions_make_order_matter(positional):
    """With mean pooling, self-attention alone is permutation invariant: only the positional
    encoding tells 'dog bites man' from 'man bites dog'."""
    v = seqdata.vocab()
    model = _model(pool="mean", positional=positional, dropout=0.0)
    if positional == "learned":
        with torch.no_grad():
            model.positions.table.normal_()
    seq = torch.tensor([v.encode(["the", "lazy", "dog", "is", "not", "gold"])])
    flipped = seq.flip(1)
    with torch.no_grad():
        assert (model(seq) - model(flipped)).abs().max() > 1e-4
        model.positions.table.zero_()  # no positional information left
        torch.testing.assert_close(model(seq), model(flipped), rtol=0, atol=TOL)


def test_max_len_guard():
    unbounded = dataclasses.replace(seqdata.token_spec(), input_shape=(0,))
    model = _model(unbounded, max_len=8)
    long = seqdata.pad_batch(seqdata.encoded())  # 17 tokens
    with pytest.raises(UserError, match=r"max_len=8"):
        model(long)
    spec = DataSpec(task="classification", input_kind="signal", input_shape=(1, 40),
                    num_classes=10)
    with pytest.raises(UserError, match=r"model.max_len>=40"):
        TransformerClassifier(spec, max_len=32)
    # token data that declares its truncation length is checked before training too
    with pytest.raises(UserError, match=r"data keeps up to 32 steps.*model.max_len>=32"):
        TransformerClassifier(seqdata.token_spec(), max_len=16)
    assert TransformerClassifier(unbounded, max_len=16).max_len == 16


def test_signals_and_shapes():
    x, y = seqdata.templates()
    model = _model(seqdata.signal_spec(), pool="cls")
    with torch.no_grad():
        h, mask = model.encode(x)
        assert mask is None and h.shape == (10, 13, 16)  # CLS + 12 steps
        assert model.forward_features(x).shape == (10, 16) and model(x).shape == (10, 10)


def test_embed_dim_projection():
    model = _model(embed_dim=5)
    assert model.inputs.embedding.weight.shape[1] == 5 and model.in_proj.in_features == 5
    assert model(seqdata.pad_batch(seqdata.encoded())).shape == (5, 3)


def test_a_few_steps_fit_the_templates():
    x, y = seqdata.templates()
    torch.manual_seed(0)
    model = TransformerClassifier(seqdata.signal_spec(), dim=16, depth=1, heads=2,
                                  dropout=0.0).double()
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)  # 10 of 10 seeds fit with these
    for _ in range(120):
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        assert model.eval()(x).argmax(1).tolist() == y.tolist()


@pytest.mark.parametrize("pool", ["cls", "mean"])
def test_scratch_attention_matches_torch(pool):
    ours = _model(impl="scratch", pool=pool)
    theirs = _model(impl="torch", pool=pool)
    theirs.load_state_dict(ours.state_dict())
    batch = seqdata.pad_batch(seqdata.encoded(), extra=2)
    with torch.no_grad():
        torch.testing.assert_close(ours(batch), theirs(batch), rtol=0, atol=TOL)


def test_images_are_refused():
    spec = DataSpec(task="classification", input_kind="image", input_shape=(3, 32, 32),
                    num_classes=10)
    with pytest.raises(IncompatibleDataError, match="TransformerClassifier takes"):
        TransformerClassifier(spec)


def test_bad_options():
    with pytest.raises(ValueError, match="model.positional"):
        _model(positional="rotary")
    with pytest.raises(ValueError, match="model.pool"):
        _model(pool="sum")
    with pytest.raises(ValueError, match="divisible"):
        _model(dim=10, heads=4)

"""RNNClassifier: padding never changes a prediction (every cell, uni/bidirectional, every pool),
bidirectional shapes and 'last' semantics, signals, scratch layers, and refused data."""

from __future__ import annotations

import itertools

import pytest
import torch

from dlbasics.errors import IncompatibleDataError
from dlbasics.models.rnn import RNNClassifier
from dlbasics.spec import DataSpec
from tests import seqdata

TOL = 1e-10  # float64: padded and unpadded runs do the same arithmetic up to summation order
IMPLS = ["torch", "scratch"]


def _model(spec: DataSpec, impl: str = "torch", **kw) -> RNNClassifier:
    torch.manual_seed(0)
    kw = {"embed_dim": 8, "hidden": 6, "num_layers": 2, "dropout": 0.3, **kw}
    return RNNClassifier(spec, impl=impl, **kw).double().eval()


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize(("cell", "bidirectional", "pool"),
                         list(itertools.product(["rnn", "lstm", "gru"], [False, True],
                                                ["last", "mean", "max"])))
def test_padding_never_changes_a_prediction(cell, bidirectional, pool, impl):
    spec = seqdata.token_spec()
    model = _model(spec, impl, cell=cell, bidirectional=bidirectional, pool=pool)
    seqs = seqdata.encoded()
    batch = seqdata.pad_batch(seqs, spec.pad_index, extra=3)  # every row has trailing pads
    with torch.no_grad():
        together = model(batch)
        alone = torch.cat([model(s.unsqueeze(0)) for s in seqs])
    assert together.shape == (len(seqs), spec.num_classes)
    torch.testing.assert_close(together, alone, rtol=0, atol=TOL)


def test_padding_check_can_fail_without_packing():
    """Control: the same model reading the pads as tokens (no packing) does change predictions,
    so the invariance above is the packing's doing."""
    spec = seqdata.token_spec()
    model = _model(spec, cell="gru", pool="last")
    seqs = seqdata.encoded()
    batch = seqdata.pad_batch(seqs, spec.pad_index, extra=3)
    with torch.no_grad():
        out, _ = model.rnn(model.inputs(batch)[0])
        unpacked = model.head(out[:, -1])
        alone = torch.cat([model(s.unsqueeze(0)) for s in seqs])
    assert (unpacked - alone).abs().max() > 1e-3


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_bidirectional_shapes_and_last_state(cell, impl):
    spec = seqdata.token_spec()
    model = _model(spec, impl, cell=cell, bidirectional=True, pool="last")
    seqs = seqdata.encoded()
    batch = seqdata.pad_batch(seqs, spec.pad_index)
    with torch.no_grad():
        out, h_n, valid = model.encode(batch)
        feats = model.forward_features(batch)
    n, length, hidden = len(seqs), batch.shape[1], 6
    assert out.shape == (n, length, 2 * hidden)
    assert h_n.shape == (2 * 2, n, hidden)  # (layers * directions, batch, hidden)
    assert feats.shape == (n, 2 * hidden) and model(batch).shape == (n, spec.num_classes)
    assert valid.sum(1).tolist() == [len(s) for s in seqs]
    for b, s in enumerate(seqs):
        # forward direction: its state after the last real token; backward: after reading back
        # to the first token, i.e. its output at position 0
        torch.testing.assert_close(feats[b, :hidden], out[b, len(s) - 1, :hidden],
                                   rtol=0, atol=TOL)
        torch.testing.assert_close(feats[b, hidden:], out[b, 0, hidden:], rtol=0, atol=TOL)
        assert out[b, len(s):].abs().sum() == 0  # pads output nothing


@pytest.mark.parametrize("pool", ["mean", "max"])
def test_pooling_over_real_steps(pool):
    spec = seqdata.token_spec()
    model = _model(spec, pool=pool, bidirectional=True)
    seqs = seqdata.encoded()
    batch = seqdata.pad_batch(seqs, spec.pad_index, extra=2)
    with torch.no_grad():
        out, _, _ = model.encode(batch)
        feats = model.forward_features(batch)
    for b, s in enumerate(seqs):
        steps = out[b, : len(s)]
        expected = steps.mean(0) if pool == "mean" else steps.amax(0)
        torch.testing.assert_close(feats[b], expected, rtol=0, atol=TOL)


def test_empty_text_and_left_padding():
    spec = seqdata.token_spec()
    model = _model(spec, cell="lstm", pool="mean")
    seqs = seqdata.encoded()
    batch = seqdata.pad_batch([seqs[0], torch.tensor([], dtype=torch.long)], spec.pad_index)
    with torch.no_grad():
        assert torch.isfinite(model(batch)).all()  # an empty text reads one pad step
        left = torch.flip(seqdata.pad_batch(seqs[:2], spec.pad_index), dims=[1])
        with pytest.raises(ValueError, match="right-padded"):
            model(left)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_signals_are_sequences_of_channels(cell):
    """MNIST-1D's digit templates (1, 12): 12 steps of 1 feature; no padding involved."""
    x, y = seqdata.templates()
    model = _model(seqdata.signal_spec(), cell=cell, bidirectional=True, pool="mean")
    with torch.no_grad():
        out, h_n, valid = model.encode(x)
        logits = model(x)
    assert valid is None and out.shape == (10, 12, 12) and logits.shape == (10, 10)
    # order matters to a recurrent net: reversing time changes the outputs
    assert (model(x.flip(-1)) - logits).abs().max() > 1e-6


def test_a_few_steps_fit_the_templates():
    """A GRU learns the 10 MNIST-1D templates: the loss falls on real data."""
    x, y = seqdata.templates()
    torch.manual_seed(0)
    model = RNNClassifier(seqdata.signal_spec(), cell="gru", embed_dim=16, hidden=32).double()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)  # 10 of 10 seeds fit with these
    losses = []
    for _ in range(100):
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.1 * losses[0]
    with torch.no_grad():
        assert model.eval()(x).argmax(1).tolist() == y.tolist()


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_scratch_layers_match_torch(cell):
    """The same weights give the same predictions through packing (torch) and lengths= (scratch)."""
    spec = seqdata.token_spec()
    ours = _model(spec, "scratch", cell=cell, bidirectional=True, pool="last")
    theirs = _model(spec, "torch", cell=cell, bidirectional=True, pool="last")
    theirs.load_state_dict(ours.state_dict())
    batch = seqdata.pad_batch(seqdata.encoded(), spec.pad_index, extra=1)
    with torch.no_grad():
        torch.testing.assert_close(ours(batch), theirs(batch), rtol=0, atol=1e-10)


@pytest.mark.parametrize(("kind", "shape"), [("image", (3, 32, 32)), ("vector", (10,))])
def test_images_and_vectors_are_refused(kind, shape):
    spec = DataSpec(task="classification", input_kind=kind, input_shape=shape, num_classes=10)
    with pytest.raises(IncompatibleDataError, match="RNNClassifier takes"):
        RNNClassifier(spec)
    assert not RNNClassifier.accepts("image", "classification")


def test_rnn_cifar10_pair_fails_before_reading_data(make_cfg):
    from dlbasics.build import check_pair

    with pytest.raises(IncompatibleDataError, match=r"model=\w+ cannot train on data=\w+"):
        check_pair(make_cfg("model=rnn", "data=cifar10"))


def test_bad_options():
    spec = seqdata.token_spec()
    with pytest.raises(ValueError, match="model.cell"):
        RNNClassifier(spec, cell="transformer")
    with pytest.raises(ValueError, match="model.pool"):
        RNNClassifier(spec, pool="first")

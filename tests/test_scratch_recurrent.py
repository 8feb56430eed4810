"""RNN / LSTM / GRU cells and layers against torch.nn, including packed-sequence semantics."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from dlbasics.scratch import recurrent as R

EXACT = {"rtol": 1e-10, "atol": 1e-10}
F64 = torch.float64


def _rand(*shape: int, seed: int) -> torch.Tensor:
    return torch.randn(*shape, dtype=F64, generator=torch.Generator().manual_seed(seed))


def _pair(mode: str, *args, **kwargs) -> tuple[nn.Module, nn.Module]:
    """A torch module and its scratch twin built under the same seed (so: the same weights)."""
    torch.manual_seed(0)
    ref = getattr(nn, mode)(*args, dtype=F64, **kwargs)
    torch.manual_seed(0)
    mine = getattr(R, mode)(*args, dtype=F64, **kwargs)
    return ref, mine


def _states(h):
    return h if isinstance(h, tuple) else (h,)


def _assert_same_run(ref_out, my_out, ref_h, my_h, inputs, ref, mine, seed: int = 5):
    """Same outputs, final states and gradients (w.r.t. inputs and every parameter)."""
    torch.testing.assert_close(my_out, ref_out, **EXACT)
    for a, b in zip(_states(my_h), _states(ref_h)):
        torch.testing.assert_close(a, b, **EXACT)
    g = _rand(*ref_out.shape, seed=seed)
    ref_loss = (ref_out * g).sum() + sum(h.sum() for h in _states(ref_h))
    my_loss = (my_out * g).sum() + sum(h.sum() for h in _states(my_h))
    ref_grads = torch.autograd.grad(ref_loss, [*inputs, *ref.parameters()])
    my_grads = torch.autograd.grad(my_loss, [*inputs, *mine.parameters()])
    for a, b in zip(my_grads, ref_grads):
        torch.testing.assert_close(a, b, **EXACT)


@pytest.mark.parametrize("mode", ["RNNCell", "LSTMCell", "GRUCell"])
@pytest.mark.parametrize("bias", [True, False])
def test_cells_match_torch(mode, bias):
    ref, mine = _pair(mode, 5, 4, bias=bias)
    assert list(ref.state_dict()) == list(mine.state_dict())
    x = _rand(3, 5, seed=1).requires_grad_(True)
    h0 = _rand(3, 4, seed=2).requires_grad_(True)
    hx = (h0, _rand(3, 4, seed=3).requires_grad_(True)) if mode == "LSTMCell" else h0
    for args in ((x,), (x, hx)):
        out_ref, out_mine = ref(*args), mine(*args)
        out_ref = out_ref[0] if mode == "LSTMCell" else out_ref
        out_mine_h = out_mine[0] if mode == "LSTMCell" else out_mine
        torch.testing.assert_close(out_mine_h, out_ref, **EXACT)
        g_ref = torch.autograd.grad(out_ref.sum(), [x, *ref.parameters()])
        g_mine = torch.autograd.grad(out_mine_h.sum(), [x, *mine.parameters()])
        for a, b in zip(g_mine, g_ref):
            torch.testing.assert_close(a, b, **EXACT)


def test_relu_rnn_cell_matches_torch():
    ref, mine = _pair("RNNCell", 5, 4, nonlinearity="relu")
    x, h = _rand(3, 5, seed=4), _rand(3, 4, seed=5)
    torch.testing.assert_close(mine(x, h), ref(x, h), **EXACT)


LAYER_CONFIGS = [
    {},
    {"num_layers": 2, "bidirectional": True},
    {"num_layers": 3, "batch_first": True, "bias": False},
    {"num_layers": 2, "bidirectional": True, "batch_first": True, "dropout": 0.3},  # eval: off
]


@pytest.mark.parametrize("mode", ["RNN", "LSTM", "GRU"])
@pytest.mark.parametrize("config", LAYER_CONFIGS, ids=str)
def test_layers_match_torch(mode, config):
    ref, mine = _pair(mode, 4, 5, **config)
    ref.eval()
    mine.eval()
    sd_ref, sd_mine = ref.state_dict(), mine.state_dict()
    assert list(sd_ref) == list(sd_mine)
    for name in sd_ref:  # same shapes, and the same initial values under the same seed
        assert torch.equal(sd_ref[name], sd_mine[name]), name
    batch_first = config.get("batch_first", False)
    x = _rand(*((3, 6, 4) if batch_first else (6, 3, 4)), seed=6).requires_grad_(True)
    rows = config.get("num_layers", 1) * (2 if config.get("bidirectional") else 1)
    h0 = _rand(rows, 3, 5, seed=7).requires_grad_(True)
    hx = (h0, _rand(rows, 3, 5, seed=8).requires_grad_(True)) if mode == "LSTM" else h0
    out_ref, h_ref = ref(x)
    out_mine, h_mine = mine(x)
    _assert_same_run(out_ref, out_mine, h_ref, h_mine, [x], ref, mine)
    out_ref, h_ref = ref(x, hx)
    out_mine, h_mine = mine(x, hx)
    _assert_same_run(out_ref, out_mine, h_ref, h_mine, [x, h0], ref, mine)


@pytest.mark.parametrize("config", [{"proj_size": 3}, {"proj_size": 2, "num_layers": 2,
                                                       "bidirectional": True}], ids=str)
def test_lstm_with_projection_matches_torch(config):
    ref, mine = _pair("LSTM", 4, 5, **config)
    assert list(ref.state_dict()) == list(mine.state_dict())
    x = _rand(6, 3, 4, seed=9).requires_grad_(True)
    out_ref, h_ref = ref(x)
    out_mine, h_mine = mine(x)
    _assert_same_run(out_ref, out_mine, h_ref, h_mine, [x], ref, mine)


def test_relu_rnn_layer_matches_torch():
    ref, mine = _pair("RNN", 4, 5, 2, "relu", bidirectional=True)
    x = _rand(6, 3, 4, seed=10).requires_grad_(True)
    out_ref, h_ref = ref(x)
    out_mine, h_mine = mine(x)
    _assert_same_run(out_ref, out_mine, h_ref, h_mine, [x], ref, mine)


@pytest.mark.parametrize("mode", ["RNN", "LSTM", "GRU"])
@pytest.mark.parametrize("config", [{}, {"num_layers": 2, "bidirectional": True},
                                    {"batch_first": True, "bidirectional": True}], ids=str)
@pytest.mark.parametrize("with_hx", [False, True])
def test_lengths_behave_like_packed_sequences(mode, config, with_hx):
    """Outputs past each length are 0, h_n is the state at the last valid step, and the reverse
    direction starts at each sequence's own last step (torch: pack_padded_sequence)."""
    ref, mine = _pair(mode, 4, 5, **config)
    batch_first = config.get("batch_first", False)
    T, B = 7, 4
    lengths = torch.tensor([3, 7, 1, 5])  # unsorted; T itself is one of them
    x = _rand(*((B, T, 4) if batch_first else (T, B, 4)), seed=11).requires_grad_(True)
    rows = config.get("num_layers", 1) * (2 if config.get("bidirectional") else 1)
    hx = None
    if with_hx:
        h0 = _rand(rows, B, 5, seed=12)
        hx = (h0, _rand(rows, B, 5, seed=13)) if mode == "LSTM" else h0
    packed = pack_padded_sequence(x, lengths, batch_first=batch_first, enforce_sorted=False)
    out_packed, h_ref = ref(packed, hx)
    out_ref, _ = pad_packed_sequence(out_packed, batch_first=batch_first, total_length=T)
    out_mine, h_mine = mine(x, hx, lengths=lengths)
    _assert_same_run(out_ref, out_mine, h_ref, h_mine, [x], ref, mine)
    steps = torch.arange(T).unsqueeze(1)
    padded = (steps >= lengths).T if batch_first else (steps >= lengths)
    assert (out_mine[padded] == 0).all()


def test_lengths_shorter_than_the_padded_length_and_packed_input():
    ref, mine = _pair("GRU", 4, 5, num_layers=2, bidirectional=True)
    lengths = torch.tensor([2, 4, 3])
    x = _rand(6, 3, 4, seed=14)  # two more padded steps than the longest sequence
    packed = pack_padded_sequence(x, lengths, enforce_sorted=False)
    out_packed, h_ref = ref(packed)
    out_ref, _ = pad_packed_sequence(out_packed, total_length=6)
    out_mine, h_mine = mine(x, lengths=lengths)
    torch.testing.assert_close(out_mine, out_ref, **EXACT)
    torch.testing.assert_close(h_mine, h_ref, **EXACT)
    # a PackedSequence goes in and comes out like torch's
    for enforce_sorted, pk in ((False, packed),
                               (True, pack_padded_sequence(x[:, [1, 2, 0]], lengths[[1, 2, 0]]))):
        ref_out, ref_h = ref(pk)
        my_out, my_h = mine(pk)
        torch.testing.assert_close(my_out.data, ref_out.data, **EXACT)
        assert torch.equal(my_out.batch_sizes, ref_out.batch_sizes), enforce_sorted
        torch.testing.assert_close(my_h, ref_h, **EXACT)


def test_zero_length_sequence_keeps_the_initial_state():
    _, mine = _pair("LSTM", 4, 5, bidirectional=True)
    x = _rand(5, 2, 4, seed=15)
    h0, c0 = _rand(2, 2, 5, seed=16), _rand(2, 2, 5, seed=17)
    out, (h, c) = mine(x, (h0, c0), lengths=torch.tensor([0, 5]))
    assert (out[:, 0] == 0).all()
    torch.testing.assert_close(h[:, 0], h0[:, 0], **EXACT)
    torch.testing.assert_close(c[:, 0], c0[:, 0], **EXACT)
    alone, _ = mine(x[:, 1:], (h0[:, 1:], c0[:, 1:]))
    torch.testing.assert_close(out[:, 1:], alone, **EXACT)  # the other sequence is unaffected


@pytest.mark.parametrize("mode", ["RNN", "LSTM", "GRU"])
def test_unbatched_input_matches_torch(mode):
    ref, mine = _pair(mode, 4, 5, num_layers=2, bidirectional=True)
    x = _rand(6, 4, seed=18)
    h0 = _rand(4, 5, seed=19)
    hx = (h0, _rand(4, 5, seed=20)) if mode == "LSTM" else h0
    for args in ((x,), (x, hx)):
        out_ref, h_ref = ref(*args)
        out_mine, h_mine = mine(*args)
        torch.testing.assert_close(out_mine, out_ref, **EXACT)
        for a, b in zip(_states(h_mine), _states(h_ref)):
            torch.testing.assert_close(a, b, **EXACT)


def test_state_dicts_load_both_ways():
    ref = nn.LSTM(4, 6, num_layers=2, bidirectional=True, dtype=F64)
    mine = R.LSTM(4, 6, num_layers=2, bidirectional=True, dtype=F64)
    mine.load_state_dict(ref.state_dict())
    x = _rand(5, 2, 4, seed=21)
    torch.testing.assert_close(mine(x)[0], ref(x)[0], **EXACT)
    mine.reset_parameters()
    ref.load_state_dict(mine.state_dict())
    torch.testing.assert_close(mine(x)[0], ref(x)[0], **EXACT)


def test_dropout_between_layers_only_in_training():
    with pytest.warns(UserWarning):
        R.GRU(4, 5, dropout=0.5)  # one layer: dropout has nothing to act on
    torch.manual_seed(0)
    mine = R.LSTM(4, 5, num_layers=2, dropout=0.5, dtype=F64)
    x = _rand(6, 3, 4, seed=22)
    mine.train()
    out_a, out_b = mine(x)[0], mine(x)[0]
    assert not torch.allclose(out_a, out_b)  # fresh masks every call
    mine.eval()
    torch.testing.assert_close(mine(x)[0], mine(x)[0], rtol=0, atol=0)
    no_drop = R.LSTM(4, 5, num_layers=2, dropout=0.0, dtype=F64)
    no_drop.load_state_dict(mine.state_dict())
    no_drop.train()
    torch.testing.assert_close(no_drop(x)[0], mine(x)[0], **EXACT)


def test_rejects_bad_arguments():
    mine = R.GRU(4, 5, num_layers=2)
    with pytest.raises(ValueError):
        mine(torch.zeros(3, 2, 4), torch.zeros(1, 2, 5))  # hx needs num_layers rows
    with pytest.raises(ValueError):
        mine(torch.zeros(3, 2, 4), lengths=torch.tensor([4, 1]))  # longer than the input
    with pytest.raises(ValueError):
        R.RNN(4, 5, nonlinearity="gelu")
    with pytest.raises(ValueError):
        R.LSTM(4, 5, proj_size=5)

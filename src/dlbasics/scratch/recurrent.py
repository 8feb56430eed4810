"""Recurrent cells (Elman RNN, LSTM, GRU) and the multi-layer, bidirectional layers unrolling them.

The cells use PyTorch's gate order and parameter layout, so weights move between these modules and
``nn.RNN`` / ``nn.LSTM`` / ``nn.GRU`` (and the ``*Cell`` modules) with ``load_state_dict``.
Autograd differentiates the unrolled graph (back-propagation through time).

Elman RNN (``f = tanh`` or ``relu``)::

    h_t = f(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)

LSTM (``weight_ih`` stacks ``[W_ii; W_if; W_ig; W_io]``, ``sigma`` the logistic sigmoid)::

    i_t = sigma(W_ii x_t + b_ii + W_hi h_{t-1} + b_hi)        input gate
    f_t = sigma(W_if x_t + b_if + W_hf h_{t-1} + b_hf)        forget gate
    g_t = tanh(W_ig x_t + b_ig + W_hg h_{t-1} + b_hg)         candidate cell
    o_t = sigma(W_io x_t + b_io + W_ho h_{t-1} + b_ho)        output gate
    c_t = f_t * c_{t-1} + i_t * g_t
    h_t = o_t * tanh(c_t)                 (with proj_size > 0:  h_t = W_hr (o_t * tanh(c_t)))

GRU (``weight_ih`` stacks ``[W_ir; W_iz; W_in]``)::

    r_t = sigma(W_ir x_t + b_ir + W_hr h_{t-1} + b_hr)        reset gate
    z_t = sigma(W_iz x_t + b_iz + W_hz h_{t-1} + b_hz)        update gate
    n_t = tanh(W_in x_t + b_in + r_t * (W_hn h_{t-1} + b_hn))
    h_t = (1 - z_t) * n_t + z_t * h_{t-1}

Layers. Layer ``l > 0`` reads the (concatenated, for bidirectional) outputs of layer ``l - 1``, with
dropout between layers during training. The reverse direction reads the sequence from its end.
The input projections ``W_ih x_t + b`` of all time steps are one matmul before the time loop.

Variable lengths. ``forward(x, hx, lengths)`` with ``lengths[b] = T_b`` behaves like PyTorch on a
packed sequence: for ``t >= T_b`` the state is frozen and the output is 0, so ``h_n`` is the state
after step ``T_b - 1`` and the reverse direction starts at ``t = T_b - 1`` from ``h_0``. (A
sequence of length 0 keeps ``h_0`` and outputs zeros; PyTorch does not allow length 0.) A
``PackedSequence`` input is also accepted and gives a ``PackedSequence`` output.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from functools import partial

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from dlbasics.scratch.linear import linear
from dlbasics.scratch.losses import dropout as inverted_dropout

__all__ = [
    "GRU",
    "LSTM",
    "RNN",
    "GRUCell",
    "LSTMCell",
    "RNNCell",
]

State = tuple[Tensor, ...]  # (h,) or (h, c)


# ---------------------------------------------------------------------------------------------
# one time step, given the input projection xw = W_ih x_t + b_ih (+ b_hh where it can be folded)
# ---------------------------------------------------------------------------------------------


def _rnn_step(xw: Tensor, state: State, w_hh: Tensor, b_hh: Tensor | None,
              w_hr: Tensor | None = None, f: Callable[[Tensor], Tensor] = torch.tanh) -> State:
    """``h' = f(xw + W_hh h + b_hh)``, ``f = tanh`` or ``relu``."""
    return (f(xw + linear(state[0], w_hh, b_hh)),)


def _lstm_step(xw: Tensor, state: State, w_hh: Tensor, b_hh: Tensor | None,
               w_hr: Tensor | None = None) -> State:
    h, c = state
    gates = xw + linear(h, w_hh, b_hh)
    i, f, g, o = gates.chunk(4, dim=1)
    c = torch.addcmul(torch.sigmoid(f) * c, torch.sigmoid(i), torch.tanh(g))  # f c + i g
    h = torch.sigmoid(o) * torch.tanh(c)
    if w_hr is not None:
        h = h @ w_hr.t()
    return (h, c)


def _gru_step(xw: Tensor, state: State, w_hh: Tensor, b_hh: Tensor | None,
              w_hr: Tensor | None = None) -> State:
    (h,) = state
    x_r, x_z, x_n = xw.chunk(3, dim=1)
    h_r, h_z, h_n = linear(h, w_hh, b_hh).chunk(3, dim=1)
    r = torch.sigmoid(x_r + h_r)
    z = torch.sigmoid(x_z + h_z)
    n = torch.tanh(x_n + r * h_n)
    return (n + z * (h - n),)  # = (1 - z) n + z h


Step = Callable[..., State]
_STEPS: dict[str, Step] = {
    "RNN_TANH": _rnn_step,
    "RNN_RELU": partial(_rnn_step, f=torch.relu),
    "LSTM": _lstm_step,
    "GRU": _gru_step,
}
_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


def _project(x: Tensor, w_ih: Tensor, bias: Tensor | None) -> Tensor:
    """``x W_ih^T + bias`` for every leading index of ``x`` at once."""
    flat = x.reshape(-1, x.shape[-1])
    out = flat @ w_ih.t() if bias is None else torch.addmm(bias, flat, w_ih.t())
    return out.view(*x.shape[:-1], -1)


# ---------------------------------------------------------------------------------------------
# cell modules (nn.RNNCell / nn.LSTMCell / nn.GRUCell)
# ---------------------------------------------------------------------------------------------


class _CellBase(nn.Module):
    def __init__(self, mode: str, input_size: int, hidden_size: int, bias: bool,
                 device=None, dtype=None) -> None:
        super().__init__()
        kw = {"device": device, "dtype": dtype}
        self.mode, self.input_size, self.hidden_size, self.bias = mode, input_size, hidden_size, bias
        gates = _GATES[mode]
        self.weight_ih = nn.Parameter(torch.empty(gates * hidden_size, input_size, **kw))
        self.weight_hh = nn.Parameter(torch.empty(gates * hidden_size, hidden_size, **kw))
        if bias:
            self.bias_ih = nn.Parameter(torch.empty(gates * hidden_size, **kw))
            self.bias_hh = nn.Parameter(torch.empty(gates * hidden_size, **kw))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """``U(-1/sqrt(H), 1/sqrt(H))`` for every parameter, in PyTorch's order."""
        stdv = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0.0
        for p in self.parameters():
            nn.init.uniform_(p, -stdv, stdv)

    def _zeros(self, x: Tensor) -> Tensor:
        return x.new_zeros(*x.shape[:-1], self.hidden_size)

    def _step(self, x: Tensor, state: State) -> State:
        """One step of the cell for a batch ``x: [B, I]``: the new state."""
        xw = _project(x, self.weight_ih, self.bias_ih)
        return _STEPS[self.mode](xw, state, self.weight_hh, self.bias_hh)

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}" + ("" if self.bias else ", bias=False")


class RNNCell(_CellBase):
    """Drop-in ``nn.RNNCell``: ``h' = f(W_ih x + b_ih + W_hh h + b_hh)``."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 nonlinearity: str = "tanh", device=None, dtype=None) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"Unknown nonlinearity: {nonlinearity}")
        self.nonlinearity = nonlinearity
        super().__init__("RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU", input_size,
                         hidden_size, bias, device, dtype)

    def forward(self, x: Tensor, hx: Tensor | None = None) -> Tensor:
        return self._step(x, (self._zeros(x) if hx is None else hx,))[0]


class LSTMCell(_CellBase):
    """Drop-in ``nn.LSTMCell``: ``(h, c) -> (h', c')``."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None,
                 dtype=None) -> None:
        super().__init__("LSTM", input_size, hidden_size, bias, device, dtype)

    def forward(self, x: Tensor, hx: tuple[Tensor, Tensor] | None = None
                ) -> tuple[Tensor, Tensor]:
        return self._step(x, (self._zeros(x), self._zeros(x)) if hx is None else hx)


class GRUCell(_CellBase):
    """Drop-in ``nn.GRUCell``: ``h -> h'``."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None,
                 dtype=None) -> None:
        super().__init__("GRU", input_size, hidden_size, bias, device, dtype)

    def forward(self, x: Tensor, hx: Tensor | None = None) -> Tensor:
        return self._step(x, (self._zeros(x) if hx is None else hx,))[0]


# ---------------------------------------------------------------------------------------------
# layers (nn.RNN / nn.LSTM / nn.GRU)
# ---------------------------------------------------------------------------------------------


def _unroll(step: Step, xw: Tensor, state: State, w_hh: Tensor, b_hh: Tensor | None,
            w_hr: Tensor | None, reverse: bool, mask: Tensor | None) -> tuple[Tensor, State]:
    """Run ``step`` over ``xw: [T, B, G*H]``; ``mask: [T, B, 1]`` (bool) freezes padded steps."""
    steps = range(xw.shape[0] - 1, -1, -1) if reverse else range(xw.shape[0])
    xws = xw.unbind(0)  # one autograd node for all steps (xw[t] would add one per step)
    outputs: list[Tensor] = list(xws)
    for t in steps:
        new = step(xws[t], state, w_hh, b_hh, w_hr)
        if mask is None:
            state = new
            outputs[t] = new[0]
        else:
            m = mask[t]
            state = tuple(torch.where(m, n, s) for n, s in zip(new, state))
            outputs[t] = new[0] * m
    return torch.stack(outputs), state


class _RNNBase(nn.Module):
    """Shared machinery of :class:`RNN`, :class:`LSTM` and :class:`GRU` (PyTorch's layout)."""

    def __init__(self, mode: str, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, proj_size: int = 0, device=None,
                 dtype=None) -> None:
        super().__init__()
        if not 0 <= dropout <= 1:
            raise ValueError("dropout should be a number in range [0, 1]")
        if dropout > 0 and num_layers == 1:
            warnings.warn("dropout > 0 with num_layers=1 has no effect: dropout is applied "
                          "between recurrent layers only", stacklevel=3)
        if proj_size < 0 or (proj_size and proj_size >= hidden_size):
            raise ValueError("proj_size has to be in [0, hidden_size)")
        if proj_size and mode != "LSTM":
            raise ValueError("proj_size is only supported for LSTM")
        self.mode, self.input_size, self.hidden_size = mode, input_size, hidden_size
        self.num_layers, self.bias, self.batch_first = num_layers, bias, batch_first
        self.dropout, self.bidirectional, self.proj_size = float(dropout), bidirectional, proj_size
        kw = {"device": device, "dtype": dtype}
        gates = _GATES[mode] * hidden_size
        out_size = proj_size or hidden_size
        directions = 2 if bidirectional else 1
        for layer in range(num_layers):
            layer_in = input_size if layer == 0 else out_size * directions
            for d in range(directions):
                shapes = {"weight_ih": (gates, layer_in), "weight_hh": (gates, out_size)}
                if bias:
                    shapes.update(bias_ih=(gates,), bias_hh=(gates,))
                if proj_size:
                    shapes["weight_hr"] = (proj_size, hidden_size)
                sfx = f"_l{layer}" + ("_reverse" if d else "")
                for name, shape in shapes.items():  # registered in PyTorch's order
                    self.register_parameter(name + sfx, nn.Parameter(torch.empty(shape, **kw)))
        self.reset_parameters()

    reset_parameters = _CellBase.reset_parameters  # U(-1/sqrt(H), 1/sqrt(H)) in PyTorch's order

    def flatten_parameters(self) -> None:
        """No-op, for compatibility: there is no cuDNN flat weight buffer to compact."""

    def _weights(self, layer: int, direction: int):
        """``(W_ih, W_hh, b_ih, b_hh, W_hr)`` of one layer and direction (None where absent)."""
        sfx = f"_l{layer}" + ("_reverse" if direction else "")
        names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr")
        return tuple(getattr(self, name + sfx, None) for name in names)

    def extra_repr(self) -> str:
        """The sizes, then every option that differs from its default (as ``nn.RNN`` prints)."""
        options = {"proj_size": (self.proj_size, 0), "num_layers": (self.num_layers, 1),
                   "nonlinearity": (getattr(self, "nonlinearity", "tanh"), "tanh"),
                   "bias": (self.bias, True), "batch_first": (self.batch_first, False),
                   "dropout": (self.dropout, 0.0), "bidirectional": (self.bidirectional, False)}
        changed = [f"{k}={v}" for k, (v, default) in options.items() if v != default]
        return ", ".join([f"{self.input_size}, {self.hidden_size}", *changed])

    # -- forward --------------------------------------------------------------------------------

    def _initial_state(self, hx, batch: int, x: Tensor) -> list[State]:
        """One state tuple per (layer, direction), from ``hx`` or zeros."""
        rows = self.num_layers * (2 if self.bidirectional else 1)
        h_size = self.proj_size or self.hidden_size
        if hx is None:
            h0 = x.new_zeros(rows, batch, h_size)
            hs = (h0, x.new_zeros(rows, batch, self.hidden_size)) if self.mode == "LSTM" else (h0,)
        else:
            hs = tuple(hx) if self.mode == "LSTM" else (hx,)
            expected = [(rows, batch, h_size), (rows, batch, self.hidden_size)]
            for h, shape in zip(hs, expected):
                if tuple(h.shape) != shape:
                    raise ValueError(f"Expected hidden size {shape}, got {tuple(h.shape)}")
        return [tuple(h[i] for h in hs) for i in range(rows)]

    def _forward_padded(self, x: Tensor, hx, lengths: Tensor | None):
        """``x: [T, B, I]`` (time first) -> (output ``[T, B, D*H]``, final states)."""
        seq_len, batch, _ = x.shape
        states = self._initial_state(hx, batch, x)
        mask = None
        if lengths is not None:
            lengths = torch.as_tensor(lengths)
            if lengths.shape != (batch,):
                raise ValueError(f"lengths must have shape ({batch},), got {tuple(lengths.shape)}")
            if int(lengths.max()) > seq_len or int(lengths.min()) < 0:
                raise ValueError(f"lengths must lie in [0, {seq_len}]")
            t = torch.arange(seq_len, device=x.device).unsqueeze(1)  # [T, 1]
            mask = (t < lengths.to(x.device)).unsqueeze(2)  # [T, B, 1]: True while t < T_b
        step = _STEPS[self.mode]
        directions = 2 if self.bidirectional else 1
        finals: list[State] = []
        layer_input = x
        for layer in range(self.num_layers):
            outs = []
            for d in range(directions):
                w_ih, w_hh, b_ih, b_hh, w_hr = self._weights(layer, d)
                if b_ih is not None and self.mode != "GRU":  # b_hh folds into the projection
                    xw, b_step = _project(layer_input, w_ih, b_ih + b_hh), None
                else:  # GRU: b_hn sits inside r * (W_hn h + b_hn)
                    xw, b_step = _project(layer_input, w_ih, b_ih), b_hh
                out, final = _unroll(step, xw, states[layer * directions + d], w_hh, b_step, w_hr,
                                     reverse=d == 1, mask=mask)
                outs.append(out)
                finals.append(final)
            layer_input = outs[0] if directions == 1 else torch.cat(outs, dim=2)
            if self.training and self.dropout > 0 and layer < self.num_layers - 1:
                layer_input = inverted_dropout(layer_input, self.dropout)
        h_n = tuple(torch.stack([f[k] for f in finals]) for k in range(len(finals[0])))
        return layer_input, h_n

    def forward(self, input: Tensor | PackedSequence, hx=None, lengths: Tensor | None = None):
        """``(output, h_n)`` (LSTM: ``(output, (h_n, c_n))``) with ``nn.RNN``'s shapes.

        ``input``: ``[T, B, I]`` (``[B, T, I]`` if ``batch_first``), unbatched ``[T, I]`` or a
        ``PackedSequence``. ``lengths``: optional valid lengths ``[B]`` of a padded batch; the
        output keeps length ``T`` and is 0 past each sequence's end.
        """
        if isinstance(input, PackedSequence):
            return self._forward_packed(input, hx)
        batched = input.dim() == 3
        if not batched:
            if lengths is not None:
                raise ValueError("lengths needs a batched input")
            input = input.unsqueeze(1)
            if hx is not None:
                hx = tuple(h.unsqueeze(1) for h in hx) if self.mode == "LSTM" else hx.unsqueeze(1)
        elif self.batch_first:
            input = input.transpose(0, 1)
        out, h_n = self._forward_padded(input, hx, lengths)
        if not batched:
            out, h_n = out.squeeze(1), tuple(h.squeeze(1) for h in h_n)
        elif self.batch_first:
            out = out.transpose(0, 1)
        return out, (h_n if self.mode == "LSTM" else h_n[0])

    def _forward_packed(self, packed: PackedSequence, hx):
        padded, lengths = pad_packed_sequence(packed, batch_first=self.batch_first)
        out, h = self.forward(padded, hx, lengths)
        order = packed.sorted_indices
        if order is not None:  # re-pack in the input's sorted order
            out = out.index_select(0 if self.batch_first else 1, order.to(out.device))
            lengths = lengths[order.cpu()]
        repacked = pack_padded_sequence(out, lengths, batch_first=self.batch_first)
        return PackedSequence(repacked.data, repacked.batch_sizes, packed.sorted_indices,
                              packed.unsorted_indices), h


class RNN(_RNNBase):
    """Drop-in ``nn.RNN`` (Elman, ``tanh`` or ``relu``)."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 nonlinearity: str = "tanh", bias: bool = True, batch_first: bool = False,
                 dropout: float = 0.0, bidirectional: bool = False, device=None,
                 dtype=None) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"Unknown nonlinearity {nonlinearity!r}: select 'tanh' or 'relu'")
        self.nonlinearity = nonlinearity
        super().__init__("RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU", input_size,
                         hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         device=device, dtype=dtype)


class LSTM(_RNNBase):
    """Drop-in ``nn.LSTM`` (with ``proj_size``); ``hx`` and the final state are ``(h, c)``."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 proj_size: int = 0, device=None, dtype=None) -> None:
        super().__init__("LSTM", input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, proj_size, device, dtype)


class GRU(_RNNBase):
    """Drop-in ``nn.GRU``."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 device=None, dtype=None) -> None:
        super().__init__("GRU", input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, device=device, dtype=dtype)

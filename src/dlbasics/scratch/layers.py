"""Drop-in replacements for ``torch.nn`` layers, built on the from-scratch algorithms.

Every class here has the constructor arguments, ``forward`` signature, parameter names and shapes
(so the same ``state_dict`` keys) and initialisation of its ``torch.nn`` namesake: a model can be
built from this module instead of ``torch.nn`` (``layer_library('scratch')``), and a state dict
saved by one loads into the other. Given the same weights, outputs and gradients agree with
PyTorch to round-off (``tests/test_scratch_layers.py``).

=====================  ==================================================================
layer                  implementation
=====================  ==================================================================
Linear                 ``x W^T + b`` (:mod:`.linear`)
Conv1d, Conv2d         im2col + matmul autograd Function (:mod:`.conv`)
MaxPool1d/2d           strided windows + arg-max scatter autograd Function (:mod:`.pool`)
AvgPool1d/2d           strided window sums + col2im autograd Function (:mod:`.pool`)
Dropout                inverted dropout (:mod:`.losses`)
RNN, LSTM, GRU (+Cell) unrolled cells, packed-sequence semantics (:mod:`.recurrent`)
MultiheadAttention     scaled dot-product attention (:mod:`.attention`)
=====================  ==================================================================
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from dlbasics.scratch.attention import MultiheadAttention
from dlbasics.scratch.conv import conv1d, conv2d, pair
from dlbasics.scratch.linear import Linear, _Affine
from dlbasics.scratch.losses import dropout
from dlbasics.scratch.pool import avg_pool1d, avg_pool2d, max_pool1d, max_pool2d
from dlbasics.scratch.recurrent import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNCell

__all__ = [
    "GRU",
    "LSTM",
    "RNN",
    "AvgPool1d",
    "AvgPool2d",
    "Conv1d",
    "Conv2d",
    "Dropout",
    "GRUCell",
    "LSTMCell",
    "Linear",
    "MaxPool1d",
    "MaxPool2d",
    "MultiheadAttention",
    "RNNCell",
]


class _ConvNd(_Affine):
    """``nn.Conv2d`` / ``nn.Conv1d``'s constructor, parameters and ``extra_repr``; a subclass sets
    ``dims`` and the functional ``_conv``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 dilation=1, groups: int = 1, bias: bool = True, padding_mode: str = "zeros",
                 device=None, dtype=None) -> None:
        if groups <= 0 or in_channels % groups or out_channels % groups:
            raise ValueError("in_channels and out_channels must be divisible by groups")
        if padding_mode not in ("zeros", "reflect", "replicate", "circular"):
            raise ValueError(f"padding_mode must be zeros/reflect/replicate/circular, "
                             f"got {padding_mode!r}")

        def tup(v):
            return pair(v) if self.dims == 2 else ((v,) if isinstance(v, int) else tuple(v))

        kernel_size, stride = tup(kernel_size), tup(stride)
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(f"Invalid padding string {padding!r}")
            if padding == "same" and any(s != 1 for s in stride):
                raise ValueError("padding='same' is not supported for strided convolutions")
        else:
            padding = tup(padding)
        super().__init__((out_channels, in_channels // groups, *kernel_size), bias, device, dtype)
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size, self.stride, self.dilation = kernel_size, stride, tup(dilation)
        self.padding, self.padding_mode = padding, padding_mode

    def forward(self, x: Tensor) -> Tensor:
        x, padding = self._pre_pad(x)
        return self._conv(x, self.weight, self.bias, self.stride, padding, self.dilation, self.groups)

    def _pre_pad(self, x: Tensor) -> tuple[Tensor, object]:
        """Non-zero padding modes pad explicitly (like ``nn.Conv*d``); zeros pad in the conv."""
        if self.padding_mode == "zeros" or self.padding == "valid":
            return x, self.padding
        if self.padding == "same":
            total = [d * (k - 1) for d, k in zip(self.dilation, self.kernel_size)]
            pads = [(t // 2, t - t // 2) for t in total]
        else:
            pads = [(p, p) for p in self.padding]
        flat = [v for lr in reversed(pads) for v in lr]  # F.pad wants the last dim first
        return F.pad(x, flat, mode=self.padding_mode), 0

    def extra_repr(self) -> str:
        """The sizes, then every option that differs from its default (as ``nn.Conv*d`` prints)."""
        options = {"padding": (self.padding, (0,) * self.dims),
                   "dilation": (self.dilation, (1,) * self.dims), "groups": (self.groups, 1),
                   "bias": (self.bias is not None, True), "padding_mode": (self.padding_mode, "zeros")}
        changed = [f"{k}={v}" for k, (v, default) in options.items() if v != default]
        return ", ".join([f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                          f"stride={self.stride}", *changed])


class Conv2d(_ConvNd):
    """Drop-in ``nn.Conv2d`` on the vectorised im2col convolution."""

    dims, _conv = 2, staticmethod(conv2d)


class Conv1d(_ConvNd):
    """Drop-in ``nn.Conv1d`` (the 2-D im2col convolution on height 1)."""

    dims, _conv = 1, staticmethod(conv1d)


class _PoolNd(nn.Module):
    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode: bool = False) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding, self.ceil_mode = padding, ceil_mode

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"ceil_mode={self.ceil_mode}")


class MaxPool2d(_PoolNd):
    """Drop-in ``nn.MaxPool2d``: ``O(i, j) = max`` over the window."""

    _pool = staticmethod(max_pool2d)

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1,
                 return_indices: bool = False, ceil_mode: bool = False) -> None:
        super().__init__(kernel_size, stride, padding, ceil_mode)
        self.dilation, self.return_indices = dilation, return_indices

    def forward(self, x: Tensor):
        return self._pool(x, self.kernel_size, self.stride, self.padding, self.dilation,
                          self.ceil_mode, self.return_indices)


class MaxPool1d(MaxPool2d):
    """Drop-in ``nn.MaxPool1d``."""

    _pool = staticmethod(max_pool1d)


class AvgPool2d(_PoolNd):
    """Drop-in ``nn.AvgPool2d``: the window mean (see :mod:`.pool` for the divisor)."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
                 count_include_pad: bool = True, divisor_override: int | None = None) -> None:
        super().__init__(kernel_size, stride, padding, ceil_mode)
        self.count_include_pad, self.divisor_override = count_include_pad, divisor_override

    def forward(self, x: Tensor) -> Tensor:
        return avg_pool2d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                          self.count_include_pad, self.divisor_override)


class AvgPool1d(_PoolNd):
    """Drop-in ``nn.AvgPool1d``."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
                 count_include_pad: bool = True) -> None:
        super().__init__(kernel_size, stride, padding, ceil_mode)
        self.count_include_pad = count_include_pad

    def forward(self, x: Tensor) -> Tensor:
        return avg_pool1d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                          self.count_include_pad)


class Dropout(nn.Module):
    """Drop-in ``nn.Dropout``: inverted dropout in training, the identity in evaluation."""

    def __init__(self, p: float = 0.5, inplace: bool = False) -> None:
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
        self.p, self.inplace = p, inplace

    def forward(self, x: Tensor) -> Tensor:
        out = dropout(x, self.p, self.training)
        if self.inplace and out is not x:
            return x.copy_(out)
        return out

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"

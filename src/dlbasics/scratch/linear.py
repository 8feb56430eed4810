"""The affine layer ``y = x W^T + b``, as a function and as a drop-in for ``nn.Linear``.

Backward (autograd derives it; :mod:`dlbasics.scratch.backprop` writes it out by hand)::

    dL/dx = dL/dy W        dL/dW = dL/dy^T x        dL/db = sum over the batch of dL/dy
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

__all__ = ["Linear", "linear"]


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``x W^T + b`` for ``x: [..., in]``, ``W: [out, in]``, ``b: [out]``."""
    if bias is None:
        return x.matmul(weight.t())
    if x.dim() == 2:
        return torch.addmm(bias, x, weight.t())
    return x.matmul(weight.t()) + bias


class _Affine(nn.Module):
    """A ``weight [out, ...]`` and an optional ``bias [out]``, the parameters of ``nn.Linear`` and
    ``nn.Conv*d``, created and initialised the same way (so in the same order)."""

    def __init__(self, weight_shape: tuple[int, ...], bias: bool, device, dtype) -> None:
        super().__init__()
        kw = {"device": device, "dtype": dtype}
        self.weight = nn.Parameter(torch.empty(*weight_shape, **kw))
        if bias:
            self.bias = nn.Parameter(torch.empty(weight_shape[0], **kw))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """``W, b ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in))``, ``fan_in = prod(weight.shape[1:])``
        (``in_features``, or ``C/groups * prod(kernel)`` for a convolution)."""
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = self.weight.shape[1:].numel()
            bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
            nn.init.uniform_(self.bias, -bound, bound)


class Linear(_Affine):
    """Drop-in ``nn.Linear(in_features, out_features, bias=True, device=None, dtype=None)``.

    Same parameters (``weight [out, in]``, ``bias [out]``) and the same initialisation, drawn in
    the same order: ``W, b ~ U(-1/sqrt(in), 1/sqrt(in))`` (``kaiming_uniform_(a=sqrt(5))``).
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, device=None,
                 dtype=None) -> None:
        super().__init__((out_features, in_features), bias, device, dtype)
        self.in_features, self.out_features = in_features, out_features

    def forward(self, x: Tensor) -> Tensor:
        return linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")

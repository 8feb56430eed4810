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


class Linear(nn.Module):
    """Drop-in ``nn.Linear(in_features, out_features, bias=True, device=None, dtype=None)``.

    Same parameters (``weight [out, in]``, ``bias [out]``) and the same initialisation, drawn in
    the same order: ``W, b ~ U(-1/sqrt(in), 1/sqrt(in))`` (``kaiming_uniform_(a=sqrt(5))``).
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, device=None,
                 dtype=None) -> None:
        super().__init__()
        kw = {"device": device, "dtype": dtype}
        self.in_features, self.out_features = in_features, out_features
        self.weight = nn.Parameter(torch.empty(out_features, in_features, **kw))
        if bias:
            self.bias = nn.Parameter(torch.empty(out_features, **kw))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1.0 / math.sqrt(self.in_features) if self.in_features > 0 else 0.0
            nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: Tensor) -> Tensor:
        return linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")

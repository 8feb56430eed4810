"""Multi-layer perceptron.

    x (B, ...) -> flatten (B, F) -> [Linear(hidden) -> (BatchNorm) -> act -> (Dropout)] x depth
      -> head -> (B, num_outputs)
"""

from __future__ import annotations

import torch
from torch import nn

from dlbasics.models.base import Activation, Impl, Network, activation, layer_library
from dlbasics.spec import DataSpec


class MLP(Network):
    input_kinds = frozenset({"image", "vector", "signal"})

    def __init__(
        self,
        spec: DataSpec,
        hidden: int = 256,
        depth: int = 2,
        act: Activation = "relu",
        dropout: float = 0.0,
        batch_norm: bool = False,
        impl: Impl = "torch",
    ) -> None:
        super().__init__(spec)
        lib = layer_library(impl)
        layers: list[nn.Module] = [nn.Flatten()]
        width = spec.input_dim
        for _ in range(depth):
            layers.append(lib.Linear(width, hidden))
            if batch_norm:
                layers.append(nn.BatchNorm1d(hidden))
            layers.append(activation(act))
            if dropout > 0:
                layers.append(lib.Dropout(dropout))
            width = hidden
        self.body = nn.Sequential(*layers)
        self.head = lib.Linear(width, spec.num_outputs)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

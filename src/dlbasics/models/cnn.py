"""The classic convolutional stack (LeNet-like), on images in 2-D and on signals in 1-D.

    x (B, C, H, W) | (B, C, L)
      -> for each width c in channels: [Conv(c, k) -> (BatchNorm) -> act] x convs_per_block
                                       -> Pool(2)          (halves H, W | L)
      -> (global average pool) -> flatten -> (Dropout) -> [Linear(hidden) -> act -> (Dropout)]
      -> head -> (B, num_outputs)
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from dlbasics.models.base import Activation, Impl, Network, activation, layer_library
from dlbasics.spec import DataSpec


class CNN(Network):
    input_kinds = frozenset({"image", "signal"})

    def __init__(
        self,
        spec: DataSpec,
        channels: tuple[int, ...] = (32, 64),
        convs_per_block: int = 1,
        kernel_size: int = 3,
        pool: Literal["max", "avg"] = "max",
        batch_norm: bool = False,
        act: Activation = "relu",
        hidden: int = 128,
        dropout: float = 0.0,
        global_pool: bool = False,
        impl: Impl = "torch",
    ) -> None:
        super().__init__(spec)
        lib = layer_library(impl)
        two_d = spec.input_kind == "image"
        conv = lib.Conv2d if two_d else lib.Conv1d
        norm = nn.BatchNorm2d if two_d else nn.BatchNorm1d
        if pool == "max":
            downsample = lib.MaxPool2d if two_d else lib.MaxPool1d
        elif pool == "avg":
            downsample = lib.AvgPool2d if two_d else lib.AvgPool1d
        else:
            raise ValueError(f"model.pool must be 'max' or 'avg', got {pool!r}")

        layers: list[nn.Module] = []
        in_ch = spec.input_shape[0]
        for out_ch in channels:
            for _ in range(convs_per_block):
                layers.append(conv(in_ch, out_ch, kernel_size, padding=kernel_size // 2,
                                   bias=not batch_norm))
                if batch_norm:
                    layers.append(norm(out_ch))
                layers.append(activation(act))
                in_ch = out_ch
            layers.append(downsample(2))
        if global_pool:
            layers.append(nn.AdaptiveAvgPool2d(1) if two_d else nn.AdaptiveAvgPool1d(1))
        layers.append(nn.Flatten())
        self.features = nn.Sequential(*layers)
        with torch.no_grad():
            flat = self.features(torch.zeros(1, *spec.input_shape)).shape[1]
        tail: list[nn.Module] = [lib.Dropout(dropout)] if dropout > 0 else []
        if hidden:
            tail += [lib.Linear(flat, hidden), activation(act)]
            if dropout > 0:
                tail.append(lib.Dropout(dropout))
        self.neck = nn.Sequential(*tail)
        self.head = lib.Linear(hidden or flat, spec.num_outputs)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.neck(self.features(x))

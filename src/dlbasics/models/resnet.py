"""A small CIFAR-style ResNet (He et al. 2016).

    x (B, C, H, W) -> 3x3 conv stem (widths[0]) -> BN -> ReLU
      -> for each stage i: blocks_per_stage x BasicBlock(widths[i]); the first block of every
         stage after the first halves H and W (stride 2, a 1x1 conv shortcut)
      -> global average pool (B, widths[-1]) -> Dropout -> head -> (B, num_outputs)
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from dlbasics.models.base import Impl, Network, layer_library
from dlbasics.spec import DataSpec


class BasicBlock(nn.Module):
    """out = relu(bn(conv(relu(bn(conv(x))))) + shortcut(x))."""

    def __init__(self, lib, in_ch: int, out_ch: int, stride: int) -> None:
        super().__init__()
        self.conv1 = lib.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.conv2 = lib.Conv2d(out_ch, out_ch, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_ch != out_ch:
            self.shortcut = nn.Sequential(
                lib.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False), nn.BatchNorm2d(out_ch)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet(Network):
    input_kinds = frozenset({"image"})

    def __init__(
        self,
        spec: DataSpec,
        widths: tuple[int, ...] = (16, 32, 64),
        blocks_per_stage: int = 2,
        dropout: float = 0.0,
        impl: Impl = "torch",
    ) -> None:
        super().__init__(spec)
        lib = layer_library(impl)
        self.stem = nn.Sequential(
            lib.Conv2d(spec.input_shape[0], widths[0], 3, padding=1, bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(),
        )
        blocks: list[nn.Module] = []
        in_ch = widths[0]
        for i, width in enumerate(widths):
            for j in range(blocks_per_stage):
                stride = 2 if (i > 0 and j == 0) else 1
                blocks.append(BasicBlock(lib, in_ch, width, stride))
                in_ch = width
        self.stages = nn.Sequential(*blocks)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), lib.Dropout(dropout))
        self.head = lib.Linear(in_ch, spec.num_outputs)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.stages(self.stem(x)))

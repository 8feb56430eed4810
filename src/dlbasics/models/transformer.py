"""Transformer encoder classifier (pre-norm, as in GPT-2/ViT).

    x (B, L) ids | (B, C, L) signal -> inputs -> (B, L, embed_dim) [-> Linear to dim]
      + positions (sinusoidal or learned)         -> (B, L, dim)
      [CLS] prepended (pool=cls)                  -> (B, 1 + L, dim)
      -> dropout -> depth x TransformerBlock (pads masked as keys) -> LayerNorm
      -> features: the CLS row, or the mean over real (non-pad) positions -> head

Pads are masked as keys, so they never change the real positions' outputs.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from dlbasics.errors import UserError
from dlbasics.models.base import Impl, layer_library
from dlbasics.models.blocks import Positions, TransformerBlock, masked_pool
from dlbasics.models.sequence import SequenceClassifier
from dlbasics.spec import DataSpec


class TransformerClassifier(SequenceClassifier):
    pools = ("cls", "mean", "max")

    def __init__(
        self,
        spec: DataSpec,
        dim: int = 64,
        depth: int = 2,
        heads: int = 4,
        ff_mult: int = 4,
        dropout: float = 0.1,
        positional: Literal["sinusoidal", "learned"] = "sinusoidal",
        pool: Literal["cls", "mean", "max"] = "cls",
        max_len: int = 512,
        embed_dim: int | None = None,
        pretrained_embeddings: str | None = None,
        freeze_embeddings: bool = False,
        signal_kernel: int = 1,
        impl: Impl = "torch",
        word_dropout: float = 0.0,
    ) -> None:
        """
        Args:
            max_len: the longest sequence accepted (the size of the position table).
            embed_dim: width of the token embedding when it differs from ``dim`` (e.g. 100 for
                glove.6B.100d.txt); a linear layer then maps it to ``dim``.
            See ``SequenceClassifier`` for the shared arguments.
        """
        embed_dim = embed_dim or dim
        super().__init__(spec, embed_dim, dropout, pool, pretrained_embeddings,
                         freeze_embeddings, signal_kernel, impl, word_dropout)
        if dim % heads:
            raise ValueError(f"model.dim={dim} must be divisible by model.heads={heads}")
        longest = spec.input_shape[-1]  # signals: L; tokens: the data's max_length (0: unbounded)
        if longest > max_len:
            what = "signals have" if spec.input_kind == "signal" else "data keeps up to"
            raise UserError(f"the {what} {longest} steps but model.max_len={max_len}: set "
                            f"model.max_len>={longest}.")
        lib = layer_library(impl)
        self.max_len = max_len
        self.in_proj = lib.Linear(embed_dim, dim) if embed_dim != dim else nn.Identity()
        self.positions = Positions(positional, max_len, dim)
        self.cls = None
        if pool == "cls":  # a small random start, as in ViT (LayerNorm of an all-zero row is flat)
            self.cls = nn.Parameter(torch.zeros(1, 1, dim))
            nn.init.normal_(self.cls, std=0.02)
        self.blocks = nn.ModuleList(TransformerBlock(dim, heads, ff_mult * dim, dropout,
                                                     act="gelu", impl=impl)
                                    for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.head = lib.Linear(dim, spec.num_outputs)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Final-norm outputs (B, L [+1 for CLS], dim) and the pad mask (True at pads) or None."""
        seq, pad = self.inputs(x)
        length = seq.shape[1]
        if length > self.max_len:
            raise UserError(f"a batch holds sequences of {length} tokens but model.max_len="
                            f"{self.max_len}: raise model.max_len or truncate the data's texts.")
        h = self.in_proj(seq) + self.positions(length).to(seq.dtype)
        if pad is not None:
            # an all-padding row (an empty text) attends to its first pad, not to nothing (NaN)
            pad = pad.clone()
            pad[:, 0] &= ~pad.all(1)
            if not pad.any():
                pad = None
        if self.cls is not None:
            h = torch.cat([self.cls.to(h.dtype).expand(len(h), -1, -1), h], dim=1)
            if pad is not None:
                pad = torch.cat([pad.new_zeros(len(pad), 1), pad], dim=1)
        h = self.drop(h)
        for block in self.blocks:
            h = block(h, pad_mask=pad)[0]
        return self.norm(h), pad

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        h, pad = self.encode(x)
        if self.cls is not None:
            return h[:, 0]
        return masked_pool(h, None if pad is None else ~pad, self.pool)

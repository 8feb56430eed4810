"""Transformer encoder classifier (pre-norm, as in GPT-2/ViT), in one file.

    x = input layer (token embedding | per-step projection of a signal's channels) [-> Linear]
    x = x + positions                       (sinusoidal, Vaswani et al. 2017; or learned)
    x = [CLS] + x                           (pool=cls)
    repeat depth times:
        x = x + Dropout(SelfAttention(LayerNorm(x), key_padding_mask))
        x = x + Dropout(FFN(LayerNorm(x)))  FFN = Linear -> GELU -> Dropout -> Linear
    features = LayerNorm(x)[CLS] or the mean over real (non-pad) positions -> Linear head

Attention comes from ``layer_library(impl).MultiheadAttention(batch_first=True)``, so
``impl=scratch`` runs the from-scratch attention. Pads are masked as keys, so they never change
the real positions' outputs, and mean pooling skips them.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from dlbasics.errors import UserError
from dlbasics.models.base import Network, layer_library
from dlbasics.models.inputs import sequence_input
from dlbasics.spec import DataSpec


def sinusoidal_positions(max_len: int, dim: int) -> torch.Tensor:
    """(max_len, dim): PE[p, 2i] = sin(p / 10000^(2i/dim)), PE[p, 2i+1] = cos(same angle)."""
    position = torch.arange(max_len, dtype=torch.float64).unsqueeze(1)
    freq = torch.exp(-math.log(10000.0) * torch.arange(0, dim, 2, dtype=torch.float64) / dim)
    pe = torch.zeros(max_len, dim, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(position * freq)
    pe[:, 1::2] = torch.cos(position * freq)[:, : dim // 2]
    return pe.float()


class Block(nn.Module):
    """Pre-norm encoder block: self-attention and a feed-forward net, each in a residual branch."""

    def __init__(self, dim: int, heads: int, ff_dim: int, dropout: float, impl: str) -> None:
        super().__init__()
        lib = layer_library(impl)
        self.norm1 = nn.LayerNorm(dim)
        self.attn = lib.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.norm2 = nn.LayerNorm(dim)
        self.ff = nn.Sequential(lib.Linear(dim, ff_dim), nn.GELU(), lib.Dropout(dropout),
                                lib.Linear(ff_dim, dim))
        self.drop = lib.Dropout(dropout)

    def forward(self, x: torch.Tensor, pad_mask: torch.Tensor | None) -> torch.Tensor:
        h = self.norm1(x)
        a, _ = self.attn(h, h, h, key_padding_mask=pad_mask, need_weights=False)
        x = x + self.drop(a)
        return x + self.drop(self.ff(self.norm2(x)))


class TransformerClassifier(Network):
    input_kinds = frozenset({"tokens", "signal"})

    def __init__(
        self,
        spec: DataSpec,
        dim: int = 64,
        depth: int = 2,
        heads: int = 4,
        ff_mult: int = 4,
        dropout: float = 0.1,
        positional: str = "sinusoidal",
        pool: str = "cls",
        max_len: int = 512,
        embed_dim: int | None = None,
        pretrained_embeddings: str | None = None,
        freeze_embeddings: bool = False,
        signal_kernel: int = 1,
        impl: str = "torch",
    ) -> None:
        """
        Args:
            max_len: the longest sequence accepted (the size of the position table).
            embed_dim: width of the token embedding when it differs from ``dim`` (e.g. 100 for
                glove.6B.100d.txt); a linear layer then maps it to ``dim``.
            signal_kernel: signals only: 1 projects each step's channels; an odd k > 1 projects
                a window of k steps (a convolutional stem, see ``inputs.SignalProjection``).
        """
        super().__init__()
        self.check_spec(spec)
        if positional not in ("sinusoidal", "learned"):
            raise ValueError(f"model.positional must be 'sinusoidal' or 'learned', "
                             f"got {positional!r}")
        if pool not in ("cls", "mean"):
            raise ValueError(f"model.pool must be 'cls' or 'mean', got {pool!r}")
        if dim % heads:
            raise ValueError(f"model.dim={dim} must be divisible by model.heads={heads}")
        longest = spec.input_shape[-1]  # signals: L; tokens: the data's max_length (0: unbounded)
        if longest > max_len:
            what = "signals have" if spec.input_kind == "signal" else "data keeps up to"
            raise UserError(f"the {what} {longest} steps but model.max_len={max_len}: set "
                            f"model.max_len>={longest}.")
        lib = layer_library(impl)
        self.max_len, self.pool = max_len, pool
        embed_dim = embed_dim or dim
        self.inputs = sequence_input(spec, embed_dim, pretrained_embeddings, freeze_embeddings,
                                     impl, signal_kernel)
        self.in_proj = lib.Linear(embed_dim, dim) if embed_dim != dim else nn.Identity()
        if positional == "learned":
            self.pos = nn.Parameter(torch.zeros(max_len, dim))
            nn.init.normal_(self.pos, std=0.02)
        else:
            self.register_buffer("pos", sinusoidal_positions(max_len, dim), persistent=False)
        self.cls = None
        if pool == "cls":  # a small random start, as in ViT (LayerNorm of an all-zero row is flat)
            self.cls = nn.Parameter(torch.zeros(1, 1, dim))
            nn.init.normal_(self.cls, std=0.02)
        self.drop = lib.Dropout(dropout)
        self.blocks = nn.ModuleList(Block(dim, heads, ff_mult * dim, dropout, impl)
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
        h = self.in_proj(seq) + self.pos[:length].to(seq.dtype)
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
            h = block(h, pad)
        return self.norm(h), pad

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        h, pad = self.encode(x)
        if self.cls is not None:
            return h[:, 0]
        if pad is None:
            return h.mean(1)
        real = (~pad).unsqueeze(-1)
        return (h * real).sum(1) / real.sum(1)

"""Pieces shared by the Transformer networks: the block, position encodings and masked pooling.

One pre-norm block (as in GPT-2, ViT and the pre-LN Transformer) serves the encoder classifier,
the causal language model and both sides of the seq2seq Transformer::

    x = x + Dropout(SelfAttention(LN(x)))          padding masked; causal for decoders
    x = x + Dropout(CrossAttention(LN(x), memory)) decoder blocks of an encoder-decoder only
    x = x + Dropout(FFN(LN(x)))                    FFN = Linear -> act -> Dropout -> Linear

Attention is ``layer_library(impl).MultiheadAttention``: ``torch.nn``'s or the one written from
scratch in ``dlbasics.scratch.attention``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from dlbasics.models.base import Activation, Impl, activation, layer_library


def sinusoidal_positions(max_len: int, dim: int) -> Tensor:
    """(max_len, dim): PE[p, 2i] = sin(p / 10000^(2i/dim)), PE[p, 2i+1] = cos(same angle)."""
    position = torch.arange(max_len, dtype=torch.float64).unsqueeze(1)
    freq = torch.exp(-math.log(10000.0) * torch.arange(0, dim, 2, dtype=torch.float64) / dim)
    pe = torch.zeros(max_len, dim, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(position * freq)
    pe[:, 1::2] = torch.cos(position * freq)[:, : dim // 2]
    return pe.float()


class Positions(nn.Module):
    """Position vectors ``(length, dim)`` for positions ``start .. start + length - 1``:
    ``sinusoidal`` (Vaswani et al. 2017: a fixed buffer, not saved) or ``learned`` (a parameter)."""

    def __init__(self, kind: str, max_len: int, dim: int) -> None:
        super().__init__()
        if kind == "learned":
            self.table = nn.Parameter(torch.empty(max_len, dim))
            nn.init.normal_(self.table, std=0.02)
        elif kind == "sinusoidal":
            self.register_buffer("table", sinusoidal_positions(max_len, dim), persistent=False)
        else:
            raise ValueError(f"model.positional must be 'sinusoidal' or 'learned', got {kind!r}")
        self.max_len = max_len

    def forward(self, length: int, start: int = 0) -> Tensor:
        if start + length > self.max_len:
            raise ValueError(f"{start + length} positions exceed the {self.max_len} this model "
                             f"was built for (its max_len / block_size)")
        return self.table[start : start + length]


class FeedForward(nn.Module):
    def __init__(self, dim: int, hidden: int, dropout: float, act: Activation, bias: bool,
                 impl: Impl) -> None:
        super().__init__()
        lib = layer_library(impl)
        self.fc = lib.Linear(dim, hidden, bias=bias)
        self.act = activation(act)
        self.drop = lib.Dropout(dropout)
        self.proj = lib.Linear(hidden, dim, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(self.drop(self.act(self.fc(x))))


class TransformerBlock(nn.Module):
    """A pre-norm Transformer block; ``cross=True`` adds attention over an encoder's memory."""

    def __init__(self, dim: int, heads: int, ff_dim: int, dropout: float = 0.0,
                 act: Activation = "gelu", bias: bool = True, cross: bool = False,
                 impl: Impl = "torch") -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"the width {dim} must be divisible by the number of heads {heads}")
        lib = layer_library(impl)
        self.ln_self = nn.LayerNorm(dim, bias=bias)
        self.self_attn = lib.MultiheadAttention(dim, heads, dropout=dropout, bias=bias,
                                                batch_first=True)
        self.cross_attn = None
        if cross:
            self.ln_cross = nn.LayerNorm(dim, bias=bias)
            self.cross_attn = lib.MultiheadAttention(dim, heads, dropout=dropout, bias=bias,
                                                     batch_first=True)
        self.ln_ff = nn.LayerNorm(dim, bias=bias)
        self.ff = FeedForward(dim, ff_dim, dropout, act, bias, impl)
        self.drop = lib.Dropout(dropout)

    def forward(self, x: Tensor, pad_mask: Tensor | None = None, causal: bool = False,
                past: Tensor | None = None, memory: Tensor | None = None,
                memory_pad_mask: Tensor | None = None, need_weights: bool = False
                ) -> tuple[Tensor, Tensor, Tensor | None]:
        """x (B, T, D) -> (x, cache, cross-attention weights (B, T, S) averaged over heads).

        ``pad_mask`` (B, T) / ``memory_pad_mask`` (B, S): True at padding. ``past`` (B, t, D):
        this block's normalised inputs at earlier positions when ``x`` holds only the new ones
        (incremental decoding); ``cache`` is the same for all t + T positions, the next ``past``.
        """
        h = self.ln_self(x)
        kv = h if past is None else torch.cat([past, h], dim=1)
        t, n = kv.size(1) - x.size(1), x.size(1)
        mask = None
        if causal and n > 1:  # query i is position t + i: it sees keys 0 .. t + i
            mask = torch.ones(n, t + n, dtype=torch.bool, device=x.device).triu(t + 1)
        a, _ = self.self_attn(h, kv, kv, key_padding_mask=pad_mask, attn_mask=mask,
                              need_weights=False, is_causal=mask is not None and t == 0)
        x = x + self.drop(a)
        weights = None
        if self.cross_attn is not None and memory is not None:
            h = self.ln_cross(x)
            a, weights = self.cross_attn(h, memory, memory, key_padding_mask=memory_pad_mask,
                                         need_weights=need_weights)
            x = x + self.drop(a)
        return x + self.drop(self.ff(self.ln_ff(x))), kv, weights


def masked_pool(h: Tensor, valid: Tensor | None, how: str) -> Tensor:
    """Mean or max of (B, L, D) over the steps where ``valid`` (B, L) is True (all if None)."""
    if valid is None:
        return h.mean(1) if how == "mean" else h.amax(1)
    real = valid.unsqueeze(-1)
    if how == "mean":
        return (h * real).sum(1) / real.sum(1).clamp(min=1)
    return h.masked_fill(~real, float("-inf")).amax(1)

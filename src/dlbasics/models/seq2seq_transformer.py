"""Transformer encoder-decoder (Vaswani et al. 2017), pre-LayerNorm, with the seq2seq interface.

encoder block: x + SelfAttn(LN(x))  (source padding masked)  ->  x + FFN(LN(x))
decoder block: y + CausalSelfAttn(LN(y))  ->  y + CrossAttn(LN(y), memory)  ->  y + FFN(LN(y))
embeddings * sqrt(d_model) + sinusoidal positions; a final LayerNorm on each side.

Decoding runs one new token per step through the decoder, caching each block's inputs at the
earlier positions (the keys/values of causal self-attention), and reports the last decoder
block's cross-attention, averaged over heads, as the attention of each output token.

``teacher_forcing < 1`` is two-pass scheduled sampling (Mihaylova & Liu 2019): a first pass
without gradients predicts every position, and each decoder input is then the gold token with
probability ``teacher_forcing``, else that prediction.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from dlbasics.models.base import layer_library
from dlbasics.models.seq2seq import Memory, Seq2SeqNetwork
from dlbasics.spec import DataSpec


def sinusoidal_positions(max_len: int, dim: int) -> Tensor:
    """PE[p, 2i] = sin(p / 10000^(2i/d)), PE[p, 2i+1] = cos(p / 10000^(2i/d))."""
    pos = torch.arange(max_len, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    pe = torch.zeros(max_len, dim)
    pe[:, 0::2] = torch.sin(pos * freq)
    pe[:, 1::2] = torch.cos(pos * freq[: dim // 2])
    return pe


class Block(nn.Module):
    """Pre-LN transformer block; ``cross=True`` adds attention over the encoder's memory."""

    def __init__(self, dim: int, heads: int, ff: int, dropout: float, lib: Any,
                 cross: bool = False) -> None:
        super().__init__()
        self.ln_self = nn.LayerNorm(dim)
        self.self_attn = lib.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.cross_attn = None
        if cross:
            self.ln_cross = nn.LayerNorm(dim)
            self.cross_attn = lib.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.ln_ff = nn.LayerNorm(dim)
        self.ff = nn.Sequential(lib.Linear(dim, ff), nn.ReLU(), lib.Dropout(dropout),
                                lib.Linear(ff, dim))
        self.drop = lib.Dropout(dropout)

    def forward(self, x: Tensor, pad_mask: Tensor | None = None, causal: Tensor | None = None,
                memory: Memory | None = None, need_weights: bool = False,
                past: Tensor | None = None) -> tuple[Tensor, Tensor | None, Tensor]:
        """pad_mask/causal: True where attention is NOT allowed. ``past`` (B, t, D): this block's
        normalised inputs at earlier positions, when ``x`` holds only the new ones (incremental
        decoding). Returns x, the cross-attention weights (B, T, S) averaged over heads when
        asked, and the normalised inputs of all positions (the next step's ``past``)."""
        h = self.ln_self(x)
        kv = h if past is None else torch.cat([past, h], dim=1)
        x = x + self.drop(self.self_attn(h, kv, kv, key_padding_mask=pad_mask, attn_mask=causal,
                                         need_weights=False)[0])
        weights = None
        if self.cross_attn is not None and memory is not None:
            h = self.ln_cross(x)
            a, weights = self.cross_attn(h, memory["values"], memory["values"],
                                         key_padding_mask=~memory["mask"],
                                         need_weights=need_weights)
            x = x + self.drop(a)
        return x + self.drop(self.ff(self.ln_ff(x))), weights, kv


class TransformerSeq2Seq(Seq2SeqNetwork):
    def __init__(
        self,
        spec: DataSpec,
        d_model: int = 128,
        nhead: int = 4,
        num_encoder_layers: int = 2,
        num_decoder_layers: int = 2,
        dim_feedforward: int = 256,
        dropout: float = 0.1,
        max_len: int = 512,
        impl: str = "torch",
    ) -> None:
        """``max_len``: the longest source or target (in tokens, <sos>/<eos> included)."""
        super().__init__(spec)
        lib = layer_library(impl)
        self.d_model = d_model
        self.src_embed = nn.Embedding(spec.vocab_size, d_model, padding_idx=self.src_pad)
        self.tgt_embed = nn.Embedding(spec.tgt_vocab_size, d_model, padding_idx=self.tgt_pad)
        self.register_buffer("positions", sinusoidal_positions(max_len, d_model),
                             persistent=False)
        self.drop = lib.Dropout(dropout)
        self.encoder = nn.ModuleList(Block(d_model, nhead, dim_feedforward, dropout, lib)
                                     for _ in range(num_encoder_layers))
        self.decoder = nn.ModuleList(Block(d_model, nhead, dim_feedforward, dropout, lib,
                                           cross=True) for _ in range(num_decoder_layers))
        self.ln_enc = nn.LayerNorm(d_model)
        self.ln_dec = nn.LayerNorm(d_model)
        self.head = lib.Linear(d_model, spec.tgt_vocab_size)

    def _embed(self, embed: nn.Embedding, ids: Tensor, start: int = 0) -> Tensor:
        """Token embeddings of positions start, start + 1, ..."""
        end = start + ids.size(1)
        if end > len(self.positions):
            raise ValueError(f"a sequence of {end} tokens is longer than "
                             f"model.max_len={len(self.positions)}")
        return self.drop(embed(ids) * math.sqrt(self.d_model) + self.positions[start:end])

    def encode(self, src: Tensor) -> tuple[Memory, Any]:
        mask = src != self.src_pad
        x = self._embed(self.src_embed, src)
        for block in self.encoder:
            x, _, _ = block(x, pad_mask=~mask)
        return {"values": self.ln_enc(x), "mask": mask}, None

    def _decode(self, tgt_in: Tensor, memory: Memory, need_weights: bool = False
                ) -> tuple[Tensor, Tensor | None]:
        """tgt_in (B, T) -> logits (B, T, V) and the last block's cross-attention (B, T, S)."""
        t = tgt_in.size(1)
        causal = torch.ones(t, t, dtype=torch.bool, device=tgt_in.device).triu(1)
        y = self._embed(self.tgt_embed, tgt_in)
        weights = None
        for i, block in enumerate(self.decoder):
            last = i == len(self.decoder) - 1
            y, weights, _ = block(y, causal=causal, memory=memory,
                                  need_weights=need_weights and last)
        return self.head(self.ln_dec(y)), weights

    def decode_step(self, prefix: Tensor, state: Any, memory: Memory
                    ) -> tuple[Tensor, Any, Tensor | None]:
        """Only the newest token runs through the decoder: ``state`` caches every block's
        normalised inputs at the earlier positions (keys and values of causal self-attention),
        so a step costs O(t) instead of rerunning the prefix."""
        past = state or [None] * len(self.decoder)
        y = self._embed(self.tgt_embed, prefix[:, -1:], start=prefix.size(1) - 1)
        cache, weights = [], None
        for i, block in enumerate(self.decoder):
            y, weights, kv = block(y, memory=memory, past=past[i],
                                   need_weights=i == len(self.decoder) - 1)
            cache.append(kv)
        return self.head(self.ln_dec(y))[:, -1], cache, weights[:, -1]  # type: ignore[index]

    def reorder_state(self, state: Any, index: Tensor) -> Any:
        return None if state is None else [kv.index_select(0, index) for kv in state]

    def forward(self, src: Tensor, tgt_in: Tensor, teacher_forcing: float = 1.0) -> Tensor:
        memory, _ = self.encode(src)
        if teacher_forcing < 1.0:
            with torch.no_grad():
                pred = self.next_token(self._decode(tgt_in, memory)[0])
            sampled = torch.cat([tgt_in[:, :1], pred[:, :-1]], dim=1)  # prediction of position t
            gold = torch.rand(tgt_in.shape, device=tgt_in.device) < teacher_forcing
            gold[:, 0] = True
            tgt_in = torch.where(gold | (tgt_in == self.tgt_pad), tgt_in, sampled)
        return self._decode(tgt_in, memory)[0]

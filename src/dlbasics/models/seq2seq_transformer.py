"""Transformer encoder-decoder (Vaswani et al. 2017), pre-LayerNorm, with the seq2seq interface.

encoder block: x + SelfAttn(LN(x))  (source padding masked)  ->  x + FFN(LN(x))
decoder block: y + CausalSelfAttn(LN(y))  ->  y + CrossAttn(LN(y), memory)  ->  y + FFN(LN(y))
embeddings * sqrt(d_model) + sinusoidal positions; a final LayerNorm on each side.

Decoding runs only the newest token through the decoder at each step (O(t), not a rerun of the
prefix), caching each block's normalised inputs at the earlier positions (the keys/values of causal
self-attention), and reports the last decoder block's cross-attention, averaged over heads, as
the attention of each output token.

``teacher_forcing < 1`` is two-pass scheduled sampling (Mihaylova & Liu 2019): a first pass
without gradients predicts every position, and each decoder input is then the gold token with
probability ``teacher_forcing``, else that prediction.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from dlbasics.models.base import Impl, layer_library
from dlbasics.models.blocks import Positions, TransformerBlock
from dlbasics.models.encoder_decoder import EncoderDecoder, Memory
from dlbasics.spec import DataSpec


class TransformerSeq2Seq(EncoderDecoder):
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
        impl: Impl = "torch",
    ) -> None:
        """``max_len``: the longest source or target (in tokens, <sos>/<eos> included)."""
        super().__init__(spec)
        lib = layer_library(impl)
        self.d_model = d_model
        self.src_embed = nn.Embedding(spec.vocab_size, d_model, padding_idx=self.src_pad)
        self.tgt_embed = nn.Embedding(spec.tgt_vocab_size, d_model, padding_idx=self.tgt_pad)
        self.positions = Positions("sinusoidal", max_len, d_model)
        self.drop = lib.Dropout(dropout)
        self.encoder = nn.ModuleList(
            TransformerBlock(d_model, nhead, dim_feedforward, dropout, act="relu", impl=impl)
            for _ in range(num_encoder_layers))
        self.decoder = nn.ModuleList(
            TransformerBlock(d_model, nhead, dim_feedforward, dropout, act="relu", cross=True,
                             impl=impl) for _ in range(num_decoder_layers))
        self.ln_enc = nn.LayerNorm(d_model)
        self.ln_dec = nn.LayerNorm(d_model)
        self.head = lib.Linear(d_model, spec.tgt_vocab_size)

    def _embed(self, embed: nn.Embedding, ids: Tensor, start: int = 0) -> Tensor:
        """Token embeddings of positions start, start + 1, ..."""
        pos = self.positions(ids.size(1), start)
        return self.drop(embed(ids) * math.sqrt(self.d_model) + pos)

    def encode(self, src: Tensor) -> tuple[Memory, Any]:
        mask = src != self.src_pad
        x = self._embed(self.src_embed, src)
        for block in self.encoder:
            x = block(x, pad_mask=~mask)[0]
        return {"values": self.ln_enc(x), "mask": mask}, None

    def _decode(self, tgt_in: Tensor, memory: Memory, past: list[Tensor] | None = None,
                need_weights: bool = False) -> tuple[Tensor, list[Tensor], Tensor | None]:
        """tgt_in (B, T) -> logits (B, T, V), each block's cache, and the last block's
        cross-attention (B, T, S). With ``past`` (the cache of the earlier positions), ``tgt_in``
        holds only the new tokens."""
        start = 0 if past is None else past[0].size(1)
        y = self._embed(self.tgt_embed, tgt_in, start)
        cache, weights = [], None
        for i, block in enumerate(self.decoder):
            y, kv, weights = block(y, causal=True, past=None if past is None else past[i],
                                   memory=memory["values"], memory_pad_mask=~memory["mask"],
                                   need_weights=need_weights and i == len(self.decoder) - 1)
            cache.append(kv)
        return self.head(self.ln_dec(y)), cache, weights

    def decode_step(self, prefix: Tensor, state: Any, memory: Memory
                    ) -> tuple[Tensor, Any, Tensor | None]:
        logits, cache, weights = self._decode(prefix[:, -1:], memory, state, need_weights=True)
        return logits[:, -1], cache, weights[:, -1]  # type: ignore[index]

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

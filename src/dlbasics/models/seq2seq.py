"""Encoder-decoder with attention (Bahdanau et al. 2015; Luong et al. 2015), in one file.

encoder: source embedding -> (bi)GRU/LSTM over the source -> memory (B, S, D), one vector per token
bridge:  the encoder's final states -> the decoder's initial state, ``tanh(W [h_fwd; h_bwd])``
decoder, one target token per step, with attention over the memory (padding masked out):

    bahdanau (additive):   c_t = attend(s_{t-1});  s_t = RNN([emb(y_{t-1}); c_t], s_{t-1})
                           score(q, k_j) = v^T tanh(W_q q + W_k k_j)
    luong (multiplicative): s_t = RNN(emb(y_{t-1}), s_{t-1});  c_t = attend(s_t)
                           score(q, k_j) = q^T W k_j ("general")  or  q^T k_j ("dot")
    none (Cho et al. 2014): c = the bridged final encoder state, the same for every step: the
                           whole sentence must squeeze through one fixed-size vector.

    output: logits_t = head(tanh(W_o [s_t; c_t (; emb(y_{t-1}))]))

Teacher forcing: during training the decoder reads the gold previous token with probability
``teacher_forcing`` (per step and sentence) and its own prediction otherwise (scheduled sampling).
Luong and ``none`` decoders read nothing computed after the RNN, so with full teacher forcing the
whole target runs through the RNN in one call (identical to stepping; a test checks it).

Decoding (greedy, beam search) comes from ``encoder_decoder.EncoderDecoder``.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import Tensor, nn

from dlbasics.models.base import Impl, layer_library, run_rnn
from dlbasics.models.encoder_decoder import EncoderDecoder, Memory
from dlbasics.spec import DataSpec

CELLS = {"gru": "GRU", "lstm": "LSTM"}


class Attention(nn.Module):
    """Scores of a query against every memory vector -> softmax over real tokens -> context."""

    def __init__(self, kind: str, dim: int, lib: Any) -> None:
        super().__init__()
        self.kind = kind
        if kind == "additive":
            self.w_q = lib.Linear(dim, dim, bias=False)
            self.w_k = lib.Linear(dim, dim)
            self.v = lib.Linear(dim, 1, bias=False)
        elif kind == "general":
            self.w_k = lib.Linear(dim, dim, bias=False)
        elif kind != "dot":
            raise ValueError(f"attention score must be additive, general or dot, got {kind!r}")

    def keys(self, values: Tensor) -> Tensor:
        """Query-independent part of the scores, computed once per source sentence."""
        return values if self.kind == "dot" else self.w_k(values)

    def forward(self, query: Tensor, memory: Memory) -> tuple[Tensor, Tensor]:
        """query (B, T, D) -> context (B, T, D), weights (B, T, S) summing to 1 over real tokens."""
        keys = memory["keys"]
        if self.kind == "additive":
            scores = self.v(torch.tanh(self.w_q(query)[:, :, None] + keys[:, None])).squeeze(-1)
        else:
            scores = query @ keys.transpose(1, 2)
        scores = scores.masked_fill(~memory["mask"][:, None], float("-inf"))
        weights = scores.softmax(-1)
        return weights @ memory["values"], weights


class Seq2Seq(EncoderDecoder):
    def __init__(
        self,
        spec: DataSpec,
        cell: Literal["gru", "lstm"] = "gru",
        attention: Literal["bahdanau", "luong", "none"] = "bahdanau",
        luong_score: Literal["general", "dot"] = "general",
        embed_dim: int = 64,
        hidden: int = 128,
        num_layers: int = 1,
        bidirectional: bool = True,
        dropout: float = 0.1,
        impl: Impl = "torch",
    ) -> None:
        """
        Args:
            attention: ``bahdanau`` | ``luong`` | ``none``.
            luong_score: ``general`` (q^T W k) or ``dot`` (q^T k), for ``attention=luong``.
            hidden: encoder size per direction; the decoder's size is the memory's width,
                ``hidden * (2 if bidirectional else 1)``.
            dropout: on embeddings, between stacked layers, and before the output layer.
        """
        super().__init__(spec)
        lib = layer_library(impl)
        self.impl, self.cell, self.kind = impl, cell, attention
        dirs = 2 if bidirectional else 1
        dim = hidden * dirs
        rnn = getattr(lib, CELLS[cell])
        between = dropout if num_layers > 1 else 0.0
        self.src_embed = nn.Embedding(spec.vocab_size, embed_dim, padding_idx=self.src_pad)
        self.tgt_embed = nn.Embedding(spec.tgt_vocab_size, embed_dim, padding_idx=self.tgt_pad)
        self.drop = lib.Dropout(dropout)
        self.encoder = rnn(embed_dim, hidden, num_layers=num_layers, batch_first=True,
                           dropout=between, bidirectional=bidirectional)
        self.bridge = lib.Linear(dim, dim)
        if cell == "lstm":
            self.bridge_cell = lib.Linear(dim, dim)
        self.attention = None if attention == "none" else Attention(
            {"bahdanau": "additive", "luong": luong_score}[attention], dim, lib)
        reads_context = attention != "luong"  # the context enters the RNN (and the output)
        self.decoder = rnn(embed_dim + (dim if reads_context else 0), dim, num_layers=num_layers,
                           batch_first=True, dropout=between)
        self.combine = lib.Linear(2 * dim + (embed_dim if reads_context else 0), dim)
        self.head = lib.Linear(dim, spec.tgt_vocab_size)

    # ---- encoder --------------------------------------------------------------------------------
    def encode(self, src: Tensor) -> tuple[Memory, Any]:
        mask = src != self.src_pad
        x = self.drop(self.src_embed(src))  # (B, S, embed_dim)
        out, final = run_rnn(self.encoder, x, mask.sum(1), self.impl)  # out: (B, S, dim)
        if self.cell == "lstm":
            h, c = final
            state: Any = (torch.tanh(self.bridge(self._join(h))), self.bridge_cell(self._join(c)))
        else:
            state = torch.tanh(self.bridge(self._join(final)))
        memory = {"values": out, "mask": mask}
        if self.attention is not None:
            memory["keys"] = self.attention.keys(out)
        else:
            memory["context"] = self._top(state)
        return memory, state

    def _join(self, h: Tensor) -> Tensor:
        """(layers * dirs, B, H) -> (layers, B, dirs * H): both directions' final states."""
        layers = self.encoder.num_layers
        h = h.view(layers, -1, h.size(1), h.size(2))
        return torch.cat(list(h.unbind(1)), dim=-1)

    # ---- decoder --------------------------------------------------------------------------------
    def _top(self, state: Any) -> Tensor:
        return (state[0] if isinstance(state, tuple) else state)[-1]

    def _output(self, s: Tensor, ctx: Tensor, emb: Tensor) -> Tensor:
        feats = [s, ctx] + ([emb] if self.kind != "luong" else [])
        return self.head(self.drop(torch.tanh(self.combine(torch.cat(feats, -1)))))

    def _run_decoder(self, tgt_in: Tensor, state: Any, memory: Memory
                ) -> tuple[Tensor, Any, Tensor | None]:
        """Target tokens (B, T) after ``state`` -> logits (B, T, V), new state, attention
        (B, T, S) or None. ``bahdanau`` attends from the previous state: one token at a time."""
        emb = self.drop(self.tgt_embed(tgt_in))  # (B, T, E)
        attn = None
        if self.kind == "bahdanau":
            ctx, attn = self.attention(self._top(state)[:, None], memory)
            out, state = self.decoder(torch.cat([emb, ctx], -1), state)
        elif self.kind == "none":
            ctx = memory["context"][:, None].expand(-1, tgt_in.size(1), -1)
            out, state = self.decoder(torch.cat([emb, ctx], -1), state)
        else:
            out, state = self.decoder(emb, state)
            ctx, attn = self.attention(out, memory)
        return self._output(out, ctx, emb), state, attn

    def decode_step(self, prefix: Tensor, state: Any, memory: Memory
                    ) -> tuple[Tensor, Any, Tensor | None]:
        """The last token of ``prefix`` (B, t), after ``state`` -> logits (B, V), new state,
        attention (B, S) or None."""
        logits, state, attn = self._run_decoder(prefix[:, -1:], state, memory)
        return logits[:, 0], state, None if attn is None else attn[:, 0]

    def forward(self, src: Tensor, tgt_in: Tensor, teacher_forcing: float = 1.0) -> Tensor:
        """src (B, S), tgt_in (B, T) = <sos> y_1 ... -> logits (B, T, V) for y_1 ... <eos>."""
        memory, state = self.encode(src)
        if teacher_forcing >= 1.0 and self.kind != "bahdanau":  # all steps in one RNN call
            return self._run_decoder(tgt_in, state, memory)[0]
        logits, y = [], tgt_in[:, 0]
        for t in range(tgt_in.size(1)):
            out, state, _ = self.decode_step(y[:, None], state, memory)
            logits.append(out)
            if t + 1 < tgt_in.size(1):
                y = tgt_in[:, t + 1]
                if teacher_forcing < 1.0:
                    gold = torch.rand(y.shape, device=y.device) < teacher_forcing
                    y = torch.where(gold, y, self.next_token(out.detach()))
        return torch.stack(logits, dim=1)

"""Recurrent classifier: input layer -> (bi)RNN/LSTM/GRU stack -> pool over time -> linear head.

    x (B, L) ids | (B, C, L) signal -> inputs -> (B, L, embed_dim) -> dropout
      -> RNN stack -> outputs (B, L, hidden * dirs), final states (layers * dirs, B, hidden)
      -> pool: last (final states of the top layer) | mean | max (over real steps) -> dropout
      -> head -> (B, num_outputs)

Padding never changes a prediction: padded batches run as packed sequences (``impl=torch``) or
with the scratch layers' ``lengths=`` argument (the same semantics), and pooling is masked.
"""

from __future__ import annotations

from typing import Literal

import torch

from dlbasics.models.base import Impl, layer_library, run_rnn
from dlbasics.models.blocks import masked_pool
from dlbasics.models.sequence import SequenceClassifier
from dlbasics.spec import DataSpec

CELLS = {"rnn": "RNN", "lstm": "LSTM", "gru": "GRU"}


class RNNClassifier(SequenceClassifier):
    pools = ("last", "mean", "max")

    def __init__(
        self,
        spec: DataSpec,
        cell: Literal["rnn", "lstm", "gru"] = "lstm",
        embed_dim: int = 64,
        hidden: int = 128,
        num_layers: int = 1,
        dropout: float = 0.0,
        bidirectional: bool = False,
        pool: Literal["last", "mean", "max"] = "last",
        pretrained_embeddings: str | None = None,
        freeze_embeddings: bool = False,
        signal_kernel: int = 1,
        impl: Impl = "torch",
        word_dropout: float = 0.0,
    ) -> None:
        """``pool=last``: the final hidden state of the top layer (both directions' when
        bidirectional: the backward one has read the whole sequence back to its first token).
        See ``SequenceClassifier`` for the shared arguments."""
        super().__init__(spec, embed_dim, dropout, pool, pretrained_embeddings,
                         freeze_embeddings, signal_kernel, impl, word_dropout)
        if cell not in CELLS:
            raise ValueError(f"model.cell must be one of {sorted(CELLS)}, got {cell!r}")
        lib = layer_library(impl)
        self.rnn = getattr(lib, CELLS[cell])(
            embed_dim, hidden, num_layers=num_layers, batch_first=True,
            dropout=dropout if num_layers > 1 else 0.0, bidirectional=bidirectional,
        )
        self.num_directions = 2 if bidirectional else 1
        self.head = lib.Linear(hidden * self.num_directions, spec.num_outputs)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Top-layer outputs (B, L, H*dirs), final states h_n (layers*dirs, B, H), and the mask
        of the steps that were read (B, L) or None when nothing is padded."""
        seq, pad = self.inputs(x)
        seq = self.drop(seq)
        lengths, valid = None, None
        if pad is not None and pad.any():
            # an all-padding row (an empty text) reads one pad step: packing refuses length 0
            lengths = (~pad).sum(1).clamp(min=1)
            valid = torch.arange(pad.shape[1], device=pad.device) < lengths.unsqueeze(1)
            if (valid == pad)[:, 1:].any():
                raise ValueError("RNNClassifier expects right-padded sequences (pads at the end)")
        out, state = run_rnn(self.rnn, seq, lengths, self.impl)
        h_n = state[0] if isinstance(state, tuple) else state  # LSTM: (h_n, c_n)
        return out, h_n, valid

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        out, h_n, valid = self.encode(x)
        if self.pool == "last":  # the top layer's final state of each direction
            feats = torch.cat(list(h_n[-self.num_directions:]), dim=-1)
        else:
            feats = masked_pool(out, valid, self.pool)
        return self.drop(feats)

"""Recurrent classifier: input layer -> (bi)RNN/LSTM/GRU stack -> pool over time -> linear head.

Padding never changes a prediction: padded batches run as packed sequences (``impl=torch``) or with
the scratch layers' ``lengths=`` argument (the same semantics), and mean/max pooling are masked.
Token inputs get an embedding (optionally pretrained GloVe/word2vec vectors); signals (C, L) such
as MNIST-1D are L time steps of C features.
"""

from __future__ import annotations

import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from dlbasics.models.base import Network, layer_library
from dlbasics.models.inputs import sequence_input
from dlbasics.spec import DataSpec

CELLS = {"rnn": "RNN", "lstm": "LSTM", "gru": "GRU"}
POOLS = ("last", "mean", "max")


class RNNClassifier(Network):
    input_kinds = frozenset({"tokens", "signal"})

    def __init__(
        self,
        spec: DataSpec,
        cell: str = "lstm",
        embed_dim: int = 64,
        hidden: int = 128,
        num_layers: int = 1,
        dropout: float = 0.0,
        bidirectional: bool = False,
        pool: str = "last",
        pretrained_embeddings: str | None = None,
        freeze_embeddings: bool = False,
        signal_kernel: int = 1,
        impl: str = "torch",
    ) -> None:
        """
        Args:
            pool: ``last`` -> the final hidden state of the top layer (both directions' final
                states when bidirectional: the backward one has read the whole sequence back to
                its first token); ``mean``/``max`` -> over the top layer's outputs at real steps.
            dropout: on the inputs, between stacked layers, and on the pooled features.
            signal_kernel: signals only: 1 projects each step's channels; an odd k > 1 projects
                a window of k steps (a convolutional stem, see ``inputs.SignalProjection``).
        """
        super().__init__()
        self.check_spec(spec)
        if cell not in CELLS:
            raise ValueError(f"model.cell must be one of {sorted(CELLS)}, got {cell!r}")
        if pool not in POOLS:
            raise ValueError(f"model.pool must be one of {list(POOLS)}, got {pool!r}")
        lib = layer_library(impl)
        self.impl, self.pool = impl, pool
        self.inputs = sequence_input(spec, embed_dim, pretrained_embeddings, freeze_embeddings,
                                     impl, signal_kernel)
        self.drop = lib.Dropout(dropout)
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
        if lengths is None:
            out, state = self.rnn(seq)
        elif self.impl == "torch":
            packed = pack_padded_sequence(seq, lengths.cpu(), batch_first=True,
                                          enforce_sorted=False)
            out, state = self.rnn(packed)
            out, _ = pad_packed_sequence(out, batch_first=True, total_length=seq.shape[1])
        else:
            out, state = self.rnn(seq, lengths=lengths)
        h_n = state[0] if isinstance(state, tuple) else state  # LSTM: (h_n, c_n)
        return out, h_n, valid

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        out, h_n, valid = self.encode(x)
        if self.pool == "last":
            # the top layer's final state of each direction: forward, then backward
            feats = torch.cat(list(h_n[-self.num_directions:]), dim=-1)
        elif valid is None:
            feats = out.mean(1) if self.pool == "mean" else out.amax(1)
        else:
            real = valid.unsqueeze(-1)
            if self.pool == "mean":
                feats = (out * real).sum(1) / real.sum(1)
            else:
                feats = out.masked_fill(~real, float("-inf")).amax(1)
        return self.drop(feats)

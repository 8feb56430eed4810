"""What the sequence classifiers (``rnn``, ``transformer``) share: their input layer (token
embeddings, optionally pretrained, or a signal's per-step projection) and option checks.
"""

from __future__ import annotations

from typing import ClassVar

from dlbasics.models.base import Impl, Network, layer_library
from dlbasics.models.inputs import sequence_input
from dlbasics.spec import DataSpec


class SequenceClassifier(Network):
    """Base of networks reading a sequence (token ids (B, L) or a signal (B, C, L)).

    Args (shared by every subclass):
        embed_dim: width of each step's input vector (the vectors' size when pretrained).
        dropout: on the input sequence, inside the network, and on the pooled features.
        pool: how the steps become one feature vector; each subclass lists its ``pools``.
        pretrained_embeddings: a GloVe/word2vec text file to initialise the embedding (tokens).
        freeze_embeddings: keep those vectors fixed.
        word_dropout: tokens only: the probability that a training token is read as ``<unk>``.
        signal_kernel: signals only: 1 projects each step's channels; an odd k > 1 projects a
            window of k steps (a convolutional stem, see ``inputs.SignalProjection``).
        impl: ``torch`` or ``scratch`` layers.
    """

    input_kinds = frozenset({"tokens", "signal"})
    pools: ClassVar[tuple[str, ...]]

    def __init__(self, spec: DataSpec, embed_dim: int, dropout: float, pool: str,
                 pretrained_embeddings: str | None, freeze_embeddings: bool, signal_kernel: int,
                 impl: Impl, word_dropout: float = 0.0) -> None:
        super().__init__(spec)
        if pool not in self.pools:
            raise ValueError(f"model.pool must be one of {list(self.pools)}, got {pool!r}")
        self.pool, self.impl = pool, impl
        self.inputs = sequence_input(spec, embed_dim, pretrained_embeddings, freeze_embeddings,
                                     impl, signal_kernel, word_dropout)
        self.drop = layer_library(impl).Dropout(dropout)

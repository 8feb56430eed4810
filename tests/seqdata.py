"""Real inputs for the sequence-model tests: sentences numericalised with ``dlbasics.data.vocab``,
and MNIST-1D's ten digit templates as (1, L) signals."""

from __future__ import annotations

import torch

from dlbasics.data.vocab import Vocab, word_tokenize
from dlbasics.spec import DataSpec

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "A stitch in time saves nine.",
    "To be, or not to be: that is the question.",
    "Rain.",
    "All that glitters is not gold, and not all those who wander are lost.",
]


def vocab() -> Vocab:
    return Vocab.build(word_tokenize(s) for s in SENTENCES)


def token_spec(v: Vocab | None = None, num_classes: int = 3) -> DataSpec:
    v = v or vocab()
    return DataSpec(task="classification", input_kind="tokens", input_shape=(32,),
                    num_classes=num_classes, vocab_size=len(v), pad_index=v.pad_index,
                    vocab=tuple(v.itos))


def encoded(v: Vocab | None = None) -> list[torch.Tensor]:
    """Each sentence as a 1-D LongTensor of ids (lengths 2 to 17)."""
    v = v or vocab()
    return [torch.tensor(v.encode(word_tokenize(s))) for s in SENTENCES]


def pad_batch(seqs: list[torch.Tensor], pad_index: int = 0, extra: int = 0) -> torch.Tensor:
    """Right-pad to the longest sequence plus ``extra`` pads."""
    length = max(len(s) for s in seqs) + extra
    out = torch.full((len(seqs), length), pad_index, dtype=torch.long)
    for i, s in enumerate(seqs):
        out[i, : len(s)] = s
    return out


def signal_spec() -> DataSpec:
    return DataSpec(task="classification", input_kind="signal", input_shape=(1, 12),
                    num_classes=10, class_names=tuple(str(i) for i in range(10)))


def templates() -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST-1D's digit templates: (10, 1, 12) float64 signals and their labels 0..9."""
    from mnist1d.data import get_templates

    t = get_templates()
    return torch.from_numpy(t["x"]).unsqueeze(1), torch.from_numpy(t["y"])

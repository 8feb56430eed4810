"""Input layers shared by the sequence models: a (B, L, D) sequence plus its padding mask.

``tokens`` (B, L) ids  -> ``nn.Embedding`` rows, optionally initialised from a GloVe/word2vec text
file and frozen; the mask is True at ``spec.pad_index``.
``signal`` (B, C, L)   -> a linear map of the C channels at each time step (or of a window of steps:
a convolutional stem); no mask (signals are never padded).
"""

from __future__ import annotations

import gzip
import logging
import math
from pathlib import Path

import torch
from torch import nn

from dlbasics.data.vocab import EOS, PAD, SOS, UNK
from dlbasics.errors import UserError
from dlbasics.models.base import Impl, layer_library
from dlbasics.spec import DataSpec

log = logging.getLogger("dlbasics")
SPECIALS = frozenset({PAD, UNK, SOS, EOS})


def read_vectors(path: str | Path, words: set[str], dim: int) -> dict[str, torch.Tensor]:
    """``{word: vector}`` for the ``words`` found in a GloVe/word2vec text file (``.gz`` too).

    One ``word v1 ... vD`` per line; a word2vec header line ``N D`` is skipped. Only the lines of
    wanted words are parsed, so a 400k-word file costs one pass of string splits. The first
    occurrence of a word wins. Raises ``UserError`` when the file is missing or its vectors do not
    have ``dim`` numbers.
    """
    p = Path(path).expanduser()
    if not p.is_file():
        raise UserError(f"model.pretrained_embeddings={path}: no such file. Give the path to a "
                        f"GloVe/word2vec text file (e.g. glove.6B.100d.txt), or set it to null.")
    found: dict[str, torch.Tensor] = {}
    file_dim: int | None = None
    opener = gzip.open if p.suffix == ".gz" else open
    with opener(p, "rt", encoding="utf-8", errors="replace") as f:
        for n, line in enumerate(f):
            parts = line.rstrip().split(" ")
            if len(parts) < 2:
                continue
            if file_dim is None:  # the first line: a vector, or word2vec's "<num words> <dim>"
                header = n == 0 and len(parts) == 2 and all(s.isdigit() for s in parts)
                file_dim = int(parts[1]) if header else len(parts) - 1
                if file_dim != dim:
                    break
                if header:
                    continue
            if len(parts) <= file_dim:
                raise UserError(f"{p}, line {n + 1} has {len(parts) - 1} numbers, not {file_dim} "
                                f"(a truncated file?)")
            # a few GloVe releases hold "words" with spaces: the last file_dim fields are numbers
            word = " ".join(parts[: len(parts) - file_dim])
            if word in words and word not in found:
                try:
                    found[word] = torch.tensor([float(v) for v in parts[-file_dim:]])
                except ValueError:
                    raise UserError(
                        f"{p}, line {n + 1}: expected '<word> <{dim} numbers>'") from None
    if file_dim is None:
        raise UserError(f"model.pretrained_embeddings={path} holds no vectors.")
    if file_dim != dim:
        raise UserError(f"the vectors in {p} have dimension {file_dim}, but the embedding has "
                        f"{dim}: set model.embed_dim={file_dim}.")
    return found


class TokenEmbedding(nn.Module):
    """Token ids (B, L) -> embeddings (B, L, dim) and the padding mask (B, L), True at pads.

    ``word_dropout``: in training, each real token is read as ``<unk>`` with this probability
    (Iyyer et al. 2015's word dropout): on a few thousand short texts the network cannot then
    lean on single rare words, which is where it overfits first.
    """

    def __init__(
        self,
        spec: DataSpec,
        dim: int,
        pretrained: str | None = None,
        freeze: bool = False,
        word_dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.pad_index = int(spec.pad_index)  # type: ignore[arg-type]
        self.word_dropout = word_dropout
        if word_dropout and (spec.vocab is None or UNK not in spec.vocab):
            raise UserError("model.word_dropout needs a vocabulary with <unk> (spec.vocab): "
                            "set it to 0 for this data.")
        self.unk_index = spec.vocab.index(UNK) if word_dropout else -1  # type: ignore[union-attr]
        self.embedding = nn.Embedding(int(spec.vocab_size), dim,  # type: ignore[arg-type]
                                      padding_idx=self.pad_index)
        self.hit_rate: float | None = None
        if pretrained:
            self.load_pretrained(spec, pretrained)
        elif freeze:
            raise UserError("model.freeze_embeddings=true needs model.pretrained_embeddings "
                            "(freezing random embeddings would train nothing in that layer).")
        self.embedding.weight.requires_grad = not freeze

    @torch.no_grad()
    def load_pretrained(self, spec: DataSpec, path: str) -> None:
        """Copy the vectors of the vocabulary's words into their rows.

        A word is looked up as it is, then lower-cased (GloVe is lower-cased). Words missing
        from the file get random rows with the found vectors' scale (the N(0, 1)
        default would dwarf GloVe's ~0.4); the pad row stays 0. Logs the hit rate over the
        vocabulary's words (specials such as ``<unk>`` excluded).
        """
        if spec.vocab is None:
            raise UserError("model.pretrained_embeddings needs a data module whose spec carries "
                            "its vocabulary (spec.vocab).")
        weight = self.embedding.weight
        words = [w for w in spec.vocab if w not in SPECIALS]
        found = read_vectors(path, set(words) | {w.lower() for w in words}, weight.shape[1])
        if found:
            std = torch.stack(list(found.values())).std().item()
            weight.normal_(0.0, std if math.isfinite(std) and std > 0 else 1.0)
        hits = 0
        for i, w in enumerate(spec.vocab):
            vector = None if w in SPECIALS else found.get(w, found.get(w.lower()))
            if vector is not None:
                weight[i] = vector
                hits += 1
        weight[self.pad_index] = 0.0
        self.hit_rate = hits / max(1, len(words))
        log.info("pretrained embeddings %s: %d of %d vocabulary words found (%.1f%%)",
                 path, hits, len(words), 100 * self.hit_rate)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pad = x == self.pad_index
        if self.training and self.word_dropout:
            drop = (torch.rand(x.shape, device=x.device) < self.word_dropout) & ~pad
            x = x.masked_fill(drop, self.unk_index)
        return self.embedding(x), pad


class SignalProjection(nn.Module):
    """Signals (B, C, L) -> (B, L, dim): the C channels at each time step, linearly projected.

    ``kernel > 1`` projects a centred window of ``kernel`` steps instead (a 1-D convolution with
    ``dim`` filters, zero-padded so the length stays L): a convolutional stem, the sequence
    counterpart of ViT's patch embedding. A single-channel step alone is one number, so each
    step's vector is then more than a scaled copy of one direction.
    """

    def __init__(self, spec: DataSpec, dim: int, impl: Impl = "torch", kernel: int = 1) -> None:
        super().__init__()
        if kernel < 1 or kernel % 2 == 0:
            raise ValueError(f"model.signal_kernel must be odd and positive, got {kernel}")
        self.proj = layer_library(impl).Conv1d(spec.input_shape[0], dim, kernel,
                                               padding=kernel // 2)  # kernel 1: per-step Linear

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, None]:
        return self.proj(x).transpose(1, 2), None


def sequence_input(
    spec: DataSpec,
    dim: int,
    pretrained: str | None = None,
    freeze: bool = False,
    impl: Impl = "torch",
    signal_kernel: int = 1,
    word_dropout: float = 0.0,
) -> TokenEmbedding | SignalProjection:
    """The input layer for ``spec.input_kind`` (``tokens`` or ``signal``, all a sequence model
    accepts); its forward returns ``(sequence, pad_mask)``."""
    if spec.input_kind == "tokens":
        return TokenEmbedding(spec, dim, pretrained, freeze, word_dropout)
    if pretrained or freeze or word_dropout:
        raise UserError("model.pretrained_embeddings/freeze_embeddings/word_dropout apply to "
                        f"token inputs, but the data gives {spec.input_kind} inputs: set them to "
                        "null/false/0.")
    return SignalProjection(spec, dim, impl, signal_kernel)

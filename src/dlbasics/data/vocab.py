"""Tokenizers and a vocabulary shared by every text data module.

The vocabulary is built from the train split only; its state travels in checkpoints (through the
data module's ``state_dict``) so ``eval`` numericalises text exactly as training did.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence

PAD, UNK, SOS, EOS = "<pad>", "<unk>", "<sos>", "<eos>"
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?|[^\sa-z0-9]")


def word_tokenize(text: str) -> list[str]:
    """Lower-cased words, with punctuation marks as their own tokens."""
    return _WORD.findall(text.lower())


def char_tokenize(text: str) -> list[str]:
    return list(text)


TOKENIZERS = {"word": word_tokenize, "char": char_tokenize}


class Vocab:
    """index <-> token, with ``<pad>`` at 0 and ``<unk>`` at 1 (plus optional ``<sos>``/``<eos>``)."""

    def __init__(self, itos: Sequence[str]) -> None:
        self.itos = list(itos)
        self.stoi = {t: i for i, t in enumerate(self.itos)}
        if self.itos[:2] != [PAD, UNK]:
            raise ValueError("a Vocab starts with <pad>, <unk>")

    @classmethod
    def build(
        cls,
        token_lists: Iterable[Sequence[str]],
        min_freq: int = 1,
        max_size: int | None = None,
        specials: Sequence[str] = (),
    ) -> Vocab:
        """Most frequent first (ties broken alphabetically, so the result is deterministic)."""
        counts = Counter(t for tokens in token_lists for t in tokens)
        base = [PAD, UNK, *[s for s in specials if s not in (PAD, UNK)]]
        words = sorted((t for t, c in counts.items() if c >= min_freq and t not in base),
                       key=lambda t: (-counts[t], t))
        if max_size is not None:
            words = words[: max(0, max_size - len(base))]
        return cls(base + words)

    def __len__(self) -> int:
        return len(self.itos)

    @property
    def pad_index(self) -> int:
        return 0

    @property
    def unk_index(self) -> int:
        return 1

    def encode(self, tokens: Iterable[str]) -> list[int]:
        return [self.stoi.get(t, 1) for t in tokens]

    def decode(self, ids: Iterable[int]) -> list[str]:
        return [self.itos[i] for i in ids]

    def state_dict(self) -> dict[str, list[str]]:
        return {"itos": self.itos}

    @classmethod
    def from_state_dict(cls, state: dict[str, list[str]]) -> Vocab:
        return cls(state["itos"])

"""Tokenizers and the one vocabulary every token data module uses (text, characters, pairs).

A ``Vocab`` knows its tokenizer, so ``vocab.encode_text(text)`` numericalises raw text exactly as
training did. Vocabularies are built from the train split only and travel in checkpoints as the
data module's state, in one format (see ``DataModule.data_state``)::

    {"vocabs": {"tokens": {"itos": ["<pad>", "<unk>", ...], "tokenizer": "word"}}}    # text, chars
    {"vocabs": {"source": {...}, "target": {...}}}                                   # pairs
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import Any

PAD, UNK, SOS, EOS = "<pad>", "<unk>", "<sos>", "<eos>"
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?|[^\sa-z0-9]")
# Words in any script (with an inner apostrophe: "don't", "aujourd'hui") and every other
# non-space character as its own token: "Qu'est-ce ?" -> ["qu'est", "-", "ce", "?"].
_SENTENCE_TOKEN = re.compile(r"\w+(?:'\w+)*|[^\w\s]")
_QUOTES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u00ab": '"', "\u00bb": '"',
                         "\u201c": '"', "\u201d": '"'})
_GLUE_LEFT = set(",.!?;:)%")  # no space before these when detokenizing
_GLUE_BOTH = {"-", "'"}


def word_tokenize(text: str) -> list[str]:
    """Lower-cased English words, with punctuation marks as their own tokens."""
    return _WORD.findall(text.lower())


def char_tokenize(text: str) -> list[str]:
    return list(text)


def sentence_tokenize(text: str) -> list[str]:
    """Any language: lower-case, Unicode-normalise (NFC), split words from punctuation."""
    text = unicodedata.normalize("NFC", text).translate(_QUOTES).lower()
    return _SENTENCE_TOKEN.findall(text)


def detokenize(tokens: Sequence[str]) -> str:
    """``sentence_tokenize`` undone: "quatre - vingt - dix" -> "quatre-vingt-dix", "va !" -> "va!"."""
    out = ""
    for i, tok in enumerate(tokens):
        glue = i == 0 or tok in _GLUE_LEFT or tok in _GLUE_BOTH or tokens[i - 1] in _GLUE_BOTH
        out += tok if glue else " " + tok
    return out


def sentence_tokens(ids: Iterable[int], itos: Sequence[str]) -> list[str]:
    """A decoded target sentence: tokens up to ``<eos>``, without ``<sos>``/``<pad>``."""
    out = []
    for tok in (itos[int(i)] for i in ids):
        if tok == EOS:
            break
        if tok not in (SOS, PAD):
            out.append(tok)
    return out


TOKENIZERS: dict[str, Callable[[str], list[str]]] = {
    "word": word_tokenize, "char": char_tokenize, "sentence": sentence_tokenize}


class Vocab:
    """index <-> token, with ``<pad>`` at 0 and ``<unk>`` at 1 (plus optional ``<sos>``/``<eos>``)."""

    pad_index = 0
    unk_index = 1

    def __init__(self, itos: Sequence[str], tokenizer: str = "word") -> None:
        self.itos = list(itos)
        self.stoi = {t: i for i, t in enumerate(self.itos)}
        if self.itos[:2] != [PAD, UNK]:
            raise ValueError("a Vocab starts with <pad>, <unk>")
        if tokenizer not in TOKENIZERS:
            raise ValueError(f"tokenizer must be one of {sorted(TOKENIZERS)}, got {tokenizer!r}")
        self.tokenizer = tokenizer

    @classmethod
    def build(
        cls,
        token_lists: Iterable[Sequence[str]],
        min_freq: int = 1,
        max_size: int | None = None,
        specials: Sequence[str] = (),
        tokenizer: str = "word",
    ) -> Vocab:
        """Most frequent first (ties broken alphabetically, so the result is deterministic)."""
        counts = Counter(t for tokens in token_lists for t in tokens)
        base = [PAD, UNK, *[s for s in specials if s not in (PAD, UNK)]]
        words = sorted((t for t, c in counts.items() if c >= min_freq and t not in base),
                       key=lambda t: (-counts[t], t))
        if max_size is not None:
            words = words[: max(0, max_size - len(base))]
        return cls(base + words, tokenizer)

    def __len__(self) -> int:
        return len(self.itos)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocab) and (self.itos, self.tokenizer) == (other.itos,
                                                                            other.tokenizer)

    def tokenize(self, text: str) -> list[str]:
        return TOKENIZERS[self.tokenizer](text)

    def encode(self, tokens: Iterable[str]) -> list[int]:
        return [self.stoi.get(t, self.unk_index) for t in tokens]

    def encode_text(self, text: str) -> list[int]:
        return self.encode(self.tokenize(text))

    def decode(self, ids: Iterable[int]) -> list[str]:
        return [self.itos[i] for i in ids]

    def spec_fields(self, prefix: str = "") -> dict[str, Any]:
        """The ``DataSpec`` fields of this vocabulary (``prefix="tgt_"``: of the target's)."""
        return {f"{prefix}vocab_size": len(self), f"{prefix}pad_index": self.pad_index,
                f"{prefix}vocab": tuple(self.itos)}

    def state_dict(self) -> dict[str, Any]:
        return {"itos": list(self.itos), "tokenizer": self.tokenizer}

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> Vocab:
        return cls(state["itos"], state.get("tokenizer", "word"))

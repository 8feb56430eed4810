"""Translation data: (source sentence, target sentence) pairs for sequence-to-sequence models.

Every module yields batches ``(src, tgt)`` of padded LongTensors: ``src`` (B, S) holds the source
tokens, ``tgt`` (B, T) holds ``<sos> target tokens <eos>`` (the task feeds ``tgt[:, :-1]`` to the
decoder and predicts ``tgt[:, 1:]``). Both vocabularies are built on the TRAIN split only, with
``<pad>``=0, ``<unk>``=1, ``<sos>``, ``<eos>``; they are the module's saved state (``source`` and
``target`` in ``data_state()``), so ``eval``/``translate`` numericalise text as training did.

- ``NumberWords``: numbers written out by ``num2words`` in two languages (default English ->
  French), with a held-out RANGE of numbers for testing that never occurs in train or val.
- ``TabPairs``: the tab-separated sentence pairs of the Tatoeba-derived ``eng-fra.txt`` files.
"""

from __future__ import annotations

import copy
import shutil
import urllib.request
import zipfile
from collections import OrderedDict
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dlbasics.data.base import TokenDataModule, read_text
from dlbasics.data.batching import SequenceDataset
from dlbasics.data.splits import fixed_test_split
from dlbasics.data.vocab import EOS, PAD, SOS, UNK, Vocab, sentence_tokenize, sentence_tokens
from dlbasics.errors import MissingDataError, UserError

SPECIALS = (PAD, UNK, SOS, EOS)
Pair = tuple[list[str], list[str]]  # (source tokens, target tokens)


class PairDataModule(TokenDataModule):
    """Base of translation data modules. Subclasses implement ``read()`` returning
    ``{"train": [...], "val": [...], "test": [...]}`` lists of (source tokens, target tokens).

    Args:
        min_freq: tokens seen fewer times in train map to ``<unk>`` (per side).
        max_vocab: at most this many entries per vocabulary, specials included.
        bucket, bucket_pool: length-bucketed training batches (``TokenDataModule``).
    """

    task = "seq2seq"

    def __init__(self, min_freq: int = 1, max_vocab: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.min_freq, self.max_vocab = min_freq, max_vocab
        self._pairs: dict[str, list[Pair]] | None = None

    def read(self) -> dict[str, list[Pair]]:
        raise NotImplementedError

    @property
    def src_vocab(self) -> Vocab:
        return self.require_vocab("source")

    @property
    def tgt_vocab(self) -> Vocab:
        return self.require_vocab("target")

    # ---- text <-> ids ------------------------------------------------------------------------
    def encode_source(self, text: str) -> torch.Tensor:
        """One sentence -> source ids (an empty sentence becomes ``[<unk>]``)."""
        vocab = self.src_vocab
        return torch.tensor(vocab.encode_text(text) or [vocab.unk_index])

    def decode_target(self, ids: Sequence[int]) -> list[str]:
        """Target ids -> tokens, stopping at ``<eos>`` and skipping ``<sos>``/``<pad>``."""
        return sentence_tokens(ids, self.tgt_vocab.itos)

    # ---- splits, vocabularies, datasets ------------------------------------------------------
    def pairs(self) -> dict[str, list[Pair]]:
        """{"train", "val", "test"} -> token pairs: exactly what the model sees."""
        if self._pairs is None:
            self._pairs = self.read()
            if not self._pairs["train"]:
                raise UserError(f"{type(self).__name__}: no training pairs left after filtering")
        return self._pairs

    def build_datasets(self) -> tuple[SequenceDataset, ...]:
        splits = self.pairs()
        for side, name in enumerate(("source", "target")):
            if name not in self.vocabs:
                self.vocabs[name] = Vocab.build((p[side] for p in splits["train"]), self.min_freq,
                                                self.max_vocab, SPECIALS, tokenizer="sentence")
        return tuple(self._encode(splits[name]) for name in ("train", "val", "test"))

    def _encode(self, pairs: list[Pair]) -> SequenceDataset:
        src_vocab, tgt_vocab = self.src_vocab, self.tgt_vocab
        sos, eos = tgt_vocab.stoi[SOS], tgt_vocab.stoi[EOS]
        src = [torch.tensor(src_vocab.encode(s) or [src_vocab.unk_index]) for s, _ in pairs]
        tgt = [torch.tensor([sos, *tgt_vocab.encode(t), eos]) for _, t in pairs]
        return SequenceDataset(src, tgt)

    def describe(self) -> dict[str, Any]:
        return {"input_shape": (0,),  # lengths vary per batch
                **self.src_vocab.spec_fields(), **self.tgt_vocab.spec_fields("tgt_")}


# ---- number words ---------------------------------------------------------------------------


@cache
def _converter(lang: str, digits: int) -> Any:
    """num2words' converter for ``lang``, keeping only the number words below 10**digits.

    ``splitnum`` scans every number word of the language (up to 10**600 in French) for the
    largest one <= n: dropping those above n gives the same words about 10x faster.
    """
    from num2words import CONVERTER_CLASSES

    if lang not in CONVERTER_CLASSES:
        raise UserError(f"num2words has no language {lang!r}; choose one of "
                        f"{', '.join(sorted(CONVERTER_CLASSES))}")
    conv = copy.copy(CONVERTER_CLASSES[lang])
    if isinstance(getattr(conv, "cards", None), OrderedDict):
        conv.cards = OrderedDict((k, v) for k, v in conv.cards.items() if k < 10**digits)
    return conv


@cache
def number_words(n: int, lang: str) -> str:
    """``num2words(n, lang=lang)``: the cardinal number n written out in words."""
    return _converter(lang, len(str(n))).to_cardinal(n)


class NumberWords(PairDataModule):
    """Numbers written out in words, translated between two languages (offline, ``num2words``).

    Default English -> French, numbers 0..999,999, e.g.
    "two hundred and thirty-four thousand, five hundred and sixty-seven" ->
    "deux cent trente-quatre mille cinq cent soixante-sept".

    Held-out test range: the test set is drawn from ``test_range = [lo, hi)`` (default
    700,000..799,999) and no number in that range ever appears in train or val, so the model has
    to compose "seven hundred and ... thousand" from parts it saw elsewhere ("seven hundred",
    "six hundred and ... thousand") instead of recalling memorised pairs.

    Train and val numbers come from the rest of ``[0, max_number)`` without replacement, equally
    many of each length in digits (so all of 0..99 and most of 100..999 are present, the building
    blocks of every longer number); val is a seeded random part of those.
    """

    def __init__(
        self,
        src_lang: str = "en",
        tgt_lang: str = "fr",
        max_number: int = 1_000_000,
        test_range: Sequence[int] = (700_000, 800_000),
        n_train: int = 10_000,
        n_val: int = 1_000,
        n_test: int = 1_000,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if self.folds:
            raise UserError("data.folds: number words draw their validation numbers "
                            "(data.n_val), not folds: set data.folds=null")
        lo, hi = (int(v) for v in test_range)
        if not 0 <= lo < hi <= max_number:
            raise UserError(f"data.test_range must satisfy 0 <= lo < hi <= max_number "
                            f"({max_number}), got [{lo}, {hi})")
        self.src_lang, self.tgt_lang = src_lang, tgt_lang
        self.max_number, self.test_range = max_number, (lo, hi)
        self.n_train, self.n_val, self.n_test = n_train, n_val, n_test

    def split_numbers(self) -> dict[str, np.ndarray]:
        """{"train", "val", "test"} -> the numbers of each split (disjoint; test in test_range)."""
        lo, hi = self.test_range
        rng = np.random.default_rng(self.seed)
        pool = np.arange(self.max_number)
        pool = pool[(pool < lo) | (pool >= hi)]
        n = self.n_train + self.n_val
        if n > len(pool) or self.n_test > hi - lo:
            raise UserError(f"asked for {n} train+val numbers (pool {len(pool)}) and "
                            f"{self.n_test} test numbers (range {hi - lo}): lower n_train/n_val/"
                            f"n_test or widen the range")
        # Weighted sampling without replacement (Efraimidis-Spirakis: top-n of u^(1/w)), with
        # weights 1/(how many pool numbers share this digit count): each length equally likely.
        digits = np.searchsorted(10 ** np.arange(1, 19), pool, side="right") + 1
        weight = 1.0 / np.bincount(digits)[digits]
        keys = np.log(rng.random(len(pool))) / weight
        chosen = rng.permutation(pool[np.argpartition(-keys, n - 1)[:n]])
        # a fixed seed for test: runs with other seeds are scored on the same numbers
        test = np.random.default_rng(0).choice(np.arange(lo, hi), size=self.n_test, replace=False)
        return {"train": chosen[self.n_val:], "val": chosen[: self.n_val], "test": test}

    def read(self) -> dict[str, list[Pair]]:
        return {
            split: [(sentence_tokenize(number_words(int(x), self.src_lang)),
                     sentence_tokenize(number_words(int(x), self.tgt_lang))) for x in numbers]
            for split, numbers in self.split_numbers().items()
        }


# ---- tab-separated sentence pairs -----------------------------------------------------------

PYTORCH_TUTORIAL_DATA = "https://download.pytorch.org/tutorial/data.zip"  # holds data/eng-fra.txt


def read_tab_pairs(path: Path) -> list[tuple[str, str]]:
    """``source<TAB>target[<TAB>attribution...]`` per line (the Tatoeba/manythings.org format).

    Extra columns (the CC-BY attribution of manythings' ``fra.txt``) are ignored; blank lines
    and lines without a tab are skipped.
    """
    out = []
    for line in read_text(path).splitlines():
        cols = line.split("\t")
        if len(cols) >= 2 and cols[0].strip() and cols[1].strip():
            out.append((cols[0].strip(), cols[1].strip()))
    return out


class TabPairs(PairDataModule):
    """Sentence pairs from a tab-separated file such as Tatoeba's ``eng-fra.txt`` (English first).

    The file is ``path`` if given, else ``<data_dir>/<filename>``. Get it from
    https://www.manythings.org/anki/ (``fra-eng.zip`` -> ``fra.txt``, three columns) or the PyTorch
    tutorial's ``data.zip`` (``data/eng-fra.txt``, two columns; ``download: true`` fetches that).

    Args:
        reverse: translate from the second column to the first (e.g. French -> English).
        max_len: keep pairs whose both sides have at most this many tokens.
        prefixes: keep only pairs whose normalised source starts with one of these (e.g. the
            PyTorch tutorial's "i am", "he is", ...); ``null`` keeps all.
        max_pairs: keep the first ``max_pairs`` pairs after filtering (``null``: all).
        test_fraction: share of distinct SOURCE sentences held out for test (val_fraction of the
            rest for validation): every translation of a sentence lands in the same split, so a
            test sentence is never seen in training with another translation.
    """

    def __init__(
        self,
        path: str | None = None,
        filename: str = "eng-fra.txt",
        reverse: bool = False,
        max_len: int = 10,
        prefixes: Sequence[str] | None = None,
        max_pairs: int | None = None,
        test_fraction: float = 0.1,
        download: bool = False,
        url: str = PYTORCH_TUTORIAL_DATA,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.path = Path(path).expanduser() if path else Path(self.data_dir) / filename
        self.reverse, self.max_len, self.max_pairs = reverse, max_len, max_pairs
        self.prefixes = tuple(tuple(sentence_tokenize(p)) for p in prefixes or ())
        self.test_fraction, self.download, self.url = test_fraction, download, url

    def _fetch(self) -> None:
        """Download the zip at ``url`` (the PyTorch tutorial's data.zip) and extract the member
        named ``<filename>`` (``data/eng-fra.txt`` there) to the expected path."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".zip.part")
        try:
            with urllib.request.urlopen(self.url, timeout=60) as response, open(tmp, "wb") as f:
                shutil.copyfileobj(response, f)
            with zipfile.ZipFile(tmp) as z:
                members = [m for m in z.namelist() if Path(m).name == self.path.name]
                if not members:
                    raise MissingDataError(f"{self.url} holds no {self.path.name}")
                with z.open(members[0]) as src, open(self.path, "wb") as dst:
                    shutil.copyfileobj(src, dst)
        except (OSError, zipfile.BadZipFile) as err:
            raise MissingDataError(f"could not download {self.url} ({err}); put the file at "
                                   f"{self.path} by hand") from None
        finally:
            tmp.unlink(missing_ok=True)

    def read(self) -> dict[str, list[Pair]]:
        if not self.path.is_file() and self.download:
            self._fetch()
        if not self.path.is_file():
            raise MissingDataError(
                f"data=tab_pairs needs the sentence-pair file {self.path}: get fra-eng.zip from "
                f"https://www.manythings.org/anki/ and save its fra.txt as {self.path} (or pass "
                f"data.path=/path/to/eng-fra.txt, or data.download=true for the PyTorch "
                f"tutorial's copy)")
        pairs = []
        for a, b in read_tab_pairs(self.path):
            src, tgt = sentence_tokenize(a), sentence_tokenize(b)
            if self.reverse:
                src, tgt = tgt, src
            if not src or not tgt or len(src) > self.max_len or len(tgt) > self.max_len:
                continue
            if self.prefixes and not any(tuple(src[: len(p)]) == p for p in self.prefixes):
                continue
            pairs.append((src, tgt))
        pairs = pairs[: self.max_pairs]
        if not pairs:
            raise UserError(f"{self.path} has no pair left with at most data.max_len="
                            f"{self.max_len} tokens per side (and the given prefixes)")
        return self._split(pairs)

    def _split(self, pairs: list[Pair]) -> dict[str, list[Pair]]:
        """Split by distinct source sentence: every translation of a sentence lands in the same
        split, so a test sentence is never seen in training with another translation."""
        sources = sorted({tuple(s) for s, _ in pairs})
        rest, test = fixed_test_split(len(sources), self.test_fraction)
        train, val = self.split_train_val(len(rest))
        split_of = {sources[i]: "test" for i in test}
        split_of.update({sources[i]: "val" for i in rest[val]})
        split_of.update({sources[i]: "train" for i in rest[train]})
        out: dict[str, list[Pair]] = {"train": [], "val": [], "test": []}
        for s, t in pairs:
            out[split_of[tuple(s)]].append((s, t))
        return out

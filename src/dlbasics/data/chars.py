"""Character-level language-modelling corpora: Tiny Shakespeare and Python's own documentation.

One contiguous text is split in order into train / val / test (90/5/5 by default), so no window of
the evaluation text was seen in training. The character vocabulary comes from the train part only
(unseen characters become ``<unk>``). Training draws random windows of ``block_size + 1``
characters (a fixed, seeded number per epoch, as nanoGPT's ``get_batch`` does); val/test read the
split as consecutive non-overlapping windows, so every character is predicted exactly once.
A batch is ``(x, y)``, both long ``(B, block_size)``, with ``y`` = ``x`` shifted left by one.

Corpora:
    ``shakespeare``: Tiny Shakespeare (karpathy/char-rnn, 1,115,394 chars, public domain). Read
        from ``<data_dir>/tinyshakespeare/input.txt``; when absent it is downloaded there (if
        ``download``), else the byte-identical copy shipped in ``dlbasics/data/corpora`` is used.
        With the default split, train is exactly nanoGPT's train split (its first 90%); nanoGPT's
        val split (the last 10%) is our val + test.
    ``pydoc``: the text of Python's ``help()`` topics (``pydoc_data.topics``, ~465k chars; it
        changes with the Python version), joined in sorted topic order. Always offline.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import urllib.request
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import torch
from torch.utils.data import Dataset, Sampler

from dlbasics.data.base import DataModule, read_text
from dlbasics.data.batching import RandomWindowSampler
from dlbasics.data.vocab import Vocab, char_tokenize
from dlbasics.errors import MissingDataError, UserError

log = logging.getLogger(__name__)

SHAKESPEARE_URL = ("https://raw.githubusercontent.com/karpathy/char-rnn/master/data/"
                   "tinyshakespeare/input.txt")
SHAKESPEARE_SHA256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"
CORPORA = ("shakespeare", "pydoc")


def packaged_shakespeare() -> str:
    """The copy of Tiny Shakespeare shipped inside the package (gzip, byte-identical to the URL)."""
    ref = resources.files("dlbasics.data") / "corpora" / "tinyshakespeare.txt.gz"
    return gzip.decompress(ref.read_bytes()).decode("utf-8")


def download_shakespeare(path: Path, timeout: float = 20.0) -> None:
    """Fetch input.txt from its public URL, check its SHA-256, and write it to ``path``."""
    with urllib.request.urlopen(SHAKESPEARE_URL, timeout=timeout) as response:
        raw = response.read()
    if hashlib.sha256(raw).hexdigest() != SHAKESPEARE_SHA256:
        raise OSError(f"{SHAKESPEARE_URL} did not return the expected file (SHA-256 mismatch)")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(raw)


def pydoc_text() -> str:
    from pydoc_data.topics import topics

    return "\n\n".join(topics[key].strip("\n") for key in sorted(topics)) + "\n"


class CharWindows(Dataset):
    """Windows ``ids[o : o + block_size + 1]`` as ``(x, y) = (w[:-1], w[1:])``.

    ``stride=1`` gives every offset (train, drawn at random by a sampler); ``stride=block_size``
    gives consecutive non-overlapping windows (val/test).
    """

    def __init__(self, ids: torch.Tensor, block_size: int, stride: int) -> None:
        if len(ids) < block_size + 1:
            raise UserError(f"a split of {len(ids)} characters is shorter than one window of "
                            f"block_size + 1 = {block_size + 1}: lower data.block_size or use a "
                            f"longer corpus")
        self.ids, self.block_size, self.stride = ids, block_size, stride

    def __len__(self) -> int:
        return (len(self.ids) - self.block_size - 1) // self.stride + 1

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        w = self.ids[i * self.stride : i * self.stride + self.block_size + 1]
        return w[:-1], w[1:]


class CharCorpus(DataModule):
    """A character corpus for causal language modelling (see the module docstring)."""

    input_kind = "tokens"
    task = "language_model"

    def __init__(
        self,
        corpus: Literal["shakespeare", "pydoc"] = "shakespeare",
        block_size: int = 64,
        samples_per_epoch: int = 3000,
        test_fraction: float = 0.05,
        download: bool = True,
        *,
        val_fraction: float = 0.05,
        **kwargs: Any,
    ) -> None:
        """
        Args:
            corpus: ``shakespeare`` or ``pydoc``.
            block_size: characters of context per training window (the model's context length).
            samples_per_epoch: random training windows per epoch (batches = this / batch_size).
            val_fraction, test_fraction: the last fractions of the text, in that order.
            download: fetch Tiny Shakespeare into ``data_dir`` when it is not there.
        """
        super().__init__(val_fraction=val_fraction, **kwargs)
        if self.folds:
            raise UserError("data.folds: a character corpus is split contiguously (train, then "
                            "val, then test), not into folds: set data.folds=null")
        if corpus not in CORPORA:
            raise ValueError(f"data.corpus must be one of {list(CORPORA)}, got {corpus!r}")
        if not (val_fraction > 0 and test_fraction > 0 and val_fraction + test_fraction < 1):
            raise ValueError("data.val_fraction and data.test_fraction must be > 0 and sum to < 1")
        self.corpus, self.block_size = corpus, block_size
        self.samples_per_epoch, self.test_fraction = samples_per_epoch, test_fraction
        self.download = download
        self._text: str | None = None

    # ---- the text and its vocabulary --------------------------------------------------------
    @property
    def path(self) -> Path:
        return Path(self.data_dir) / "tinyshakespeare" / "input.txt"

    def prepare_data(self) -> None:
        if self.corpus == "shakespeare" and self.download and not self.path.is_file():
            try:
                download_shakespeare(self.path)
                log.info("downloaded Tiny Shakespeare to %s", self.path)
            except OSError as err:
                log.info("could not download Tiny Shakespeare (%s); using the packaged copy", err)

    def text(self) -> str:
        if self._text is None:
            self._text = self._read()
        return self._text

    def _read(self) -> str:
        if self.corpus == "pydoc":
            return pydoc_text()
        path = self.path
        if path.is_file():
            return read_text(path)
        try:
            return packaged_shakespeare()
        except FileNotFoundError as err:  # a broken install
            raise MissingDataError(f"{path} is missing and the packaged copy of Tiny Shakespeare "
                                   f"was not installed: reinstall dlbasics") from err

    def split_bounds(self) -> tuple[int, int, int]:
        """Character offsets where train ends, val ends and test ends (= len(text))."""
        n = len(self.text())
        val_end = n - round(n * self.test_fraction)
        return val_end - round(n * self.val_fraction), val_end, n

    def describe(self) -> dict[str, Any]:
        return {"input_shape": (self.block_size,), **self.vocab.spec_fields()}

    # ---- datasets and loaders ------------------------------------------------------------------
    def build_datasets(self) -> tuple[CharWindows, ...]:
        train_end, val_end, n = self.split_bounds()
        if "tokens" not in self.vocabs:
            self.vocabs["tokens"] = Vocab.build([char_tokenize(self.text()[:train_end])],
                                                tokenizer="char")
        ids = torch.tensor(self.vocab.encode(char_tokenize(self.text())), dtype=torch.long)
        return (CharWindows(ids[:train_end], self.block_size, stride=1),
                CharWindows(ids[train_end:val_end], self.block_size, stride=self.block_size),
                CharWindows(ids[val_end:n], self.block_size, stride=self.block_size))

    def train_sampler(self, dataset: Dataset) -> Sampler:
        # windows drawn with replacement, a fixed number per epoch, seeded by (seed, epoch)
        return RandomWindowSampler(dataset, self.samples_per_epoch, seed=self.seed)  # type: ignore[arg-type]

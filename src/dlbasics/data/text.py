"""The text-classification pipeline shared by every text data module.

raw text -> tokens (word-level lower-cased, or characters) -> ids from a vocabulary built on the
TRAIN split only (``min_freq``, ``max_size``; unseen tokens map to ``<unk>``) -> optional
``max_length`` truncation -> batches padded with ``<pad>`` to the longest sequence in the batch.

Training batches are length-bucketed: indices are shuffled (seeded), cut into pools of
``bucket_pool`` batches, sorted by length inside each pool and the resulting batches shuffled,
so each batch holds similar lengths (little padding) while the epoch order stays random.

The vocabulary is the data module's ``state_dict()``: Lightning saves it in every checkpoint, and
``load_state_dict()`` makes ``spec``/``setup()`` reuse it instead of rebuilding it (``eval``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

import numpy as np
import torch
from torch.nn.utils.rnn import pad_sequence
from torch.utils.data import DataLoader, Dataset, Sampler

from dlbasics.data.base import DataModule, stratified_split
from dlbasics.data.vocab import TOKENIZERS, Vocab
from dlbasics.errors import UserError
from dlbasics.spec import DataSpec

Split = tuple[list[str], np.ndarray]  # (texts, int labels)


class TokenDataset(Dataset):
    """Variable-length id sequences (each a 1-D LongTensor) with integer labels."""

    def __init__(self, ids: list[torch.Tensor], labels: np.ndarray) -> None:
        self.ids = ids
        self.labels = torch.as_tensor(labels, dtype=torch.long)
        self.lengths = np.array([len(x) for x in ids], dtype=np.int64)

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.ids[i], self.labels[i]


def pad_collate(
    batch: Sequence[tuple[torch.Tensor, torch.Tensor]], pad_index: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """[(ids (L_i,), label)] -> (ids (B, max L_i) padded with ``pad_index``, labels (B,))."""
    ids, labels = zip(*batch)
    return pad_sequence(list(ids), batch_first=True, padding_value=pad_index), torch.stack(labels)


class BucketBatchSampler(Sampler[list[int]]):
    """Batches of indices with similar lengths, in a seeded random order that changes per epoch.

    Every index appears exactly once per epoch. Epoch ``e`` uses the generator seed
    ``seed + e``; Lightning calls ``set_epoch`` and each full pass also advances the epoch,
    so plain loops get a new order every epoch too.
    """

    def __init__(
        self, lengths: Sequence[int], batch_size: int, seed: int = 0, pool: int = 50
    ) -> None:
        self.lengths = np.asarray(lengths)
        self.batch_size = batch_size
        self.seed = seed
        self.pool = pool
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return -(-len(self.lengths) // self.batch_size)

    def batches(self, epoch: int) -> list[list[int]]:
        rng = np.random.default_rng(self.seed + epoch)
        order = rng.permutation(len(self.lengths))
        size = self.batch_size * self.pool
        out: list[list[int]] = []
        for start in range(0, len(order), size):
            chunk = order[start:start + size]
            chunk = chunk[np.argsort(self.lengths[chunk], kind="stable")]
            out += [chunk[i:i + self.batch_size].tolist()
                    for i in range(0, len(chunk), self.batch_size)]
        return [out[i] for i in rng.permutation(len(out))]

    def __iter__(self) -> Iterator[list[int]]:
        epoch = self.epoch
        yield from self.batches(epoch)
        self.epoch = epoch + 1


class TextClassification(DataModule):
    """Base of text-classification data modules.

    Subclasses set ``class_names`` and implement ``read()`` -> {"train": (texts, labels),
    "test": (texts, labels)}; a seeded, stratified ``val_fraction`` of train becomes validation.

    Args:
        tokenizer: ``word`` (lower-cased words and punctuation) or ``char`` (characters as is).
        min_freq: keep train tokens seen at least this often; the rest map to ``<unk>``.
        max_size: at most this many entries, ``<pad>`` and ``<unk>`` included (most frequent).
        max_length: keep the first ``max_length`` tokens of each text; ``null``: keep them all.
            The spec's ``input_shape`` is ``(max_length,)``, or ``(0,)`` when unbounded: the
            length varies per batch either way (batches are padded to their longest text).
        bucket: group training batches by length (less padding); false: plain shuffling.
        bucket_pool: how many batches are length-sorted together (larger: less padding, less
            randomness in which texts share a batch).
    """

    input_kind = "tokens"
    task = "classification"
    class_names: ClassVar[tuple[str, ...]]

    def __init__(
        self,
        tokenizer: str = "word",
        min_freq: int = 1,
        max_size: int | None = None,
        max_length: int | None = None,
        bucket: bool = True,
        bucket_pool: int = 50,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if tokenizer not in TOKENIZERS:
            raise UserError(f"data.tokenizer must be one of {sorted(TOKENIZERS)}, "
                            f"got {tokenizer!r}")
        if max_length is not None and max_length < 1:
            raise UserError(f"data.max_length must be positive or null, got {max_length}")
        self.tokenizer = tokenizer
        self.min_freq = min_freq
        self.max_size = max_size
        self.max_length = max_length
        self.bucket = bucket
        self.bucket_pool = bucket_pool
        self.vocab: Vocab | None = None
        self._splits: dict[str, Split] | None = None
        self._encoded: dict[str, TokenDataset] | None = None

    # ---- what subclasses implement --------------------------------------------------------------
    def read(self) -> dict[str, Split]:
        raise NotImplementedError

    # ---- raw text, tokens, vocabulary -----------------------------------------------------------
    def raw_splits(self) -> dict[str, Split]:
        """{"train", "val", "test"} -> (texts, labels): exactly the texts the model sees."""
        if self._splits is None:
            data = self.read()
            texts, labels = data["train"]
            # at least one text per class (tiny files), otherwise sklearn's ceil(fraction * n)
            n_val = max(math.ceil(self.val_fraction * len(labels)), len(self.class_names))
            keep, val = stratified_split(labels, len(labels), n_val, self.seed)
            self._splits = {
                "train": ([texts[i] for i in keep], labels[keep]),
                "val": ([texts[i] for i in val], labels[val]),
                "test": data["test"],
            }
        return self._splits

    def tokenize(self, text: str) -> list[str]:
        return TOKENIZERS[self.tokenizer](text)

    def build_vocab(self) -> Vocab:
        texts, _ = self.raw_splits()["train"]
        return Vocab.build((self.tokenize(t) for t in texts), self.min_freq, self.max_size)

    def encode(self, text: str) -> torch.Tensor:
        """Token ids of one text, truncated to ``max_length``; an empty text becomes ``[<unk>]``
        (recurrent layers cannot read zero-length sequences)."""
        assert self.vocab is not None
        ids = self.vocab.encode(self.tokenize(text))[: self.max_length] or [self.vocab.unk_index]
        return torch.tensor(ids, dtype=torch.long)

    def _ensure_vocab(self) -> Vocab:
        if self.vocab is None:
            self.vocab = self.build_vocab()
        return self.vocab

    @property
    def spec(self) -> DataSpec:
        vocab = self._ensure_vocab()
        return DataSpec(
            task="classification", input_kind="tokens", input_shape=(self.max_length or 0,),
            num_classes=len(self.class_names), class_names=tuple(self.class_names),
            vocab_size=len(vocab), pad_index=vocab.pad_index, vocab=tuple(vocab.itos),
        )

    # ---- datasets and loaders -------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        if self._encoded is None:
            self._ensure_vocab()
            self._encoded = {
                name: TokenDataset([self.encode(t) for t in texts], labels)
                for name, (texts, labels) in self.raw_splits().items()
            }
        self.train_set = self._encoded["train"]
        self.val_set = self._encoded["val"]
        self.test_set = self._encoded["test"]

    def collate_fn(self, batch):
        return pad_collate(batch, self._ensure_vocab().pad_index)

    def train_dataloader(self) -> DataLoader:
        if not self.bucket:
            return super().train_dataloader()
        if self.train_set is None:
            raise RuntimeError(f"{type(self).__name__}.setup() has not been called")
        sampler = BucketBatchSampler(self.train_set.lengths, self.batch_size, self.seed,
                                     self.bucket_pool)
        return DataLoader(self.train_set, batch_sampler=sampler, collate_fn=self.collate_fn,
                          num_workers=self.num_workers, persistent_workers=self.num_workers > 0,
                          pin_memory=self.pin_memory)

    # ---- the vocabulary travels in checkpoints --------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        if self.vocab is None:
            return {}
        return {"tokenizer": self.tokenizer, **self.vocab.state_dict()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if not state_dict:
            return
        if state_dict.get("tokenizer", self.tokenizer) != self.tokenizer:
            raise UserError(f"the saved vocabulary is {state_dict['tokenizer']}-level but "
                            f"data.tokenizer={self.tokenizer}; use the checkpoint's tokenizer")
        vocab = Vocab.from_state_dict(state_dict)
        if self.vocab is None or vocab.itos != self.vocab.itos:
            self.vocab = vocab
            self._encoded = None  # re-encode with the restored vocabulary
            if self.train_set is not None:
                self.setup()

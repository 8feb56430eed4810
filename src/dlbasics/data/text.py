"""The text-classification pipeline shared by every text data module.

raw text -> tokens (word-level lower-cased, or characters) -> ids from a vocabulary built on the
TRAIN split only (``min_freq``, ``max_size``; unseen tokens map to ``<unk>``) -> optional
``max_length`` truncation -> batches padded with ``<pad>`` to the longest sequence in the batch.
Training batches are length-bucketed (``data.batching.BucketBatchSampler``).
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np
import torch
from torch.utils.data import BatchSampler, Dataset, Sampler

from dlbasics.data.base import DataModule
from dlbasics.data.batching import BucketBatchSampler, SequenceDataset, pad_collate
from dlbasics.data.vocab import TOKENIZERS, Vocab
from dlbasics.errors import UserError

Split = tuple[list[str], np.ndarray]  # (texts, int labels)


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
        bucket_pool: how many batches are length-sorted together.
    """

    input_kind = "tokens"
    task = "classification"
    class_names: ClassVar[tuple[str, ...]]

    def __init__(
        self,
        tokenizer: Literal["word", "char"] = "word",
        min_freq: int = 1,
        max_size: int | None = None,
        max_length: int | None = None,
        bucket: bool = True,
        bucket_pool: int = 50,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if tokenizer not in ("word", "char"):
            raise UserError(f"data.tokenizer must be 'word' or 'char', got {tokenizer!r}")
        if max_length is not None and max_length < 1:
            raise UserError(f"data.max_length must be positive or null, got {max_length}")
        self.tokenizer = tokenizer
        self.min_freq, self.max_size, self.max_length = min_freq, max_size, max_length
        self.bucket, self.bucket_pool = bucket, bucket_pool
        self._splits: dict[str, Split] | None = None

    def read(self) -> dict[str, Split]:
        raise NotImplementedError

    @property
    def vocab(self) -> Vocab:
        return self.require_vocab()

    def raw_splits(self) -> dict[str, Split]:
        """{"train", "val", "test"} -> (texts, labels): exactly the texts the model sees."""
        if self._splits is None:
            data = self.read()
            texts, labels = data["train"]
            keep, val = self.split_train_val(len(labels), labels)
            self._splits = {"train": ([texts[i] for i in keep], labels[keep]),
                            "val": ([texts[i] for i in val], labels[val]),
                            "test": data["test"]}
        return self._splits

    def encode(self, text: str) -> torch.Tensor:
        """Token ids of one text, truncated to ``max_length``; an empty text becomes ``[<unk>]``
        (recurrent layers cannot read zero-length sequences)."""
        vocab = self.vocab
        ids = vocab.encode_text(text)[: self.max_length] or [vocab.unk_index]
        return torch.tensor(ids, dtype=torch.long)

    def build_datasets(self) -> tuple[SequenceDataset, ...]:
        splits = self.raw_splits()
        if "tokens" not in self.vocabs:
            tokenize = TOKENIZERS[self.tokenizer]
            self.vocabs["tokens"] = Vocab.build((tokenize(t) for t in splits["train"][0]),
                                                self.min_freq, self.max_size,
                                                tokenizer=self.tokenizer)
        elif self.vocab.tokenizer != self.tokenizer:
            raise UserError(f"the saved vocabulary is {self.vocab.tokenizer}-level but "
                            f"data.tokenizer={self.tokenizer}; use the checkpoint's tokenizer")
        return tuple(SequenceDataset([self.encode(t) for t in texts],
                                     torch.as_tensor(labels, dtype=torch.long))
                     for texts, labels in (splits[k] for k in ("train", "val", "test")))

    def describe(self) -> dict[str, Any]:
        vocab = self.vocab
        return {"input_shape": (self.max_length or 0,), "num_classes": len(self.class_names),
                "class_names": tuple(self.class_names), "vocab_size": len(vocab),
                "pad_index": vocab.pad_index, "vocab": tuple(vocab.itos)}

    def collate_fn(self, batch: Any) -> Any:
        return pad_collate(batch, self.vocab.pad_index)

    def train_sampler(self, dataset: Dataset) -> Sampler | BatchSampler:
        sampler = super().train_sampler(dataset)
        if not self.bucket:
            return sampler
        return BucketBatchSampler(sampler, self.batch_size, lengths=dataset.lengths,  # type: ignore[attr-defined]
                                  pool=self.bucket_pool, seed=self.seed)

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

from dlbasics.data.base import TokenDataModule
from dlbasics.data.batching import SequenceDataset
from dlbasics.data.vocab import TOKENIZERS, Vocab
from dlbasics.errors import UserError

Split = tuple[list[str], np.ndarray]  # (texts, int labels)


class TextClassification(TokenDataModule):
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
        bucket, bucket_pool: length-bucketed training batches (``TokenDataModule``).
    """

    task = "classification"
    class_names: ClassVar[tuple[str, ...]]

    def __init__(
        self,
        tokenizer: Literal["word", "char"] = "word",
        min_freq: int = 1,
        max_size: int | None = None,
        max_length: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.tokenizer = tokenizer
        self.min_freq, self.max_size, self.max_length = min_freq, max_size, max_length
        self._splits: dict[str, Split] | None = None

    def read(self) -> dict[str, Split]:
        raise NotImplementedError

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
        return {"input_shape": (self.max_length or 0,), "num_classes": len(self.class_names),
                "class_names": tuple(self.class_names), **self.vocab.spec_fields()}

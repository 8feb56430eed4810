"""DataSpec: what a data module tells a model, so `model=X data=Y` composes without hand-written sizes."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

Task = Literal["classification", "regression", "language_model", "seq2seq"]
InputKind = Literal["image", "vector", "signal", "tokens"]


@dataclass(frozen=True)
class DataSpec:
    """Shapes and sizes a network needs, computed by the data module before any model exists.

    input_kind:
        ``image``  -> float (C, H, W);  ``vector`` -> float (F,);
        ``signal`` -> float (C, L), a real-valued sequence with C channels;
        ``tokens`` -> long (L,) of token ids, padded with ``pad_index``; L may vary per batch.
    """

    task: Task
    input_kind: InputKind
    input_shape: tuple[int, ...]
    num_classes: int | None = None
    num_targets: int | None = None
    vocab_size: int | None = None
    pad_index: int | None = None
    class_names: tuple[str, ...] | None = None
    vocab: tuple[str, ...] | None = None  # index -> token, for pretrained embeddings and decoding
    # seq2seq only: the target side's vocabulary (the source side uses vocab_size/pad_index).
    tgt_vocab_size: int | None = None
    tgt_pad_index: int | None = None
    tgt_vocab: tuple[str, ...] | None = None
    # regression only: the data module standardises targets; metrics are reported in original units.
    target_mean: tuple[float, ...] | None = None
    target_std: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if self.task == "classification" and not self.num_classes:
            raise ValueError("a classification spec needs num_classes")
        if self.task == "regression" and not self.num_targets:
            raise ValueError("a regression spec needs num_targets")
        if self.input_kind == "tokens" and (self.vocab_size is None or self.pad_index is None):
            raise ValueError("a token spec needs vocab_size and pad_index")

    @property
    def num_outputs(self) -> int:
        """Width of the network's last layer."""
        if self.task == "classification":
            return int(self.num_classes)  # type: ignore[arg-type]
        if self.task == "regression":
            return int(self.num_targets)  # type: ignore[arg-type]
        return int(self.tgt_vocab_size or self.vocab_size)  # type: ignore[arg-type]

    @property
    def input_dim(self) -> int:
        """Number of input features when the input is flattened (images, vectors, signals)."""
        return math.prod(self.input_shape)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DataSpec:
        d = dict(d)
        for key in ("input_shape", "class_names", "vocab", "tgt_vocab", "target_mean", "target_std"):
            if d.get(key) is not None:
                d[key] = tuple(d[key])
        return cls(**d)

"""The LightningModules: ``LitModule`` (classification, regression) and its subclasses for
language modelling and seq2seq, one per ``DataSpec.task``."""

from __future__ import annotations

from dlbasics.lit.base import LitModule
from dlbasics.lit.language_model import LitLanguageModel
from dlbasics.lit.seq2seq import LitSeq2Seq

LIT_MODULES: dict[str, type[LitModule]] = {
    "classification": LitModule,
    "regression": LitModule,
    "language_model": LitLanguageModel,
    "seq2seq": LitSeq2Seq,
}

__all__ = ["LIT_MODULES", "LitLanguageModel", "LitModule", "LitSeq2Seq"]

"""Causal language modelling: predict every next token of a window.

The loss is the mean cross-entropy (nats per token) over all positions; ``bpc`` re-expresses it in
bits (loss / ln 2: bits per character for a character model) and ``ppl`` is exp(loss). Both are
torchmetrics accumulated over every token of the epoch, so val/test values are exact averages
over the split rather than means of per-batch values.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torchmetrics
from torch.nn import functional as F
from torchmetrics.text import Perplexity

from dlbasics.lit.base import LitModule


class BitsPerToken(Perplexity):
    """Mean negative log2-likelihood per token: log2(perplexity), from the same running sums."""

    def compute(self) -> torch.Tensor:
        return self.total_log_probs / self.count / math.log(2)


class LitLanguageModel(LitModule):
    """Cross-entropy over all positions; metrics ``bpc`` and ``ppl`` per stage."""

    def build_metrics(self) -> torchmetrics.MetricCollection:
        pad = self.spec.pad_index
        return torchmetrics.MetricCollection({"bpc": BitsPerToken(ignore_index=pad),
                                              "ppl": Perplexity(ignore_index=pad)})

    def forward_batch(self, batch: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor,
                                                  torch.Tensor]:
        x, y = batch
        logits = self(x)  # (B, T, V)
        loss = F.cross_entropy(logits.flatten(0, 1), y.flatten(), ignore_index=self.spec.pad_index,
                               label_smoothing=self.label_smoothing)
        n_tokens = (y != self.spec.pad_index).sum()  # weights the epoch mean of the loss
        return loss, logits.detach(), y, n_tokens

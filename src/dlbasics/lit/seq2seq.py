"""Sequence-to-sequence training: teacher-forced cross-entropy, scored on what the model generates.

Batches are ``(src, tgt)`` with ``tgt = <sos> y_1 ... y_n <eos>`` (padded). The decoder reads
``tgt[:, :-1]`` and predicts ``tgt[:, 1:]``; the loss ignores target padding. Validation and test
decode greedily (no gold tokens) and report:

- ``exact_match``: share of sentences whose generated tokens equal the reference exactly;
- ``bleu``: corpus BLEU-4 (torchmetrics ``BLEUScore``, 0..1) of the generated tokens.

``test_beam_size > 1`` also scores beam search at test time (``test/beam_exact_match``,
``test/beam_bleu``), so one run reports greedy and beam side by side.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torchmetrics
from torch import Tensor, nn
from torch.nn import functional as F
from torchmetrics.text import BLEUScore

from dlbasics.data.vocab import sentence_tokens
from dlbasics.lit.base import LitModule
from dlbasics.spec import DataSpec


class ExactMatch(torchmetrics.Metric):
    """Share of predictions equal to one of their references (strings compared as they are)."""

    higher_is_better = True
    full_state_update = False

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.add_state("correct", torch.tensor(0.0), dist_reduce_fx="sum")
        self.add_state("total", torch.tensor(0.0), dist_reduce_fx="sum")

    def update(self, preds: Sequence[str], target: Sequence[Sequence[str]]) -> None:
        self.correct += sum(p in refs for p, refs in zip(preds, target, strict=True))
        self.total += len(preds)

    def compute(self) -> Tensor:
        return self.correct / self.total.clamp(min=1)


def sequence_metrics() -> torchmetrics.MetricCollection:
    return torchmetrics.MetricCollection({"exact_match": ExactMatch(), "bleu": BLEUScore(n_gram=4)})


class LitSeq2Seq(LitModule):
    def __init__(self, net: nn.Module, spec: DataSpec, *, teacher_forcing: float = 1.0,
                 test_beam_size: int = 1, length_penalty: float = 1.0, **options: Any) -> None:
        """
        Args:
            teacher_forcing: probability that the decoder reads the gold previous token during
                training (1: always; lower: scheduled sampling from the model's own predictions).
            test_beam_size: > 1 also scores beam search of this width on the test set.
            length_penalty: beam score = sum log p / length ** length_penalty.
            options: those of ``LitModule`` (optimizer, scheduler, l1, label_smoothing).
        """
        super().__init__(net, spec, **options)
        self.teacher_forcing = teacher_forcing
        self.test_beam_size = test_beam_size
        self.length_penalty = length_penalty
        self.test_beam_metrics = sequence_metrics().clone(prefix="test/beam_")
        self.tgt_itos = list(self.spec.tgt_vocab or ())
        self.tgt_pad = int(self.spec.tgt_pad_index or 0)

    def build_metrics(self) -> torchmetrics.MetricCollection:
        return sequence_metrics()

    def forward(self, src: Tensor, tgt_in: Tensor, teacher_forcing: float = 1.0) -> Tensor:
        return self.net(src, tgt_in, teacher_forcing=teacher_forcing)

    # ---- ids -> text ---------------------------------------------------------------------------
    def to_text(self, ids: Tensor) -> list[str]:
        """Rows of target ids -> space-joined tokens, up to <eos>, without <sos>/<pad>."""
        return [" ".join(sentence_tokens(row, self.tgt_itos)) for row in ids.tolist()]

    # ---- steps ---------------------------------------------------------------------------------
    def forward_batch(self, batch: Any) -> tuple[Tensor, Any, Any, Tensor]:
        """Loss on teacher-forced logits; outside training, greedy decodes and references."""
        src, tgt = batch
        tf = self.teacher_forcing if self.training else 1.0
        logits = self(src, tgt[:, :-1], teacher_forcing=tf)
        loss = F.cross_entropy(logits.flatten(0, 1), tgt[:, 1:].flatten(),
                               ignore_index=self.tgt_pad, label_smoothing=self.label_smoothing)
        n = torch.tensor(src.size(0))
        if self.training:
            return loss, None, None, n
        hyps = self.to_text(self.net.greedy_decode(src)[0])
        return loss, hyps, [[r] for r in self.to_text(tgt)], n

    def test_step(self, batch: Any, batch_idx: int) -> None:
        super().test_step(batch, batch_idx)
        if self.test_beam_size > 1:
            src, tgt = batch
            beams = self.net.beam_search(src, self.test_beam_size,
                                         length_penalty=self.length_penalty)[0]
            self.test_beam_metrics.update(self.to_text(beams), [[r] for r in self.to_text(tgt)])

    def on_test_epoch_start(self) -> None:
        super().on_test_epoch_start()
        self.test_beam_metrics.reset()

    def on_test_epoch_end(self) -> None:
        super().on_test_epoch_end()
        if self.test_beam_size > 1:
            self.log_dict(self.test_beam_metrics)

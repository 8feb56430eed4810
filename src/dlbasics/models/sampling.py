"""Autoregressive sampling shared by every language model (``lm_transformer``, ``lm_lstm``): a
``base.LanguageModel``, whose ``model(idx)`` scores every position from scratch and
``model.step(idx, state)`` only the new tokens, given the state (cache) of those before them.

With ``use_cache`` each new token costs one ``step`` on that token alone. A Transformer's context
holds ``block_size`` positions (learned absolute position embeddings): once the text is longer,
the window slides and every step re-encodes it, as without a cache. Keys/values cannot be reused
across a slide (each position's were computed with earlier tokens now out of the window), and this
keeps both modes sampling exactly the same text.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F


def sample_next(
    logits: torch.Tensor,
    temperature: float = 1.0,
    top_k: int | None = None,
    generator: torch.Generator | None = None,
    suppress: Sequence[int] = (),
) -> torch.Tensor:
    """One token per row of ``logits`` (B, V) -> (B, 1).

    ``temperature`` divides the logits (< 1 sharper, > 1 flatter); ``top_k`` keeps the k most
    likely tokens (``top_k=1`` is greedy decoding); ``suppress`` ids are never sampled (e.g. <pad>).
    ``dlbasics.validation`` checks both options (temperature > 0, top_k >= 1).
    """
    logits = logits.float() / temperature
    if suppress:
        logits[:, list(suppress)] = float("-inf")
    if top_k is not None and top_k < logits.size(-1):
        kth = torch.topk(logits, top_k, dim=-1).values[:, [-1]]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    return torch.multinomial(F.softmax(logits, dim=-1), 1, generator=generator)


@torch.no_grad()
def stream(
    model: nn.Module,
    idx: torch.Tensor,
    max_new_tokens: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    generator: torch.Generator | None = None,
    use_cache: bool = True,
    suppress: Sequence[int] = (),
) -> Iterator[torch.Tensor]:
    """Yield each sampled token (B, 1) as soon as it is drawn, continuing the prompt (B, T)."""
    was_training = model.training
    model.eval()
    limit: int | None = getattr(model, "block_size", None)
    seq, pending, state = idx, idx, None
    try:
        for _ in range(max_new_tokens):
            if use_cache and (limit is None or seq.size(1) <= limit):
                logits, state = model.step(pending, state)  # only the tokens not yet cached
            else:  # no cache, or the context no longer fits: re-encode the last window
                logits = model(seq if limit is None else seq[:, -limit:])
            token = sample_next(logits[:, -1], temperature, top_k, generator, suppress)
            seq, pending = torch.cat([seq, token], dim=1), token
            yield token
    finally:
        model.train(was_training)


def generate(model: nn.Module, idx: torch.Tensor, max_new_tokens: int, **options: Any
             ) -> torch.Tensor:
    """The prompt followed by ``max_new_tokens`` sampled tokens: (B, T + max_new_tokens);
    ``options`` are those of ``stream``."""
    return torch.cat([idx, *stream(model, idx, max_new_tokens, **options)], dim=1)

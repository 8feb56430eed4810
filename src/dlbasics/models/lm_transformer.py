"""A decoder-only causal Transformer language model (GPT-2 style, after nanoGPT).

    idx (B, T) -> token embedding (B, T, n_embd) + learned positions (T, n_embd) -> dropout
               -> n_layer x TransformerBlock(causal)        (pre-norm residual blocks)
               -> LayerNorm -> head (weights tied to the token embedding) -> logits (B, T, V)

Position t attends to positions <= t only. ``step`` runs new tokens against a cache of each
block's normalised inputs at the positions before them (from which attention recomputes their
keys and values), so generating a token runs one position through the stack instead of the
whole context.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from dlbasics.errors import UserError
from dlbasics.models.base import Impl, LanguageModel, layer_library
from dlbasics.models.blocks import Positions, TransformerBlock
from dlbasics.spec import DataSpec

Cache = list[torch.Tensor]  # per block: normalised inputs of the past positions (B, t, n_embd)


class LMTransformer(LanguageModel):
    def __init__(
        self,
        spec: DataSpec,
        n_layer: int = 4,
        n_head: int = 4,
        n_embd: int = 128,
        dropout: float = 0.0,
        bias: bool = False,
        block_size: int | None = None,
        impl: Impl = "torch",
    ) -> None:
        """``block_size``: the longest context (position embeddings); default: the data's window.
        ``bias``: biases in the Linear layers and LayerNorms (nanoGPT: none)."""
        super().__init__(spec)
        if n_embd % n_head:
            raise UserError(f"model.n_embd={n_embd} must be divisible by model.n_head={n_head}")
        lib = layer_library(impl)
        self.block_size = block_size or spec.input_shape[0]
        self.wte = nn.Embedding(spec.vocab_size, n_embd)
        self.positions = Positions("learned", self.block_size, n_embd)
        self.drop = lib.Dropout(dropout)
        self.blocks = nn.ModuleList(TransformerBlock(n_embd, n_head, 4 * n_embd, dropout,
                                                     act="gelu", bias=bias, impl=impl)
                                    for _ in range(n_layer))
        self.ln_f = nn.LayerNorm(n_embd, bias=bias)
        self.head = lib.Linear(n_embd, spec.vocab_size, bias=False)
        self.head.weight = self.wte.weight  # weight tying: one matrix embeds and un-embeds tokens
        # GPT-2 initialisation: N(0, 0.02), residual projections scaled by 1/sqrt(2 * n_layer)
        for name, p in self.named_parameters():
            if name.endswith(("out_proj.weight", "ff.proj.weight")):
                nn.init.normal_(p, 0.0, 0.02 / math.sqrt(2 * n_layer))
            elif p.dim() == 2:
                nn.init.normal_(p, 0.0, 0.02)
            elif name.endswith("bias"):
                nn.init.zeros_(p)

    def _run(self, idx: torch.Tensor, cache: Cache | None) -> tuple[torch.Tensor, Cache]:
        past = 0 if cache is None else cache[0].size(1)
        x = self.drop(self.wte(idx) + self.positions(idx.size(1), start=past))
        new_cache = []
        for i, block in enumerate(self.blocks):
            x, kv, _ = block(x, causal=True, past=None if cache is None else cache[i])
            new_cache.append(kv)
        return self.ln_f(x), new_cache

    def forward_features(self, idx: torch.Tensor) -> torch.Tensor:
        """(B, T) token ids -> (B, T, n_embd) final hidden states; ``forward`` adds the head."""
        return self._run(idx, None)[0]

    def step(self, idx: torch.Tensor, state: Cache | None = None) -> tuple[torch.Tensor, Cache]:
        """Logits of the new tokens ``idx`` (B, T) given the cache of the tokens before them."""
        h, state = self._run(idx, state)
        return self.head(h), state

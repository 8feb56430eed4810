"""A decoder-only causal Transformer language model (GPT-2 style, after nanoGPT).

    idx (B, T) -> token embedding + position embedding -> dropout
               -> n_layer x [x + attn(LN(x)), x + MLP(LN(x))]      (pre-norm residual blocks)
               -> LN -> head (weights tied to the token embedding) -> logits (B, T, V)

Causal self-attention: position t attends to positions <= t only, through
``F.scaled_dot_product_attention(is_causal=True)`` (a fused kernel for softmax(QK^T/sqrt(d) + M)V).
``step`` runs new tokens against a KV cache of the keys/values of the tokens before them, so
generating a token costs one position instead of re-encoding the whole context.
"""

from __future__ import annotations

import math
from types import ModuleType

import torch
from torch import nn
from torch.nn import functional as F

from dlbasics.errors import UserError
from dlbasics.models.base import Network, layer_library
from dlbasics.spec import DataSpec

KV = tuple[torch.Tensor, torch.Tensor]  # keys, values: (B, n_head, T_past, head_dim)


class CausalSelfAttention(nn.Module):
    def __init__(self, n_embd: int, n_head: int, dropout: float, bias: bool,
                 lib: ModuleType) -> None:
        super().__init__()
        if n_embd % n_head:
            raise UserError(f"model.n_embd={n_embd} must be divisible by model.n_head={n_head}")
        self.n_head, self.dropout = n_head, dropout
        self.c_attn = lib.Linear(n_embd, 3 * n_embd, bias=bias)  # q, k, v in one matmul
        self.c_proj = lib.Linear(n_embd, n_embd, bias=bias)
        self.resid_dropout = lib.Dropout(dropout)

    def forward(self, x: torch.Tensor, cache: KV | None = None) -> tuple[torch.Tensor, KV]:
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        if cache is not None:
            k, v = torch.cat([cache[0], k], dim=2), torch.cat([cache[1], v], dim=2)
        past = k.size(2) - T
        mask = None
        if past and T > 1:  # query i is position past + i: it sees keys 0 .. past + i
            mask = torch.ones(T, past + T, dtype=torch.bool, device=x.device).tril(diagonal=past)
        y = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, is_causal=past == 0,  # with one new query, all keys are past
            dropout_p=self.dropout if self.training else 0.0)
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # re-assemble the heads
        return self.resid_dropout(self.c_proj(y)), (k, v)


class MLP(nn.Module):
    def __init__(self, n_embd: int, dropout: float, bias: bool, lib: ModuleType) -> None:
        super().__init__()
        self.c_fc = lib.Linear(n_embd, 4 * n_embd, bias=bias)
        self.gelu = nn.GELU()
        self.c_proj = lib.Linear(4 * n_embd, n_embd, bias=bias)
        self.dropout = lib.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))


class Block(nn.Module):
    def __init__(self, n_embd: int, n_head: int, dropout: float, bias: bool,
                 lib: ModuleType) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(n_embd, bias=bias)
        self.attn = CausalSelfAttention(n_embd, n_head, dropout, bias, lib)
        self.ln_2 = nn.LayerNorm(n_embd, bias=bias)
        self.mlp = MLP(n_embd, dropout, bias, lib)

    def forward(self, x: torch.Tensor, cache: KV | None = None) -> tuple[torch.Tensor, KV]:
        a, cache = self.attn(self.ln_1(x), cache)
        x = x + a
        return x + self.mlp(self.ln_2(x)), cache


class LMTransformer(Network):
    input_kinds = frozenset({"tokens"})
    tasks = frozenset({"language_model"})

    def __init__(
        self,
        spec: DataSpec,
        n_layer: int = 4,
        n_head: int = 4,
        n_embd: int = 128,
        dropout: float = 0.0,
        bias: bool = False,
        block_size: int | None = None,
        impl: str = "torch",
    ) -> None:
        """``block_size``: the longest context (position embeddings); default: the data's window."""
        super().__init__()
        self.check_spec(spec)
        lib = layer_library(impl)
        self.block_size = block_size or spec.input_shape[0]
        vocab_size = spec.vocab_size
        self.wte = nn.Embedding(vocab_size, n_embd)
        self.wpe = nn.Embedding(self.block_size, n_embd)
        self.drop = lib.Dropout(dropout)
        self.blocks = nn.ModuleList(Block(n_embd, n_head, dropout, bias, lib)
                                    for _ in range(n_layer))
        self.ln_f = nn.LayerNorm(n_embd, bias=bias)
        self.head = lib.Linear(n_embd, vocab_size, bias=False)
        self.head.weight = self.wte.weight  # weight tying: one matrix embeds and un-embeds tokens
        # GPT-2 initialisation: N(0, 0.02), residual projections scaled by 1/sqrt(2 * n_layer)
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, 0.0, 0.02 / math.sqrt(2 * n_layer))
            elif p.dim() == 2:
                nn.init.normal_(p, 0.0, 0.02)
            elif name.endswith("bias"):
                nn.init.zeros_(p)

    def _run(self, idx: torch.Tensor, caches: list[KV] | None) -> tuple[torch.Tensor, list[KV]]:
        past = 0 if caches is None else caches[0][0].size(2)
        T = idx.size(1)
        if past + T > self.block_size:
            raise ValueError(f"{past + T} positions exceed the context of block_size="
                             f"{self.block_size}: crop the input to its last {self.block_size}")
        pos = torch.arange(past, past + T, device=idx.device)
        x = self.drop(self.wte(idx) + self.wpe(pos))
        new_caches = []
        for i, block in enumerate(self.blocks):
            x, kv = block(x, None if caches is None else caches[i])
            new_caches.append(kv)
        return self.ln_f(x), new_caches

    def forward_features(self, idx: torch.Tensor) -> torch.Tensor:
        """(B, T) token ids -> (B, T, n_embd) final hidden states; ``forward`` adds the head."""
        return self._run(idx, None)[0]

    def step(self, idx: torch.Tensor, state: list[KV] | None = None
             ) -> tuple[torch.Tensor, list[KV]]:
        """Logits of the new tokens ``idx`` given the KV cache of the tokens before them."""
        h, state = self._run(idx, state)
        return self.head(h), state

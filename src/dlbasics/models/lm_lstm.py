"""An LSTM language model.

    idx (B, T) -> embedding (B, T, n_embd) -> dropout -> LSTM stack (B, T, hidden) -> dropout
               -> head -> logits (B, T, V)

Training windows start from a zero state; generation carries the state ``(h, c)`` from token to
token (``step``), so the context is not limited to a window. With ``tie_weights`` the head reuses
the embedding matrix (Press & Wolf 2017; Inan et al. 2017), which needs ``hidden == n_embd``.
"""

from __future__ import annotations

import torch
from torch import nn

from dlbasics.errors import UserError
from dlbasics.models.base import Impl, LanguageModel, layer_library
from dlbasics.spec import DataSpec

State = tuple[torch.Tensor, torch.Tensor]  # (h, c): (num_layers, B, hidden) each


class LMLSTM(LanguageModel):
    block_size = None  # a recurrent state: any context length

    def __init__(
        self,
        spec: DataSpec,
        n_embd: int = 256,
        hidden: int = 256,
        num_layers: int = 2,
        dropout: float = 0.0,
        tie_weights: bool = True,
        impl: Impl = "torch",
    ) -> None:
        super().__init__(spec)
        if tie_weights and hidden != n_embd:
            raise UserError(f"model.tie_weights=true needs model.hidden == model.n_embd "
                             f"(got {hidden} and {n_embd}), or set model.tie_weights=false")
        lib = layer_library(impl)
        self.wte = nn.Embedding(spec.vocab_size, n_embd)
        self.drop = lib.Dropout(dropout)
        self.lstm = lib.LSTM(n_embd, hidden, num_layers, batch_first=True,
                             dropout=dropout if num_layers > 1 else 0.0)
        self.head = lib.Linear(hidden, spec.vocab_size)
        nn.init.uniform_(self.wte.weight, -0.1, 0.1)  # small, so tied logits start near uniform
        nn.init.zeros_(self.head.bias)
        if tie_weights:
            self.head.weight = self.wte.weight
        else:
            nn.init.uniform_(self.head.weight, -0.1, 0.1)

    def step(self, idx: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        """Logits of the tokens ``idx`` (B, T), continuing from ``state`` (None: zeros)."""
        out, state = self.lstm(self.drop(self.wte(idx)), state)
        return self.head(self.drop(out)), state

    def forward_features(self, idx: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(self.drop(self.wte(idx)))
        return self.drop(out)

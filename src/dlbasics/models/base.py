"""The interface every network shares (as timm's models do), and the layer library switch.

``forward_features(x) -> features``, ``forward_head(features) -> outputs``,
``forward(x) = forward_head(forward_features(x))`` and ``reset_head(num_outputs)``: transfer
learning and attributions work on every model alike. Language models add ``step`` (next-token
logits given a cache, ``LanguageModel`` below); encoder-decoders add ``encode``/``decode_step``
(``encoder_decoder.EncoderDecoder``).
"""

from __future__ import annotations

from types import ModuleType
from typing import Any, ClassVar, Literal

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from dlbasics.errors import IncompatibleDataError
from dlbasics.spec import DataSpec

Impl = Literal["torch", "scratch"]
Activation = Literal["relu", "gelu", "tanh", "sigmoid", "silu", "leaky_relu"]


def layer_library(impl: Impl) -> ModuleType:
    """``torch.nn`` or the from-scratch drop-ins in ``dlbasics.scratch.layers`` (same signatures)."""
    if impl == "torch":
        return nn
    if impl == "scratch":
        from dlbasics.scratch import layers

        return layers
    raise ValueError(f"model.impl must be 'torch' or 'scratch', got {impl!r}")


def run_rnn(rnn: nn.Module, x: torch.Tensor, lengths: torch.Tensor | None, impl: Impl
            ) -> tuple[torch.Tensor, Any]:
    """A batch-first RNN over right-padded sequences x (B, L, D) of ``lengths`` real steps
    (None: unpadded): packed for ``torch.nn``, the scratch layers' ``lengths=`` argument (the
    same semantics). Returns the outputs (B, L, H * dirs) and the final state."""
    if lengths is None:
        return rnn(x)
    if impl == "scratch":
        return rnn(x, lengths=lengths)
    packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
    out, state = rnn(packed)
    out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.size(1))
    return out, state


class Network(nn.Module):
    """Base class: declares what data a network can consume (``__init__(spec)`` refuses other
    data) and the features/head interface."""

    input_kinds: ClassVar[frozenset[str]] = frozenset()
    tasks: ClassVar[frozenset[str]] = frozenset({"classification", "regression"})

    head: nn.Linear

    def __init__(self, spec: DataSpec) -> None:
        super().__init__()
        if not self.accepts(spec.input_kind, spec.task):
            raise IncompatibleDataError(
                f"{type(self).__name__} takes {sorted(self.input_kinds)} inputs for "
                f"{sorted(self.tasks)}, but the data gives {spec.input_kind} inputs for {spec.task}"
            )

    @classmethod
    def accepts(cls, input_kind: str, task: str) -> bool:
        return input_kind in cls.input_kinds and task in cls.tasks

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def reset_head(self, num_outputs: int) -> None:
        """Replace the last layer (a fresh ``Linear`` of the same library), e.g. to fine-tune
        on a dataset with other classes. A head tied to another weight cannot be replaced."""
        tied = [n for n, p in self.named_parameters(remove_duplicate=False)
                if p is self.head.weight and not n.startswith("head.")]
        if tied:
            raise ValueError(f"{type(self).__name__}'s head shares its weight with {tied[0]} "
                             f"(weight tying): build the model with another vocabulary instead")
        weight = self.head.weight
        head = type(self.head)(self.head.in_features, num_outputs, bias=self.head.bias is not None)
        self.head = head.to(device=weight.device, dtype=weight.dtype)


class LanguageModel(Network):
    """A causal language model: ``forward(idx (B, T)) -> logits (B, T, V)`` at every position,
    and ``step(idx, state) -> (logits of the new tokens, state)`` continuing from a cache of the
    tokens before them (a Transformer's keys/values, an LSTM's (h, c); ``None`` starts afresh).
    ``block_size``: the longest context it accepts (``None``: any)."""

    input_kinds = frozenset({"tokens"})
    tasks = frozenset({"language_model"})
    block_size: int | None = None

    def step(self, idx: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, Any]:
        raise NotImplementedError


def activation(name: Activation) -> nn.Module:
    table = {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid,
             "silu": nn.SiLU, "leaky_relu": nn.LeakyReLU}
    return table[name]()  # dlbasics.validation checks model.act against ``Activation``

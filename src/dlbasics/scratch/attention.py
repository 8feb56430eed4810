"""Scaled dot-product attention and multi-head attention.

Scaled dot-product attention of queries ``Q [.., L, E]``, keys ``K [.., S, E]``, values
``V [.., S, Ev]``::

    A = softmax(Q K^T / sqrt(E) + M)        (row-wise over the S keys)
    Attention(Q, K, V) = A V

``M`` is the additive mask: 0 where a query may look at a key and ``-inf`` where it may not. A
boolean ``attn_mask`` of :func:`scaled_dot_product_attention` says where attention IS allowed (True
-> 0, False -> -inf), like ``F.scaled_dot_product_attention``; a float mask is added as it is.
``is_causal`` allows key ``j`` for query ``i`` only if ``j <= i`` (lower-triangular, top-left).

Fully masked rows (a query that may see no key): the softmax of an all ``-inf`` row is 0/0. Here
its attention weights are defined as all zeros, so its output is 0 and its gradients are 0 --
never NaN. ``F.scaled_dot_product_attention`` gives the same 0 output; ``nn.MultiheadAttention``
(when it returns weights) gives NaN there instead.

Multi-head attention with ``h`` heads of size ``d = E / h`` (``W_q, W_k, W_v`` are the three
``[E, E]`` blocks of ``in_proj_weight``)::

    head_i = Attention(X_q W_q,i^T + b_q,i,  X_k W_k,i^T + b_k,i,  X_v W_v,i^T + b_v,i)
    MHA(X_q, X_k, X_v) = concat(head_1, ..., head_h) W_o^T + b_o          (W_o = out_proj.weight)

The masks of :class:`MultiheadAttention` follow ``nn.MultiheadAttention``: a boolean
``key_padding_mask [B, S]`` or ``attn_mask [L, S] / [B*h, L, S]`` is True where attention is NOT
allowed (the opposite of the functional form), float masks are added, and both are summed.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from dlbasics.scratch.linear import Linear, linear
from dlbasics.scratch.losses import dropout as inverted_dropout

__all__ = ["MultiheadAttention", "attention", "causal_mask", "scaled_dot_product_attention"]


def causal_mask(q_len: int, k_len: int, device=None) -> Tensor:
    """Boolean ``[L, S]`` mask, True where key ``j <= i`` (allowed)."""
    return torch.ones(q_len, k_len, dtype=torch.bool, device=device).tril()


def _additive(mask: Tensor, dtype: torch.dtype, allowed_if_true: bool) -> Tensor:
    """Boolean mask -> 0 / -inf float mask; float masks are returned as they are."""
    if mask.dtype != torch.bool:
        return mask.to(dtype)
    blocked = ~mask if allowed_if_true else mask
    return torch.zeros_like(mask, dtype=dtype).masked_fill(blocked, float("-inf"))


def attention(query: Tensor, key: Tensor, value: Tensor, mask: Tensor | None = None,
              dropout_p: float = 0.0, scale: float | None = None) -> tuple[Tensor, Tensor]:
    """``(A V, A)`` with ``A = softmax(Q K^T * scale + mask)`` and an additive float ``mask``.

    Rows whose mask is ``-inf`` everywhere get ``A = 0`` (see the module docstring). Dropout with
    probability ``dropout_p`` is applied to ``A`` (inverted dropout), and the dropped ``A`` is
    returned, like ``nn.MultiheadAttention``.
    """
    scale = 1.0 / math.sqrt(query.shape[-1]) if scale is None else scale
    scores = (query * scale) @ key.transpose(-2, -1)
    dead = None
    if mask is not None:
        dead = torch.isneginf(mask).all(dim=-1, keepdim=True)
        if dead.any():  # keep the softmax finite there; zero the weights afterwards
            mask = mask.masked_fill(dead, 0.0)
        else:
            dead = None
        scores = scores + mask
    weights = torch.softmax(scores, dim=-1)
    if dead is not None:
        weights = weights.masked_fill(dead, 0.0)
    if dropout_p > 0.0:
        weights = inverted_dropout(weights, dropout_p)
    return weights @ value, weights


def scaled_dot_product_attention(query: Tensor, key: Tensor, value: Tensor,
                                 attn_mask: Tensor | None = None, dropout_p: float = 0.0,
                                 is_causal: bool = False, scale: float | None = None,
                                 enable_gqa: bool = False) -> Tensor:
    """Drop-in ``F.scaled_dot_product_attention`` (boolean ``attn_mask``: True = may attend)."""
    if is_causal and attn_mask is not None:
        raise ValueError("attn_mask must be None when is_causal=True")
    if enable_gqa and key.shape[-3] != query.shape[-3]:  # grouped-query: share K/V heads
        reps = query.shape[-3] // key.shape[-3]
        key = key.repeat_interleave(reps, dim=-3)
        value = value.repeat_interleave(reps, dim=-3)
    if is_causal:
        attn_mask = causal_mask(query.shape[-2], key.shape[-2], query.device)
    mask = None if attn_mask is None else _additive(attn_mask, query.dtype, allowed_if_true=True)
    return attention(query, key, value, mask, dropout_p, scale)[0]


class MultiheadAttention(nn.Module):
    """Drop-in ``nn.MultiheadAttention`` with the same parameters, initialisation and masks.

    Parameters: ``in_proj_weight [3E, E]`` and ``in_proj_bias [3E]`` (or ``q_proj_weight``,
    ``k_proj_weight``, ``v_proj_weight`` when ``kdim``/``vdim`` differ from ``E``),
    ``out_proj.weight [E, E]``, ``out_proj.bias [E]``, and ``bias_k``, ``bias_v`` with
    ``add_bias_kv``.

    Differences from PyTorch: fully masked query rows give zeros instead of NaN, and
    ``is_causal=True`` without ``attn_mask`` applies the causal mask (PyTorch requires the mask and
    treats ``is_causal`` as a hint; here a given ``attn_mask`` is likewise used as it is).
    """

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True,
                 add_bias_kv: bool = False, add_zero_attn: bool = False, kdim: int | None = None,
                 vdim: int | None = None, batch_first: bool = False, device=None,
                 dtype=None) -> None:
        super().__init__()
        if embed_dim <= 0 or num_heads <= 0:
            raise ValueError("embed_dim and num_heads must be greater than 0")
        if embed_dim % num_heads:
            raise ValueError("embed_dim must be divisible by num_heads")
        kw = {"device": device, "dtype": dtype}
        self.embed_dim, self.num_heads, self.dropout = embed_dim, num_heads, dropout
        self.kdim = kdim if kdim is not None else embed_dim
        self.vdim = vdim if vdim is not None else embed_dim
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        self.batch_first, self.head_dim = batch_first, embed_dim // num_heads
        if self._qkv_same_embed_dim:
            self.in_proj_weight = nn.Parameter(torch.empty(3 * embed_dim, embed_dim, **kw))
            for name in ("q_proj_weight", "k_proj_weight", "v_proj_weight"):
                self.register_parameter(name, None)
        else:
            self.q_proj_weight = nn.Parameter(torch.empty(embed_dim, embed_dim, **kw))
            self.k_proj_weight = nn.Parameter(torch.empty(embed_dim, self.kdim, **kw))
            self.v_proj_weight = nn.Parameter(torch.empty(embed_dim, self.vdim, **kw))
            self.register_parameter("in_proj_weight", None)
        if bias:
            self.in_proj_bias = nn.Parameter(torch.empty(3 * embed_dim, **kw))
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = Linear(embed_dim, embed_dim, bias=bias, **kw)
        if add_bias_kv:
            self.bias_k = nn.Parameter(torch.empty(1, 1, embed_dim, **kw))
            self.bias_v = nn.Parameter(torch.empty(1, 1, embed_dim, **kw))
        else:
            self.bias_k = self.bias_v = None
        self.add_zero_attn = add_zero_attn
        self._reset_parameters()

    def _reset_parameters(self) -> None:
        """Xavier-uniform projections, zero biases, Xavier-normal ``bias_k/v`` (PyTorch's order)."""
        if self._qkv_same_embed_dim:
            nn.init.xavier_uniform_(self.in_proj_weight)
        else:
            for w in (self.q_proj_weight, self.k_proj_weight, self.v_proj_weight):
                nn.init.xavier_uniform_(w)
        if self.in_proj_bias is not None:
            nn.init.zeros_(self.in_proj_bias)
            nn.init.zeros_(self.out_proj.bias)
        if self.bias_k is not None:
            nn.init.xavier_normal_(self.bias_k)
            nn.init.xavier_normal_(self.bias_v)

    def _in_projection(self, query: Tensor, key: Tensor, value: Tensor):
        e, b = self.embed_dim, self.in_proj_bias
        bq, bk, bv = (None, None, None) if b is None else b.chunk(3)
        if not self._qkv_same_embed_dim:
            return (linear(query, self.q_proj_weight, bq), linear(key, self.k_proj_weight, bk),
                    linear(value, self.v_proj_weight, bv))
        w = self.in_proj_weight
        if query is key and key is value:  # self-attention: one matmul for Q, K and V
            return linear(query, w, b).chunk(3, dim=-1)
        if key is value:
            kv = linear(key, w[e:], None if b is None else b[e:]).chunk(2, dim=-1)
            return (linear(query, w[:e], bq), *kv)
        return (linear(query, w[:e], bq), linear(key, w[e : 2 * e], bk),
                linear(value, w[2 * e :], bv))

    def forward(self, query: Tensor, key: Tensor, value: Tensor,
                key_padding_mask: Tensor | None = None, need_weights: bool = True,
                attn_mask: Tensor | None = None, average_attn_weights: bool = True,
                is_causal: bool = False) -> tuple[Tensor, Tensor | None]:
        """``(output, weights)``: output ``[B, L, E]`` (``[L, B, E]`` unless ``batch_first``,
        ``[L, E]`` unbatched); weights ``[B, L, S]`` averaged over heads or ``[B, h, L, S]``."""
        batched = query.dim() == 3
        if not batched:
            query, key, value = query.unsqueeze(0), key.unsqueeze(0), value.unsqueeze(0)
            if key_padding_mask is not None:
                key_padding_mask = key_padding_mask.unsqueeze(0)
        elif not self.batch_first:  # [L, B, E] -> [B, L, E], keeping the identity q is k is v
            same_qk, same_kv = query is key, key is value
            query = query.transpose(0, 1)
            key = query if same_qk else key.transpose(0, 1)
            value = key if same_kv else value.transpose(0, 1)
        bsz, q_len, _ = query.shape
        h, d = self.num_heads, self.head_dim

        q, k, v = self._in_projection(query, key, value)
        if self.bias_k is not None:
            k = torch.cat([k, self.bias_k.expand(bsz, 1, -1)], dim=1)
            v = torch.cat([v, self.bias_v.expand(bsz, 1, -1)], dim=1)
        # [B, L or S, E] -> [B, h, L or S, d]
        q, k, v = (t.reshape(bsz, t.shape[1], h, d).transpose(1, 2) for t in (q, k, v))
        if self.add_zero_attn:
            k = torch.cat([k, k.new_zeros(bsz, h, 1, d)], dim=2)
            v = torch.cat([v, v.new_zeros(bsz, h, 1, d)], dim=2)
        mask = self._merge_masks(key_padding_mask, attn_mask, is_causal, bsz, q_len,
                                 key.shape[1], k.shape[2], q.dtype, q.device)

        p = self.dropout if self.training else 0.0
        out, weights = attention(q, k, v, mask, p)
        out = self.out_proj(out.transpose(1, 2).reshape(bsz, q_len, self.embed_dim))

        if not batched:
            out = out.squeeze(0)
        elif not self.batch_first:
            out = out.transpose(0, 1)
        if not need_weights:
            return out, None
        if average_attn_weights:
            weights = weights.mean(dim=1)
        return out, (weights if batched else weights.squeeze(0))

    def _merge_masks(self, key_padding_mask: Tensor | None, attn_mask: Tensor | None,
                     is_causal: bool, bsz: int, q_len: int, src_len: int, total_len: int,
                     dtype: torch.dtype, device) -> Tensor | None:
        """One additive mask broadcastable to ``[B, h, L, S_total]`` (True = blocked)."""
        if is_causal and attn_mask is None:
            attn_mask = ~causal_mask(q_len, src_len, device)
        mask = None
        if attn_mask is not None:
            mask = _additive(attn_mask, dtype, allowed_if_true=False)
            if mask.dim() == 3:  # [B*h, L, S]
                mask = mask.view(bsz, self.num_heads, q_len, src_len)
        if key_padding_mask is not None:
            kpm = _additive(key_padding_mask, dtype, allowed_if_true=False)
            kpm = kpm.view(bsz, 1, 1, src_len)
            mask = kpm if mask is None else mask + kpm
        if mask is not None and total_len > src_len:  # bias_k / zero-attention columns: allowed
            mask = torch.nn.functional.pad(mask, (0, total_len - src_len))
        return mask

"""Scaled dot-product and multi-head attention against PyTorch (float64, values and gradients)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dlbasics.scratch.attention import MultiheadAttention, scaled_dot_product_attention

EXACT = {"rtol": 1e-10, "atol": 1e-10}
F64 = torch.float64


def _rand(*shape: int, seed: int, grad: bool = False) -> torch.Tensor:
    t = torch.randn(*shape, dtype=F64, generator=torch.Generator().manual_seed(seed))
    return t.requires_grad_(grad)


def _grads(out: torch.Tensor, wrt: list[torch.Tensor], seed: int = 99):
    return torch.autograd.grad(out, wrt, _rand(*out.shape, seed=seed))


def _bool(*shape: int, seed: int, p: float = 0.6) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed)) < p


# ---------------------------------------------------------------------------------------------
# scaled dot-product attention
# ---------------------------------------------------------------------------------------------

SDPA_MASKS = {
    "none": lambda: {},
    "causal": lambda: {"is_causal": True},
    "bool [L, S]": lambda: {"attn_mask": _bool(5, 7, seed=1)},
    "bool [B, 1, L, S]": lambda: {"attn_mask": _bool(2, 1, 5, 7, seed=2)},
    "float [B, H, L, S]": lambda: {"attn_mask": _rand(2, 3, 5, 7, seed=3)},
    "float -inf padding": lambda: {
        "attn_mask": torch.zeros(2, 1, 1, 7, dtype=F64).masked_fill(_bool(2, 1, 1, 7, seed=4,
                                                                          p=0.4), float("-inf"))},
    "scale": lambda: {"scale": 0.37},
}


@pytest.mark.parametrize("mask", list(SDPA_MASKS))
def test_sdpa_matches_torch(mask):
    q, k = _rand(2, 3, 5, 4, seed=5, grad=True), _rand(2, 3, 7, 4, seed=6, grad=True)
    v = _rand(2, 3, 7, 6, seed=7, grad=True)
    kwargs = SDPA_MASKS[mask]()
    if "attn_mask" in kwargs and kwargs["attn_mask"].dtype == torch.bool:
        kwargs["attn_mask"][..., 0] = True  # at least one key per query (see the next test)
    mine = scaled_dot_product_attention(q, k, v, **kwargs)
    ref = F.scaled_dot_product_attention(q, k, v, **kwargs)
    torch.testing.assert_close(mine, ref, **EXACT)
    for a, b in zip(_grads(mine, [q, k, v]), _grads(ref, [q, k, v])):
        torch.testing.assert_close(a, b, **EXACT)


def test_sdpa_fully_masked_rows_give_zeros_not_nan():
    q, k, v = (_rand(1, 2, 4, 3, seed=s, grad=True) for s in (8, 9, 10))
    mask = _bool(4, 4, seed=11)
    mask[0] = True
    mask[2] = False  # query 2 may see no key at all
    mine = scaled_dot_product_attention(q, k, v, attn_mask=mask)
    assert torch.isfinite(mine).all() and (mine[..., 2, :] == 0).all()
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    torch.testing.assert_close(mine, ref, **EXACT)  # PyTorch's SDPA also gives 0 here
    grads = _grads(mine, [q, k, v])
    assert all(torch.isfinite(g).all() for g in grads)
    assert (grads[0][..., 2, :] == 0).all()
    for a, b in zip(grads, _grads(ref, [q, k, v])):
        torch.testing.assert_close(a, b, **EXACT)


def test_sdpa_unbatched_gqa_and_causal_rectangular():
    q, k, v = _rand(6, 4, seed=12), _rand(6, 4, seed=13), _rand(6, 5, seed=14)
    torch.testing.assert_close(scaled_dot_product_attention(q, k, v, is_causal=True),
                               F.scaled_dot_product_attention(q, k, v, is_causal=True), **EXACT)
    q, k, v = _rand(2, 4, 3, 8, seed=15), _rand(2, 2, 5, 8, seed=16), _rand(2, 2, 5, 8, seed=17)
    for causal in (False, True):  # L=3 < S=5: causal mask aligned top-left like torch
        torch.testing.assert_close(
            scaled_dot_product_attention(q, k, v, is_causal=causal, enable_gqa=True),
            F.scaled_dot_product_attention(q, k, v, is_causal=causal, enable_gqa=True), **EXACT)
    with pytest.raises(ValueError):
        scaled_dot_product_attention(q, q, q, attn_mask=torch.ones(3, 3, dtype=torch.bool),
                                     is_causal=True)


def test_sdpa_dropout_uses_the_same_masks_as_torch():
    q, k, v = _rand(2, 2, 5, 4, seed=18), _rand(2, 2, 6, 4, seed=19), _rand(2, 2, 6, 4, seed=20)
    torch.manual_seed(3)
    mine = scaled_dot_product_attention(q, k, v, dropout_p=0.4)
    torch.manual_seed(3)
    ref = F.scaled_dot_product_attention(q, k, v, dropout_p=0.4)
    torch.testing.assert_close(mine, ref, **EXACT)
    assert not torch.allclose(mine, scaled_dot_product_attention(q, k, v))


# ---------------------------------------------------------------------------------------------
# multi-head attention
# ---------------------------------------------------------------------------------------------


def _pair(*args, **kwargs) -> tuple[nn.MultiheadAttention, MultiheadAttention]:
    torch.manual_seed(0)
    ref = nn.MultiheadAttention(*args, dtype=F64, **kwargs)
    torch.manual_seed(0)
    mine = MultiheadAttention(*args, dtype=F64, **kwargs)
    return ref, mine


MHA_CONFIGS = [
    {"batch_first": True},
    {"batch_first": False},
    {"batch_first": True, "bias": False},
    {"batch_first": True, "add_bias_kv": True, "add_zero_attn": True},
    {"batch_first": True, "kdim": 3, "vdim": 5},
]


@pytest.mark.parametrize("config", MHA_CONFIGS, ids=str)
def test_mha_parameters_and_initialisation_match_torch(config):
    ref, mine = _pair(8, 2, **config)
    sd_ref, sd_mine = ref.state_dict(), mine.state_dict()
    assert list(sd_ref) == list(sd_mine)
    for name in sd_ref:
        assert torch.equal(sd_ref[name], sd_mine[name]), name


def _mha_inputs(config, B=3, L=4, S=6, seed=30):
    bf = config.get("batch_first", False)

    def shaped(n, e, s):
        return _rand(*((B, n, e) if bf else (n, B, e)), seed=s, grad=True)

    return shaped(L, 8, seed), shaped(S, config.get("kdim", 8), seed + 1), \
        shaped(S, config.get("vdim", 8), seed + 2)


MHA_MASKS = {
    "none": lambda B, L, S, H: {},
    "key padding (bool)": lambda B, L, S, H: {"key_padding_mask": torch.tensor(
        [[False] * S, [False] * (S - 2) + [True] * 2, [True] * 3 + [False] * (S - 3)])},
    "key padding (float)": lambda B, L, S, H: {"key_padding_mask": _rand(B, S, seed=40)},
    "attn mask 2-D bool": lambda B, L, S, H: {
        "attn_mask": torch.ones(L, S, dtype=torch.bool).triu(1)},
    "attn mask 3-D float": lambda B, L, S, H: {"attn_mask": _rand(B * H, L, S, seed=41)},
    "both, per-head weights": lambda B, L, S, H: {
        "attn_mask": torch.ones(L, S, dtype=torch.bool).triu(1),
        "key_padding_mask": torch.tensor([[False] * S, [False] * (S - 1) + [True],
                                          [False] * S]),
        "average_attn_weights": False},
}


@pytest.mark.parametrize("config", MHA_CONFIGS, ids=str)
@pytest.mark.parametrize("mask", list(MHA_MASKS))
def test_mha_cross_attention_matches_torch(config, mask):
    ref, mine = _pair(8, 2, **config)
    q, k, v = _mha_inputs(config)
    kwargs = MHA_MASKS[mask](3, 4, 6, 2)
    out_ref, w_ref = ref(q, k, v, **kwargs)
    out_mine, w_mine = mine(q, k, v, **kwargs)
    torch.testing.assert_close(out_mine, out_ref, **EXACT)
    torch.testing.assert_close(w_mine, w_ref, **EXACT)
    wrt_ref, wrt_mine = [q, k, v, *ref.parameters()], [q, k, v, *mine.parameters()]
    for a, b in zip(_grads(out_mine, wrt_mine), _grads(out_ref, wrt_ref)):
        torch.testing.assert_close(a, b, **EXACT)


@pytest.mark.parametrize("batch_first", [True, False])
def test_mha_self_attention_without_weights_matches_torch(batch_first):
    ref, mine = _pair(8, 4, batch_first=batch_first)
    x = _rand(*((3, 5, 8) if batch_first else (5, 3, 8)), seed=50, grad=True)
    causal = torch.ones(5, 5, dtype=torch.bool).triu(1)
    for kwargs in ({}, {"attn_mask": causal, "is_causal": True}):
        out_ref, w_ref = ref(x, x, x, need_weights=False, **kwargs)
        out_mine, w_mine = mine(x, x, x, need_weights=False, **kwargs)
        assert w_ref is None and w_mine is None
        torch.testing.assert_close(out_mine, out_ref, **EXACT)
        for a, b in zip(_grads(out_mine, [x, *mine.parameters()]),
                        _grads(out_ref, [x, *ref.parameters()])):
            torch.testing.assert_close(a, b, **EXACT)
    # is_causal without a mask builds the causal mask itself (torch requires the mask)
    out_mine, _ = mine(x, x, x, is_causal=True)
    torch.testing.assert_close(out_mine, ref(x, x, x, attn_mask=causal)[0], **EXACT)


def test_mha_unbatched_matches_torch():
    ref, mine = _pair(8, 2)
    q, kv = _rand(4, 8, seed=51), _rand(6, 8, seed=52)
    kpm = torch.tensor([False, False, True, False, False, True])
    out_ref, w_ref = ref(q, kv, kv, key_padding_mask=kpm)
    out_mine, w_mine = mine(q, kv, kv, key_padding_mask=kpm)
    torch.testing.assert_close(out_mine, out_ref, **EXACT)
    torch.testing.assert_close(w_mine, w_ref, **EXACT)
    assert w_mine.shape == (4, 6)


def test_mha_fully_padded_sequence_gives_zero_attention_not_nan():
    ref, mine = _pair(8, 2, batch_first=True)
    q, k, v = _mha_inputs({"batch_first": True}, B=2)
    kpm = torch.zeros(2, 6, dtype=torch.bool)
    kpm[1] = True  # the second sequence has no valid key
    out, weights = mine(q, k, v, key_padding_mask=kpm)
    assert torch.isfinite(out).all()
    assert (weights[1] == 0).all()
    # its output is then the output projection's bias alone
    torch.testing.assert_close(out[1], mine.out_proj.bias.expand(4, 8), **EXACT)
    torch.testing.assert_close(out[0], ref(q, k, v, key_padding_mask=kpm)[0][0], **EXACT)
    grads = _grads(out, [q, k, v])
    assert all(torch.isfinite(g).all() for g in grads)


def test_mha_dropout_matches_torch_under_the_same_seed():
    ref, mine = _pair(8, 2, dropout=0.3, batch_first=True)
    q, k, v = _mha_inputs({"batch_first": True})
    torch.manual_seed(7)
    out_ref, w_ref = ref(q, k, v)
    torch.manual_seed(7)
    out_mine, w_mine = mine(q, k, v)
    torch.testing.assert_close(out_mine, out_ref, **EXACT)
    torch.testing.assert_close(w_mine, w_ref, **EXACT)
    ref.eval()
    mine.eval()  # no dropout in evaluation
    torch.testing.assert_close(mine(q, k, v)[0], ref(q, k, v)[0], **EXACT)
    assert not torch.allclose(out_mine, mine(q, k, v)[0])


def test_mha_rejects_bad_configuration():
    with pytest.raises(ValueError):
        MultiheadAttention(10, 3)
    with pytest.raises(ValueError):
        MultiheadAttention(0, 1)

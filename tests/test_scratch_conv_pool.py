"""Convolution and pooling autograd Functions (loop reference and vectorised) against PyTorch.

Values and gradients in float64 to round-off (rtol = atol = 1e-10), ``gradcheck`` of every
hand-written backward, and the edge cases: stride > 1, padding (also asymmetric 'same'),
dilation, groups, odd sizes, ceil_mode, ties in max pooling, unbatched and 1-D inputs.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.autograd import gradcheck

from dlbasics.scratch.conv import conv1d, conv1d_loop, conv2d, conv2d_loop, im2col
from dlbasics.scratch.pool import (
    avg_pool1d,
    avg_pool2d,
    avg_pool2d_loop,
    max_pool1d,
    max_pool2d,
    max_pool2d_loop,
)

EXACT = {"rtol": 1e-10, "atol": 1e-10}
F64 = torch.float64


def _rand(*shape: int, seed: int = 0, grad: bool = True) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, dtype=F64, generator=g).requires_grad_(grad)


def _check_against_torch(mine, ref, inputs: list[torch.Tensor]) -> None:
    """Same forward value and the same gradients for a random upstream gradient."""
    y, y_ref = mine(*inputs), ref(*inputs)
    torch.testing.assert_close(y, y_ref, **EXACT)
    gy = _rand(*y.shape, seed=99, grad=False)
    wanted = [t for t in inputs if t is not None and t.requires_grad]
    for a, b in zip(torch.autograd.grad(y, wanted, gy), torch.autograd.grad(y_ref, wanted, gy)):
        torch.testing.assert_close(a, b, **EXACT)


# (in_channels, out_channels, kernel, stride, padding, dilation, groups, H, W)
CONV_CASES = [
    (3, 4, 3, 1, 0, 1, 1, 7, 6),  # plain, odd sizes
    (2, 4, 3, 2, 1, 1, 1, 9, 8),  # stride 2 + padding, leftover rows/cols
    (4, 6, (3, 2), (2, 1), (1, 2), (2, 1), 2, 9, 7),  # anisotropic everything, groups
    (6, 6, 3, 1, "same", 2, 6, 7, 7),  # depthwise, dilated 'same'
    (2, 3, (2, 4), 1, "same", 1, 1, 5, 6),  # even kernel: asymmetric 'same' padding
    (3, 2, 1, 1, 0, 1, 1, 4, 5),  # 1x1 convolution
    (2, 2, (5, 4), 3, "valid", 1, 1, 5, 4),  # kernel covers the whole input
]


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
@pytest.mark.parametrize("impl", [conv2d, conv2d_loop], ids=["im2col", "loop"])
@pytest.mark.parametrize("case", CONV_CASES, ids=[str(c[:7]) for c in CONV_CASES])
@pytest.mark.parametrize("bias", [True, False])
def test_conv2d_matches_torch(impl, case, bias):
    cin, cout, k, s, p, d, g, h, w = case
    kh, kw = (k, k) if isinstance(k, int) else k
    x = _rand(2, cin, h, w, seed=1)
    weight = _rand(cout, cin // g, kh, kw, seed=2)
    b = _rand(cout, seed=3) if bias else None
    _check_against_torch(lambda x_, w_, b_: impl(x_, w_, b_, s, p, d, g),
                         lambda x_, w_, b_: F.conv2d(x_, w_, b_, s, p, d, g), [x, weight, b])


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
@pytest.mark.parametrize("impl", [conv1d, conv1d_loop], ids=["im2col", "loop"])
@pytest.mark.parametrize(("k", "s", "p", "d", "g"),
                         [(3, 1, 0, 1, 1), (3, 2, 2, 2, 2), (4, 1, "same", 1, 1), (2, 3, 1, 1, 4)])
def test_conv1d_matches_torch(impl, k, s, p, d, g):
    x, weight, b = _rand(3, 4, 11, seed=4), _rand(8, 4 // g, k, seed=5), _rand(8, seed=6)
    _check_against_torch(lambda x_, w_, b_: impl(x_, w_, b_, s, p, d, g),
                         lambda x_, w_, b_: F.conv1d(x_, w_, b_, s, p, d, g), [x, weight, b])


@pytest.mark.parametrize(("k", "s", "d"), [(3, 1, 1), ((2, 3), (2, 1), (1, 2)), (1, 2, 1)])
def test_im2col_has_the_layout_of_unfold(k, s, d):
    x = _rand(2, 3, 7, 8, seed=22, grad=False)
    kernel = (k, k) if isinstance(k, int) else k
    stride, dilation = ((v, v) if isinstance(v, int) else v for v in (s, d))
    assert torch.equal(im2col(x, kernel, stride, dilation),
                       F.unfold(x, kernel, dilation=dilation, stride=stride))


def test_conv_unbatched_input_and_only_input_gradient():
    x, weight = _rand(3, 6, 5, seed=7), _rand(2, 3, 3, 3, seed=8, grad=False)
    _check_against_torch(lambda x_: conv2d(x_, weight, None, 1, 1),
                         lambda x_: F.conv2d(x_, weight, None, 1, 1), [x])
    x1 = _rand(3, 9, seed=9)
    torch.testing.assert_close(conv1d(x1, weight[:, :, 0]), F.conv1d(x1, weight[:, :, 0]), **EXACT)


def test_conv_rejects_mismatched_groups():
    with pytest.raises(ValueError):
        conv2d(_rand(1, 4, 5, 5), _rand(2, 3, 3, 3), groups=1)
    with pytest.raises(ValueError):
        conv2d(_rand(1, 4, 5, 5), _rand(3, 2, 3, 3), groups=2)  # 3 outputs into 2 groups
    with pytest.raises(ValueError):
        conv2d(_rand(1, 4, 5, 5), _rand(2, 4, 3, 3), padding="same", stride=2)
    with pytest.raises(ValueError):  # dilated kernel spans 5 columns of a 4-column input
        conv2d_loop(_rand(1, 1, 5, 4), _rand(1, 1, 2, 3), dilation=2)


@pytest.mark.parametrize("impl", [conv2d, conv2d_loop], ids=["im2col", "loop"])
def test_conv2d_gradcheck(impl):
    x, weight, b = _rand(1, 4, 5, 6, seed=10), _rand(4, 2, 2, 3, seed=11), _rand(4, seed=12)
    assert gradcheck(lambda x_, w_, b_: impl(x_, w_, b_, (2, 1), (1, 0), (1, 2), 2),
                     (x, weight, b))
    small = _rand(1, 2, 3, 4, seed=21)
    assert gradcheck(lambda x_, w_: impl(x_, w_, None, 1, "same"), (small, _rand(3, 2, 2, 2)))


# pooling -------------------------------------------------------------------------------------

# (kernel, stride, padding, dilation, ceil_mode)
POOL_CASES = [
    (2, None, 0, 1, False),
    (3, 2, 1, 1, False),
    (3, 2, 0, 1, True),  # ceil_mode adds a partial last window
    ((3, 2), (2, 1), (1, 0), 1, True),
    (2, 3, 1, 1, True),
    (3, 1, 1, 2, False),  # dilation (max pooling only)
    ((2, 3), 2, (1, 1), (2, 1), True),
]


@pytest.mark.parametrize("loop", [False, True], ids=["strided", "loop"])
@pytest.mark.parametrize("case", POOL_CASES, ids=[str(c) for c in POOL_CASES])
def test_max_pool2d_matches_torch(loop, case):
    k, s, p, d, ceil = case
    x = _rand(2, 3, 9, 8, seed=13)
    y, idx = max_pool2d(x, k, s, p, d, ceil, return_indices=True, loop=loop)
    y_ref, idx_ref = F.max_pool2d(x, k, s, p, d, ceil, return_indices=True)
    assert torch.equal(idx, idx_ref)
    _check_against_torch(lambda x_: max_pool2d(x_, k, s, p, d, ceil, loop=loop),
                         lambda x_: F.max_pool2d(x_, k, s, p, d, ceil), [x])


@pytest.mark.parametrize("loop", [False, True], ids=["strided", "loop"])
@pytest.mark.parametrize(("k", "s", "p"), [(2, 1, 0), (3, 2, 1)])
def test_max_pool_ties_pick_the_first_maximum(loop, k, s, p):
    """Integer inputs with many equal values in each window: same arg-max, same gradient."""
    g = torch.Generator().manual_seed(14)
    x = torch.randint(0, 3, (2, 2, 7, 7), generator=g).to(F64).requires_grad_(True)
    _, idx = max_pool2d(x, k, s, p, return_indices=True, loop=loop)
    assert torch.equal(idx, F.max_pool2d(x, k, s, p, return_indices=True)[1])
    _check_against_torch(lambda x_: max_pool2d(x_, k, s, p, loop=loop),
                         lambda x_: F.max_pool2d(x_, k, s, p), [x])


@pytest.mark.parametrize("loop", [False, True], ids=["strided", "loop"])
@pytest.mark.parametrize("case", [c for c in POOL_CASES if c[3] == 1], ids=str)
@pytest.mark.parametrize(("count_include_pad", "divisor_override"),
                         [(True, None), (False, None), (True, 5)])
def test_avg_pool2d_matches_torch(loop, case, count_include_pad, divisor_override):
    k, s, p, _, ceil = case
    x = _rand(2, 3, 9, 8, seed=15)
    _check_against_torch(
        lambda x_: avg_pool2d(x_, k, s, p, ceil, count_include_pad, divisor_override, loop),
        lambda x_: F.avg_pool2d(x_, k, s, p, ceil, count_include_pad, divisor_override), [x])


@pytest.mark.parametrize("loop", [False, True], ids=["strided", "loop"])
@pytest.mark.parametrize(("k", "s", "p", "d", "ceil"),
                         [(2, None, 0, 1, False), (3, 2, 1, 2, True), (4, 3, 2, 1, True)])
def test_pool1d_matches_torch(loop, k, s, p, d, ceil):
    x = _rand(2, 3, 11, seed=16)
    _check_against_torch(lambda x_: max_pool1d(x_, k, s, p, d, ceil, loop=loop),
                         lambda x_: F.max_pool1d(x_, k, s, p, d, ceil), [x])
    _, idx = max_pool1d(x, k, s, p, d, ceil, return_indices=True, loop=loop)
    assert torch.equal(idx, F.max_pool1d(x, k, s, p, d, ceil, return_indices=True)[1])
    _check_against_torch(lambda x_: avg_pool1d(x_, k, s, p, ceil, False, loop=loop),
                         lambda x_: F.avg_pool1d(x_, k, s, p, ceil, False), [x])


@pytest.mark.parametrize("loop", [False, True], ids=["strided", "loop"])
def test_pool2d_unbatched_matches_torch(loop):
    x3 = _rand(3, 6, 7, seed=17)  # unbatched [C, H, W]
    _check_against_torch(lambda x_: max_pool2d(x_, 2, loop=loop), lambda x_: F.max_pool2d(x_, 2),
                         [x3])
    _check_against_torch(lambda x_: avg_pool2d(x_, 3, 2, 1, loop=loop),
                         lambda x_: F.avg_pool2d(x_, 3, 2, 1), [x3])


@pytest.mark.parametrize("loop", [False, True], ids=["strided", "loop"])
def test_pool_gradcheck(loop):
    x = _rand(1, 2, 6, 5, seed=18)
    assert gradcheck(lambda x_: max_pool2d(x_, (3, 2), 2, 1, (1, 2), True, loop=loop), (x,))
    assert gradcheck(lambda x_: avg_pool2d(x_, 3, 2, 1, True, False, loop=loop), (x,))


def test_pool_rejects_padding_larger_than_half_the_window():
    with pytest.raises(ValueError):
        max_pool2d(_rand(1, 1, 6, 6), 2, padding=2)
    with pytest.raises(ValueError):
        avg_pool2d_loop(_rand(1, 1, 6, 6), 3, padding=2)
    with pytest.raises(ValueError):
        max_pool2d_loop(_rand(1, 1, 2, 2), 5, padding=1)  # window larger than padded input


def test_loop_and_vectorised_agree_on_a_larger_input():
    x = _rand(4, 8, 12, 12, seed=19, grad=False)
    w = _rand(16, 4, 3, 3, seed=20, grad=False)
    torch.testing.assert_close(conv2d(x, w, None, 2, 1, 1, 2), conv2d_loop(x, w, None, 2, 1, 1, 2),
                               **EXACT)
    torch.testing.assert_close(max_pool2d(x, 3, 2, 1), max_pool2d_loop(x, 3, 2, 1), **EXACT)
    torch.testing.assert_close(avg_pool2d(x, 3, 2, 1), avg_pool2d_loop(x, 3, 2, 1), **EXACT)

"""Max and average pooling in 2-D (and 1-D), forward and backward, as ``torch.autograd.Function``s.

For a window of ``kh x kw`` positions at stride ``s`` (dilation ``d``, padding ``pad``)::

    max:      O(i, j) = max_{p, q} x_pad(i*s_h + p*d_h, j*s_w + q*d_w)      (x_pad: -inf padding)
    average:  O(i, j) = 1/D(i, j) * sum_{p, q} x_pad(i*s_h + p, j*s_w + q)   (x_pad: zero padding)

Backward::

    max:      dL/dx(r, c) = sum of dL/dO(i, j) over the windows (i, j) whose arg-max is (r, c)
    average:  dL/dx(r, c) = sum of dL/dO(i, j) / D(i, j) over the windows (i, j) containing (r, c)

The arg-max is the first maximal element in row-major window order, as in PyTorch. The divisor
``D`` is the window's size counted over input + padding (``count_include_pad=True``), its number of
real input elements (``count_include_pad=False``), or ``divisor_override``.

Output size::

    H_out = floor((H + 2 pad - d (k - 1) - 1 + (s - 1 if ceil_mode else 0)) / s) + 1
    and with ceil_mode the last window must start inside the input or the left padding.

As for convolution, there are two implementations: ``*_loop`` (loops over output positions, for
reading) and the vectorised default, built on a strided window view ``[N, C, H_out, W_out, kh,
kw]`` of the padded input (no copy): the max takes the arg-max over the flattened window and its
backward is one ``scatter_add`` of the gradients at the arg-max indices; the average adds the
``kh * kw`` shifted views, and its backward (col2im) adds the gradient into each shifted view of a
zero image. 1-D pooling is 2-D pooling on height 1.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from dlbasics.scratch.conv import batched, pair, single

__all__ = [
    "AvgPool2dLoop",
    "AvgPool2dStrided",
    "MaxPool2dLoop",
    "MaxPool2dStrided",
    "avg_pool1d",
    "avg_pool2d",
    "avg_pool2d_loop",
    "max_pool1d",
    "max_pool2d",
    "max_pool2d_loop",
    "pool_output_size",
]


def pool_output_size(size: int, kernel: int, stride: int, pad: int, dilation: int,
                     ceil_mode: bool) -> int:
    """Number of windows along one axis, with PyTorch's ``ceil_mode`` rule."""
    if pad > (dilation * (kernel - 1) + 1) // 2:
        raise ValueError(f"pad should be at most half of effective kernel size, got pad={pad}")
    span = size + 2 * pad - dilation * (kernel - 1) - 1
    if span < 0:
        raise ValueError("pooling window larger than the padded input")
    out = (span + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (out - 1) * stride >= size + pad:
        out -= 1
    return out


class _Geometry:
    """Output size and the padding (right/bottom possibly extended for ceil_mode) of one pooling."""

    def __init__(self, hw: tuple[int, int], kernel, stride, padding, dilation, ceil_mode: bool):
        self.h, self.w = hw
        self.kernel, self.stride = pair(kernel), pair(stride)
        self.padding, self.dilation = pair(padding), pair(dilation)
        (kh, kw), (sh, sw), (ph, pw), (dh, dw) = self.kernel, self.stride, self.padding, self.dilation
        self.ho = pool_output_size(self.h, kh, sh, ph, dh, ceil_mode)
        self.wo = pool_output_size(self.w, kw, sw, pw, dw, ceil_mode)
        # the windows need rows [0, (ho - 1) s + d (k - 1] of the padded image
        self.pad_bottom = max(0, (self.ho - 1) * sh + dh * (kh - 1) + 1 - self.h - ph)
        self.pad_right = max(0, (self.wo - 1) * sw + dw * (kw - 1) + 1 - self.w - pw)

    def pad(self, x: Tensor, value: float) -> Tensor:
        ph, pw = self.padding
        if ph == pw == self.pad_right == self.pad_bottom == 0:
            return x.contiguous()
        return F.pad(x, (pw, self.pad_right, ph, self.pad_bottom), value=value).contiguous()

    def windows(self, xp: Tensor) -> Tensor:
        """Strided view ``[N, C, H_out, W_out, kh, kw]`` of the padded ``xp`` (no copy)."""
        n, c, hp, wp = xp.shape
        (kh, kw), (sh, sw), (dh, dw) = self.kernel, self.stride, self.dilation
        return xp.as_strided((n, c, self.ho, self.wo, kh, kw),
                             (c * hp * wp, hp * wp, sh * wp, sw, dh * wp, dw))

    def flat_index(self, arg: Tensor) -> Tensor:
        """Window-local arg-max ``p * kw + q`` -> index ``r * W + c`` into the unpadded input."""
        (kh, kw), (sh, sw), (ph, pw), (dh, dw) = self.kernel, self.stride, self.padding, self.dilation
        at = {"device": arg.device}  # every index tensor lives where the input does
        p = torch.arange(kh, **at).repeat_interleave(kw)  # window cell p * kw + q -> p
        q = torch.arange(kw, **at).repeat(kh)  # -> q
        rows = (torch.arange(self.ho, **at) * sh - ph).view(-1, 1, 1) + p * dh  # [H_out, 1, kh*kw]
        cols = (torch.arange(self.wo, **at) * sw - pw).view(-1, 1) + q * dw  # [W_out, kh*kw]
        grid = rows * self.w + cols  # [H_out, W_out, kh*kw]
        return grid.expand(*arg.shape, -1).gather(-1, arg.unsqueeze(-1)).squeeze(-1)

    def divisor(self, count_include_pad: bool, divisor_override: int | None,
                like: Tensor) -> Tensor:
        """``D(i, j)`` as an ``[H_out, W_out]`` tensor of ``like``'s dtype and device."""
        if divisor_override:
            return like.new_full((self.ho, self.wo), float(divisor_override))

        def counts(n_out: int, size: int, k: int, s: int, pad: int) -> Tensor:
            start = torch.arange(n_out, device=like.device) * s - pad
            end = torch.clamp(start + k, max=size + pad)
            if count_include_pad:
                return end - start
            return torch.clamp(end, max=size) - torch.clamp(start, min=0)

        (kh, kw), (sh, sw), (ph, pw) = self.kernel, self.stride, self.padding
        ch = counts(self.ho, self.h, kh, sh, ph)
        cw = counts(self.wo, self.w, kw, sw, pw)
        return (ch.view(-1, 1) * cw).to(like.dtype)


def _max_result(ctx, x: Tensor, geo: _Geometry, values: Tensor, arg: Tensor) -> tuple[Tensor, Tensor]:
    """``(values, flat input index of each window's arg-max)``, the index saved for backward."""
    index = geo.flat_index(arg)
    ctx.save_for_backward(index)
    ctx.x_shape = x.shape
    ctx.mark_non_differentiable(index)
    return values, index


class MaxPool2dStrided(torch.autograd.Function):
    """Vectorised max pooling; returns ``(values, flat input indices)``."""

    @staticmethod
    def forward(ctx, x: Tensor, kernel, stride, padding, dilation, ceil_mode: bool):
        n, c, h, w = x.shape
        geo = _Geometry((h, w), kernel, stride, padding, dilation, ceil_mode)
        win = geo.windows(geo.pad(x, float("-inf")))
        values, arg = win.reshape(n, c, geo.ho, geo.wo, -1).max(dim=-1)
        return _max_result(ctx, x, geo, values, arg)

    @staticmethod
    def backward(ctx, grad_out: Tensor, _grad_index: Tensor):
        (index,) = ctx.saved_tensors
        n, c, h, w = ctx.x_shape
        gx = grad_out.new_zeros(n * c, h * w)
        gx.scatter_add_(1, index.reshape(n * c, -1), grad_out.reshape(n * c, -1))
        return gx.view(n, c, h, w), None, None, None, None, None


class MaxPool2dLoop(torch.autograd.Function):
    """Reference max pooling: a Python loop over output positions ``(i, j)``."""

    @staticmethod
    def forward(ctx, x: Tensor, kernel, stride, padding, dilation, ceil_mode: bool):
        n, c, h, w = x.shape
        geo = _Geometry((h, w), kernel, stride, padding, dilation, ceil_mode)
        (kh, kw), (sh, sw), (dh, dw) = geo.kernel, geo.stride, geo.dilation
        xp = geo.pad(x, float("-inf"))
        values = x.new_empty(n, c, geo.ho, geo.wo)
        arg = torch.empty(n, c, geo.ho, geo.wo, dtype=torch.long, device=x.device)
        for i in range(geo.ho):
            for j in range(geo.wo):
                window = xp[:, :, i * sh : i * sh + dh * (kh - 1) + 1 : dh,
                            j * sw : j * sw + dw * (kw - 1) + 1 : dw]  # [N, C, kh, kw]
                values[:, :, i, j], arg[:, :, i, j] = window.reshape(n, c, -1).max(dim=-1)
        return _max_result(ctx, x, geo, values, arg)

    @staticmethod
    def backward(ctx, grad_out: Tensor, _grad_index: Tensor):
        (index,) = ctx.saved_tensors
        n, c, h, w = ctx.x_shape
        gx = grad_out.new_zeros(n, c, h * w)
        for i in range(index.shape[2]):
            for j in range(index.shape[3]):  # the window's gradient goes to its arg-max
                gx.scatter_add_(2, index[:, :, i, j, None], grad_out[:, :, i, j, None])
        return gx.view(n, c, h, w), None, None, None, None, None


class AvgPool2dStrided(torch.autograd.Function):
    """Vectorised average pooling (strided window sum, ``F.fold`` backward)."""

    @staticmethod
    def forward(ctx, x: Tensor, kernel, stride, padding, ceil_mode: bool, count_include_pad: bool,
                divisor_override: int | None):
        geo = _Geometry(tuple(x.shape[-2:]), kernel, stride, padding, 1, ceil_mode)
        div = geo.divisor(count_include_pad, divisor_override, x)
        win = geo.windows(geo.pad(x, 0.0))
        (kh, kw) = geo.kernel
        out = win[..., 0, 0].clone()
        for p in range(kh):  # sum the kh*kw shifted (strided) views: few large element-wise ops
            for q in range(kw):
                if p or q:
                    out += win[..., p, q]
        ctx.geo, ctx.div = geo, div
        return out.div_(div)

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        geo, div = ctx.geo, ctx.div
        n, c = grad_out.shape[:2]
        (kh, kw), (ph, pw) = geo.kernel, geo.padding
        g = grad_out / div
        hp, wp = geo.h + ph + geo.pad_bottom, geo.w + pw + geo.pad_right
        gxp = grad_out.new_zeros(n, c, hp, wp)
        gwin = geo.windows(gxp)
        for p in range(kh):  # col2im: for a fixed cell (p, q) the windows hit distinct pixels
            for q in range(kw):
                gwin[..., p, q] += g
        return gxp[:, :, ph : ph + geo.h, pw : pw + geo.w], None, None, None, None, None, None


class AvgPool2dLoop(torch.autograd.Function):
    """Reference average pooling: a Python loop over output positions ``(i, j)``."""

    @staticmethod
    def forward(ctx, x: Tensor, kernel, stride, padding, ceil_mode: bool, count_include_pad: bool,
                divisor_override: int | None):
        geo = _Geometry(tuple(x.shape[-2:]), kernel, stride, padding, 1, ceil_mode)
        div = geo.divisor(count_include_pad, divisor_override, x)
        (kh, kw), (sh, sw) = geo.kernel, geo.stride
        xp = geo.pad(x, 0.0)
        out = x.new_empty(*x.shape[:2], geo.ho, geo.wo)
        for i in range(geo.ho):
            for j in range(geo.wo):
                window = xp[:, :, i * sh : i * sh + kh, j * sw : j * sw + kw]
                out[:, :, i, j] = window.sum(dim=(-2, -1)) / div[i, j]
        ctx.geo, ctx.div, ctx.xp_shape = geo, div, xp.shape
        return out

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        geo, div = ctx.geo, ctx.div
        (kh, kw), (sh, sw), (ph, pw) = geo.kernel, geo.stride, geo.padding
        gxp = grad_out.new_zeros(ctx.xp_shape)
        for i in range(geo.ho):
            for j in range(geo.wo):
                gxp[:, :, i * sh : i * sh + kh, j * sw : j * sw + kw] += (
                    grad_out[:, :, i, j, None, None] / div[i, j]
                )
        return gxp[:, :, ph : ph + geo.h, pw : pw + geo.w], None, None, None, None, None, None


def max_pool2d(x: Tensor, kernel_size, stride=None, padding=0, dilation=1, ceil_mode: bool = False,
               return_indices: bool = False, loop: bool = False):
    """Max pooling with the arguments of ``F.max_pool2d`` (``loop=True``: the reference version)."""
    fn = MaxPool2dLoop if loop else MaxPool2dStrided
    stride = kernel_size if stride is None or stride == [] else stride
    values, index = batched(fn.apply, x, kernel_size, stride, padding, dilation, ceil_mode)
    return (values, index) if return_indices else values


def avg_pool2d(x: Tensor, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
               count_include_pad: bool = True, divisor_override: int | None = None,
               loop: bool = False) -> Tensor:
    """Average pooling with the arguments of ``F.avg_pool2d`` (``loop=True``: the reference)."""
    fn = AvgPool2dLoop if loop else AvgPool2dStrided
    stride = kernel_size if stride is None or stride == [] else stride
    return batched(fn.apply, x, kernel_size, stride, padding, ceil_mode, count_include_pad,
                    divisor_override)


def max_pool2d_loop(x: Tensor, kernel_size, stride=None, padding=0, dilation=1,
                    ceil_mode: bool = False, return_indices: bool = False):
    """Reference loop max pooling, arguments of ``F.max_pool2d``."""
    return max_pool2d(x, kernel_size, stride, padding, dilation, ceil_mode, return_indices, True)


def avg_pool2d_loop(x: Tensor, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
                    count_include_pad: bool = True, divisor_override: int | None = None) -> Tensor:
    """Reference loop average pooling, arguments of ``F.avg_pool2d``."""
    return avg_pool2d(x, kernel_size, stride, padding, ceil_mode, count_include_pad,
                      divisor_override, True)


def max_pool1d(x: Tensor, kernel_size, stride=None, padding=0, dilation=1, ceil_mode: bool = False,
               return_indices: bool = False, loop: bool = False):
    """1-D max pooling ``O(i) = max_p x(i*s + p*d)``: :func:`max_pool2d` on height 1."""
    stride = kernel_size if stride is None or stride == [] else stride
    out = max_pool2d(x.unsqueeze(-2), (1, single(kernel_size)), (1, single(stride)),
                     (0, single(padding)), (1, single(dilation)), ceil_mode, return_indices, loop)
    return tuple(o.squeeze(-2) for o in out) if return_indices else out.squeeze(-2)


def avg_pool1d(x: Tensor, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
               count_include_pad: bool = True, loop: bool = False) -> Tensor:
    """1-D average pooling: :func:`avg_pool2d` on height 1."""
    stride = kernel_size if stride is None or stride == [] else stride
    return avg_pool2d(x.unsqueeze(-2), (1, single(kernel_size)), (1, single(stride)),
                      (0, single(padding)), ceil_mode, count_include_pad, None, loop).squeeze(-2)

"""2-D (and 1-D) convolution, forward and backward, as ``torch.autograd.Function``s.

Like every deep-learning library, "convolution" here is cross-correlation. For one input channel
and one kernel ``k`` of size ``kh x kw`` (stride 1, no padding or dilation)::

    y(i, j) = sum_p sum_q x(i + p, j + q) k(p, q)

In general, with stride ``s``, dilation ``d``, zero padding, ``C`` input channels split into ``G``
groups (output channel ``o`` sees the ``C/G`` input channels of its group) and a bias::

    y[n, o, i, j] = b[o] + sum_{c in group(o)} sum_p sum_q x_pad[n, c, i*s_h + p*d_h, j*s_w + q*d_w]
                                                          * k[o, c, p, q]
    H_out = floor((H + pad_top + pad_bottom - d_h (kh - 1) - 1) / s_h) + 1        (same for W)

Backward (every ``x`` element gathers the gradients of the outputs it fed)::

    dL/dk[o, c, p, q] = sum_n sum_i sum_j dL/dy[n, o, i, j] x_pad[n, c, r(i, p), s(j, q)]
    dL/dx_pad[n, c, r(i, p), s(j, q)] += sum_{o in group(c)} dL/dy[n, o, i, j] k[o, c, p, q]
    dL/db[o]          = sum_n sum_i sum_j dL/dy[n, o, i, j]
    with r(i, p) = i*s_h + p*d_h,  s(j, q) = j*s_w + q*d_w

Two implementations of the same maths:

* :class:`Conv2dLoop` (:func:`conv2d_loop`) loops over output positions and kernel offsets
  exactly as written above; it is for reading and for small inputs only.
* :class:`Conv2dIm2col` (:func:`conv2d`) lays every receptive field out as a column
  (:func:`im2col`, a strided view copied once), so the forward is one batched matmul
  ``W[O, C kh kw] @ cols[N, C kh kw, L]``;
  the backward is two matmuls, ``dW = sum_n dY cols^T`` and ``dcols = W^T dY``, and col2im
  (``F.fold``) adds the overlapping column gradients back into the image.

1-D convolution is the 2-D one on an image of height 1 (:func:`conv1d`, :func:`conv1d_loop`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "Conv2dIm2col",
    "Conv2dLoop",
    "batched",
    "conv1d",
    "conv1d_loop",
    "conv2d",
    "conv2d_loop",
    "conv_output_size",
    "im2col",
    "pair",
    "resolve_padding",
    "single",
]

Pad4 = tuple[int, int, int, int]  # (top, bottom, left, right)


def pair(v: int | tuple[int, ...] | list[int]) -> tuple[int, int]:
    """``3 -> (3, 3)``; ``(2, 3) -> (2, 3)``."""
    if isinstance(v, int):
        return (v, v)
    a, b = v
    return (int(a), int(b))


def single(v: int | tuple[int, ...] | list[int]) -> int:
    """``3 -> 3``; ``(3,) -> 3``."""
    return v if isinstance(v, int) else int(v[0])


def resolve_padding(
    padding: int | tuple[int, int] | str,
    kernel: tuple[int, int],
    dilation: tuple[int, int],
    stride: tuple[int, int],
) -> Pad4:
    """Turn ``int``, ``(ph, pw)``, ``'valid'`` or ``'same'`` into ``(top, bottom, left, right)``.

    ``'same'`` (stride 1 only) pads ``d (k - 1)`` in total, the odd element at the bottom/right,
    like ``nn.Conv2d``.
    """
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0, 0, 0)
        if padding != "same":
            raise ValueError(f"padding must be 'valid', 'same', an int or a pair, got {padding!r}")
        if stride != (1, 1):
            raise ValueError("padding='same' is not supported for strided convolutions")
        th, tw = dilation[0] * (kernel[0] - 1), dilation[1] * (kernel[1] - 1)
        return (th // 2, th - th // 2, tw // 2, tw - tw // 2)
    ph, pw = pair(padding)
    return (ph, ph, pw, pw)


def conv_output_size(size: int, kernel: int, stride: int, pad_total: int, dilation: int) -> int:
    """``floor((size + pad_total - dilation (kernel - 1) - 1) / stride) + 1``, at least 1."""
    out = (size + pad_total - dilation * (kernel - 1) - 1) // stride + 1
    if out < 1:
        raise ValueError(f"kernel {kernel} (dilation {dilation}) is larger than the padded input "
                         f"size {size + pad_total}")
    return out


def _check(x: Tensor, weight: Tensor, groups: int) -> None:
    if x.dim() != 4 or weight.dim() != 4:
        raise ValueError(
            f"expected 4-D input and weight, got {tuple(x.shape)}, {tuple(weight.shape)}"
        )
    if x.shape[1] != weight.shape[1] * groups or weight.shape[0] % groups:
        raise ValueError(
            f"input channels {x.shape[1]} / weight {tuple(weight.shape)} do not fit groups={groups}"
        )


class Conv2dLoop(torch.autograd.Function):
    """Reference convolution: Python loops over output positions ``(i, j)`` and offsets ``(p, q)``.

    Inside the loops, one ``einsum`` contracts the channels of a group for the whole batch.
    """

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Tensor | None, stride: tuple[int, int],
                padding: Pad4, dilation: tuple[int, int], groups: int) -> Tensor:
        _check(x, weight, groups)
        (sh, sw), (dh, dw), (pt, pb, pl, pr) = stride, dilation, padding
        n, c, h, w = x.shape
        o, _, kh, kw = weight.shape
        ho = conv_output_size(h, kh, sh, pt + pb, dh)
        wo = conv_output_size(w, kw, sw, pl + pr, dw)
        xp = F.pad(x, (pl, pr, pt, pb)).reshape(n, groups, c // groups, h + pt + pb, w + pl + pr)
        k = weight.reshape(groups, o // groups, c // groups, kh, kw)
        y = x.new_zeros(n, groups, o // groups, ho, wo)
        for i in range(ho):
            for j in range(wo):
                for p in range(kh):
                    for q in range(kw):
                        # y(i, j) += x(i*s + p*d, j*s + q*d) k(p, q), summed over the channels
                        y[:, :, :, i, j] += torch.einsum(
                            "ngc,goc->ngo", xp[:, :, :, i * sh + p * dh, j * sw + q * dw],
                            k[:, :, :, p, q],
                        )
        y = y.view(n, o, ho, wo)
        if bias is not None:
            y += bias.view(1, o, 1, 1)
        ctx.save_for_backward(xp, k)
        ctx.conf = (stride, padding, dilation, groups, x.shape, bias is not None)
        return y

    @staticmethod
    def backward(ctx, grad_y: Tensor):
        xp, k = ctx.saved_tensors
        (sh, sw), (pt, _, pl, _), (dh, dw), groups, (n, c, h, w), has_bias = ctx.conf
        _, og, cg, kh, kw = k.shape
        ho, wo = grad_y.shape[-2:]
        gy = grad_y.reshape(n, groups, og, ho, wo)
        gxp = torch.zeros_like(xp)
        gk = torch.zeros_like(k)
        for i in range(ho):
            for j in range(wo):
                for p in range(kh):
                    for q in range(kw):
                        r, s = i * sh + p * dh, j * sw + q * dw
                        gxp[:, :, :, r, s] += torch.einsum("ngo,goc->ngc", gy[:, :, :, i, j],
                                                           k[:, :, :, p, q])
                        gk[:, :, :, p, q] += torch.einsum("ngo,ngc->goc", gy[:, :, :, i, j],
                                                          xp[:, :, :, r, s])
        gx = gxp.view(n, c, *xp.shape[-2:])[:, :, pt : pt + h, pl : pl + w]
        gb = grad_y.sum(dim=(0, 2, 3)) if has_bias else None
        return gx, gk.view(groups * og, cg, kh, kw), gb, None, None, None, None


def im2col(xp: Tensor, kernel: tuple[int, int], stride: tuple[int, int],
           dilation: tuple[int, int]) -> Tensor:
    """Receptive fields of the (already padded) ``xp [N, C, H, W]`` as columns ``[N, C kh kw, L]``.

    ``cols[n, (c, p, q), i * W_out + j] = xp[n, c, i*s_h + p*d_h, j*s_w + q*d_w]``, the layout of
    ``F.unfold``: a strided view ``[N, C, kh, kw, H_out, W_out]`` of ``xp`` (no copy), copied
    once into a contiguous matrix.
    """
    xp = xp.contiguous()
    n, c, h, w = xp.shape
    (kh, kw), (sh, sw), (dh, dw) = kernel, stride, dilation
    ho, wo = conv_output_size(h, kh, sh, 0, dh), conv_output_size(w, kw, sw, 0, dw)
    view = xp.as_strided((n, c, kh, kw, ho, wo), (c * h * w, h * w, dh * w, dw, sh * w, sw))
    return view.reshape(n, c * kh * kw, ho * wo)


class Conv2dIm2col(torch.autograd.Function):
    """Vectorised convolution: :func:`im2col` + batched matmul; col2im (``F.fold``) in the
    backward."""

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Tensor | None, stride: tuple[int, int],
                padding: Pad4, dilation: tuple[int, int], groups: int) -> Tensor:
        _check(x, weight, groups)
        pt, pb, pl, pr = padding
        n, c, h, w = x.shape
        o, cg, kh, kw = weight.shape
        ho = conv_output_size(h, kh, stride[0], pt + pb, dilation[0])
        wo = conv_output_size(w, kw, stride[1], pl + pr, dilation[1])
        xp = F.pad(x, (pl, pr, pt, pb)) if any(padding) else x
        cols = im2col(xp, (kh, kw), stride, dilation)  # [N, C kh kw, L]
        length = ho * wo
        if groups == 1:
            y = weight.reshape(o, cg * kh * kw) @ cols  # [N, O, L]
        else:
            kg = cg * kh * kw
            y = (weight.reshape(groups, o // groups, kg) @ cols.view(n, groups, kg, length))
            y = y.view(n, o, length)
        if bias is not None:
            y += bias.view(1, o, 1)
        ctx.save_for_backward(cols, weight)
        ctx.conf = (stride, padding, dilation, groups, tuple(xp.shape[-2:]), bias is not None)
        return y.view(n, o, ho, wo)

    @staticmethod
    def backward(ctx, grad_y: Tensor):
        cols, weight = ctx.saved_tensors
        stride, (pt, pb, pl, pr), dilation, groups, padded_hw, has_bias = ctx.conf
        n, o = grad_y.shape[:2]
        _, cg, kh, kw = weight.shape
        kg, length = cg * kh * kw, cols.shape[-1]
        gy = grad_y.reshape(n, groups, o // groups, length)
        colsg = cols.view(n, groups, kg, length)
        gx = gw = gb = None
        if ctx.needs_input_grad[1]:
            # dW[g, o, k] = sum_n sum_l dY[n, g, o, l] cols[n, g, k, l]
            gw = (gy @ colsg.transpose(-1, -2)).sum(dim=0).view(weight.shape)
        if ctx.needs_input_grad[0]:
            gcols = weight.reshape(groups, o // groups, kg).transpose(1, 2) @ gy  # [N, G, kg, L]
            # col2im: add every column back onto the pixels it was copied from, then crop
            gx = F.fold(gcols.view(n, groups * kg, length), padded_hw, (kh, kw),
                        dilation=dilation, stride=stride)
            if pt or pb or pl or pr:
                gx = gx[:, :, pt : padded_hw[0] - pb, pl : padded_hw[1] - pr]
        if has_bias and ctx.needs_input_grad[2]:
            gb = grad_y.sum(dim=(0, 2, 3))
        return gx, gw, gb, None, None, None, None


def batched(fn, x: Tensor, *args):
    """Run a 4-D op (convolution, pooling) on [N, C, H, W] or unbatched [C, H, W] input."""
    if x.dim() == 3:
        out = fn(x.unsqueeze(0), *args)
        return tuple(o.squeeze(0) for o in out) if isinstance(out, tuple) else out.squeeze(0)
    return fn(x, *args)


def _conv2d_args(weight: Tensor, stride, padding, dilation) -> tuple:
    stride, dilation = pair(stride), pair(dilation)
    return stride, resolve_padding(padding, tuple(weight.shape[-2:]), dilation, stride), dilation


def conv2d(x: Tensor, weight: Tensor, bias: Tensor | None = None,
           stride: int | tuple[int, int] = 1, padding: int | tuple[int, int] | str = 0,
           dilation: int | tuple[int, int] = 1, groups: int = 1) -> Tensor:
    """Vectorised (im2col) 2-D convolution with the arguments of ``F.conv2d``; ``x`` is [N, C, H, W]
    or unbatched [C, H, W]."""
    s, p, d = _conv2d_args(weight, stride, padding, dilation)
    return batched(Conv2dIm2col.apply, x, weight, bias, s, p, d, groups)


def conv2d_loop(x: Tensor, weight: Tensor, bias: Tensor | None = None,
                stride: int | tuple[int, int] = 1, padding: int | tuple[int, int] | str = 0,
                dilation: int | tuple[int, int] = 1, groups: int = 1) -> Tensor:
    """Reference loop 2-D convolution (small inputs only), arguments of ``F.conv2d``."""
    s, p, d = _conv2d_args(weight, stride, padding, dilation)
    return Conv2dLoop.apply(x, weight, bias, s, p, d, groups)


def _as_2d(stride: int | tuple[int], padding: int | tuple[int] | str, dilation: int | tuple[int]):
    pad = padding if isinstance(padding, str) else (0, single(padding))
    return (1, single(stride)), pad, (1, single(dilation))


def conv1d(x: Tensor, weight: Tensor, bias: Tensor | None = None,
           stride: int | tuple[int] = 1, padding: int | tuple[int] | str = 0,
           dilation: int | tuple[int] = 1, groups: int = 1) -> Tensor:
    """1-D convolution ``y(i) = sum_p x(i + p) k(p)``: :func:`conv2d` on height 1; ``x`` is
    [N, C, L] or unbatched [C, L]."""
    s, p, d = _as_2d(stride, padding, dilation)  # height 1: [N, C, L] -> [N, C, 1, L]
    return conv2d(x.unsqueeze(-2), weight.unsqueeze(2), bias, s, p, d, groups).squeeze(-2)


def conv1d_loop(x: Tensor, weight: Tensor, bias: Tensor | None = None,
                stride: int | tuple[int] = 1, padding: int | tuple[int] | str = 0,
                dilation: int | tuple[int] = 1, groups: int = 1) -> Tensor:
    """Reference loop 1-D convolution: :func:`conv2d_loop` on height 1."""
    s, p, d = _as_2d(stride, padding, dilation)
    return conv2d_loop(x.unsqueeze(2), weight.unsqueeze(2), bias, s, p, d, groups).squeeze(2)

"""Losses, penalties and dropout written from elementary tensor ops (autograd does the backward).

Mean squared error::

    MSE(y_hat, y) = 1/n * sum_i (y_hat_i - y_i)^2

Cross-entropy over C classes, computed from a numerically stable log-softmax::

    logsumexp(z) = m + log sum_c exp(z_c - m),   m = max_c z_c   (no overflow: z_c - m <= 0)
    log_softmax(z)_c = z_c - logsumexp(z)
    CE(z, y) = -log_softmax(z)_y
    label smoothing eps:  CE = (1 - eps) * (-log p_y) + eps/C * sum_c (-log p_c)

Penalties (lambda is the caller's)::

    L1(w) = sum |w|            d/dw = sign(w)
    L2(w) = 1/2 sum w^2        d/dw = w        (so  lr * lambda * w  is SGD's ``weight_decay``)

Inverted dropout (training only)::

    m_i ~ Bernoulli(1 - p),   y = x * m / (1 - p)    so  E[y] = x;  evaluation is the identity.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor

__all__ = [
    "cross_entropy",
    "dropout",
    "l1_penalty",
    "l2_penalty",
    "log_softmax",
    "logsumexp",
    "mse_loss",
    "nll_loss",
    "softmax",
]


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def mse_loss(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """``(input - target)^2`` reduced like ``F.mse_loss``."""
    return _reduce((input - target) ** 2, reduction)


def logsumexp(x: Tensor, dim: int = -1, keepdim: bool = False) -> Tensor:
    """``m + log(sum(exp(x - m)))`` with ``m = max(x)``; all ``-inf`` rows give ``-inf``."""
    m = x.amax(dim=dim, keepdim=True).detach()
    m = torch.where(torch.isfinite(m), m, torch.zeros_like(m))  # all -inf (or +inf) rows
    out = m + torch.log(torch.exp(x - m).sum(dim=dim, keepdim=True))
    return out if keepdim else out.squeeze(dim)


def log_softmax(x: Tensor, dim: int = -1) -> Tensor:
    """``x - logsumexp(x)``: never exponentiates a positive number, so it cannot overflow."""
    return x - logsumexp(x, dim=dim, keepdim=True)


def softmax(x: Tensor, dim: int = -1) -> Tensor:
    """``exp(log_softmax(x))``."""
    return torch.exp(log_softmax(x, dim=dim))


def nll_loss(
    logp: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
) -> Tensor:
    """Negative log-likelihood of class indices, ``-w[y] * logp[y]``, like ``F.nll_loss``.

    ``logp`` is ``[N, C]`` or ``[N, C, d1, ...]``; the weighted mean divides by ``sum w[y]`` over
    the targets that are not ``ignore_index``.
    """
    target_shape = target.shape
    if logp.dim() > 2:  # [N, C, d1, ...] -> [N * d1 * ..., C]
        logp = logp.movedim(1, -1).reshape(-1, logp.shape[1])
        target = target.reshape(-1)
    keep = target != ignore_index
    safe_target = torch.where(keep, target, torch.zeros_like(target))
    w = torch.ones_like(logp[:, 0]) if weight is None else weight.index_select(0, safe_target)
    w = w * keep
    loss = -w * logp.gather(1, safe_target.unsqueeze(1)).squeeze(1)
    if reduction == "mean":
        return loss.sum() / w.sum()
    return _reduce(loss.reshape(target_shape), reduction)


def cross_entropy(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> Tensor:
    """Softmax cross-entropy like ``F.cross_entropy``, from :func:`log_softmax`.

    ``target`` holds class indices (``[N]`` or ``[N, d1, ...]``) or class probabilities (same shape
    as ``input``). Class dimension is 1 (``[N, C, ...]``), or 0 for an unbatched ``[C]`` input.
    """
    if input.dim() == 1:  # unbatched [C]
        out = cross_entropy(input.unsqueeze(0), target.unsqueeze(0), weight, ignore_index,
                            reduction, label_smoothing)
        return out.squeeze(0) if reduction == "none" else out
    logp = log_softmax(input, dim=1)
    num_classes = input.shape[1]
    w_shape = [1, num_classes] + [1] * (input.dim() - 2)
    if target.is_floating_point():  # class probabilities
        q = target
        if label_smoothing > 0:
            q = q * (1 - label_smoothing) + label_smoothing / num_classes
        wlogp = logp if weight is None else logp * weight.reshape(w_shape)
        loss = -(q * wlogp).sum(dim=1)
        if reduction == "mean":  # torch divides by the number of samples, not by the weights
            return loss.sum() / (input.numel() // num_classes)
        return _reduce(loss, reduction)

    nll = nll_loss(logp, target, weight, ignore_index, reduction)
    if label_smoothing == 0:
        return nll
    # uniform part: -sum_c w_c log p_c, for the kept targets, normalised like the nll term
    keep = target != ignore_index
    wlogp = logp if weight is None else logp * weight.reshape(w_shape)
    smooth = -wlogp.sum(dim=1) * keep
    if reduction == "mean":  # the nll term's denominator: sum of w[y] over the kept targets
        w_y = keep if weight is None else weight[torch.where(keep, target, 0)] * keep
        smooth = smooth.sum() / w_y.sum()
    else:
        smooth = _reduce(smooth, reduction)
    return (1 - label_smoothing) * nll + label_smoothing / num_classes * smooth


def l1_penalty(params: Iterable[Tensor]) -> Tensor:
    """``sum_w sum |w|`` over the given tensors (add ``lambda * l1_penalty(...)`` to a loss)."""
    return torch.stack([p.abs().sum() for p in params]).sum()


def l2_penalty(params: Iterable[Tensor]) -> Tensor:
    """``1/2 sum_w sum w^2``: its gradient is ``w``, so ``lambda * l2`` is SGD's
    ``weight_decay=lambda``."""
    return 0.5 * torch.stack([p.pow(2).sum() for p in params]).sum()


def dropout(
    x: Tensor, p: float = 0.5, training: bool = True, generator: torch.Generator | None = None
) -> Tensor:
    """Inverted dropout: keep each element with probability ``1 - p`` and scale it by ``1/(1-p)``.

    Draws the mask with ``bernoulli_(1 - p)`` like ``F.dropout`` on CPU, so under the same seed the
    two produce the same mask.
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if not training or p == 0.0:
        return x
    if p == 1.0:
        return x * torch.zeros_like(x)
    mask = torch.empty_like(x).bernoulli_(1 - p, generator=generator)
    return x * mask.div_(1 - p)

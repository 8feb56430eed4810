"""Gradient descent for linear and logistic regression with hand-derived gradients (no autograd).

Every method repeats ::

    theta <- theta - lr * grad J(theta)

and differs only in how many examples estimate ``grad J``:

* batch GD: all ``n`` examples per step (one step per epoch);
* mini-batch GD: ``batch_size`` examples per step, reshuffled every epoch;
* stochastic GD (SGD): one example per step.

The design matrix ``X`` is ``[n, d]`` and already holds a column of ones if an intercept is wanted
(:func:`add_intercept` puts it first, so ``theta[0]`` is the bias). The L2 term ``lambda/2 ||w||^2``
never penalises that first row (the intercept) when ``penalize_intercept=False``.

Linear regression, mean squared error (``r = X theta - y``)::

    J(theta)      = 1/n * sum_i (x_i . theta - y_i)^2 + lambda/2 ||w||^2
    grad J(theta) = 2/n * X^T (X theta - y) + lambda * w

Binary logistic regression (``y in {0, 1}``, ``sigma(z) = 1 / (1 + exp(-z))``)::

    J(theta)      = -1/n * sum_i [y_i log sigma(x_i . theta)
                                  + (1 - y_i) log(1 - sigma(x_i . theta))] + lambda/2 ||w||^2
    grad J(theta) = 1/n * X^T (sigma(X theta) - y) + lambda * w

Softmax (multinomial) regression (``Theta`` is ``[d, K]``, ``Y`` one-hot ``[n, K]``)::

    P             = softmax(X Theta)                    (row-wise)
    J(Theta)      = -1/n * sum_i log P[i, y_i] + lambda/2 ||W||^2
    grad J(Theta) = 1/n * X^T (P - Y) + lambda * W

The binary and softmax gradients come from ``dJ/dz = p - y`` for the logit ``z``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "GDResult",
    "LossAndGrad",
    "add_intercept",
    "batch_gd",
    "gradient_descent",
    "linear_regression_loss_grad",
    "logistic_regression_loss_grad",
    "minibatch_gd",
    "sgd",
    "softmax_regression_loss_grad",
]

LossAndGrad = Callable[[Tensor, Tensor, Tensor], tuple[Tensor, Tensor]]
"""``(theta, X, y) -> (J, grad J)``."""


def add_intercept(X: Tensor) -> Tensor:
    """Prepend a column of ones so that ``theta[0]`` is the intercept."""
    return torch.cat([torch.ones_like(X[:, :1]), X], dim=1)


def _add_l2(loss: Tensor, grad: Tensor, theta: Tensor, lam: float,
            penalize_intercept: bool) -> tuple[Tensor, Tensor]:
    """``(J + lambda/2 ||w||^2, grad J + lambda w)``; ``(J, grad J)`` unchanged if ``lam`` is 0."""
    if not lam:
        return loss, grad
    w = theta if penalize_intercept else torch.cat([torch.zeros_like(theta[:1]), theta[1:]])
    return loss + 0.5 * lam * (w * w).sum(), grad + lam * w


def linear_regression_loss_grad(
    theta: Tensor, X: Tensor, y: Tensor, l2: float = 0.0, penalize_intercept: bool = False
) -> tuple[Tensor, Tensor]:
    """MSE ``1/n ||X theta - y||^2`` and its gradient ``2/n X^T (X theta - y)``."""
    n = X.shape[0]
    r = X @ theta - y
    loss = (r @ r) / n
    grad = (2.0 / n) * (X.T @ r)
    return _add_l2(loss, grad, theta, l2, penalize_intercept)


def logistic_regression_loss_grad(
    theta: Tensor, X: Tensor, y: Tensor, l2: float = 0.0, penalize_intercept: bool = False
) -> tuple[Tensor, Tensor]:
    """Binary cross-entropy of ``sigma(X theta)`` and its gradient ``1/n X^T (sigma(X theta) - y)``.

    Uses ``log(1 - sigma(z)) = log sigma(z) - z`` and ``log sigma(z) = min(z, 0) - log(1 +
    exp(-|z|))``, which never overflows.
    """
    n = X.shape[0]
    z = X @ theta
    y = y.to(z.dtype)
    log_p = torch.clamp(z, max=0) - torch.log1p(torch.exp(-z.abs()))  # log sigma(z)
    loss = -(log_p - (1 - y) * z).sum() / n  # y log p + (1 - y)(log p - z)
    grad = X.T @ (torch.exp(log_p) - y) / n
    return _add_l2(loss, grad, theta, l2, penalize_intercept)


def softmax_regression_loss_grad(
    theta: Tensor, X: Tensor, y: Tensor, l2: float = 0.0, penalize_intercept: bool = False
) -> tuple[Tensor, Tensor]:
    """Multinomial cross-entropy of ``softmax(X Theta)`` and its gradient ``1/n X^T (P - Y)``.

    ``theta`` is ``[d, K]``; ``y`` holds class indices ``[n]``.
    """
    n = X.shape[0]
    z = X @ theta
    m = z.max(dim=1, keepdim=True).values
    logp = z - m - torch.log(torch.exp(z - m).sum(dim=1, keepdim=True))  # log-sum-exp trick
    loss = -logp.gather(1, y.unsqueeze(1)).sum() / n
    residual = torch.exp(logp) - F.one_hot(y, theta.shape[1]).to(logp.dtype)  # P - Y
    grad = X.T @ residual / n
    return _add_l2(loss, grad, theta, l2, penalize_intercept)


@dataclass
class GDResult:
    """Final parameters, the full-data loss ``J(theta)`` at the start and after every epoch, and
    the number of update steps taken."""

    theta: Tensor
    losses: list[float] = field(default_factory=list)
    steps: int = 0


def gradient_descent(
    loss_grad: LossAndGrad,
    X: Tensor,
    y: Tensor,
    theta0: Tensor,
    lr: float,
    epochs: int,
    batch_size: int | None = None,
    shuffle: bool = True,
    generator: torch.Generator | None = None,
    lr_decay: float = 0.0,
) -> GDResult:
    """Run ``theta <- theta - lr_t * grad J_B(theta)`` over mini-batches ``B``, ``epochs`` times.

    ``batch_size=None`` (or ``>= n``) is batch GD, ``1`` is SGD, anything between is mini-batch GD.
    ``lr_t = lr / (1 + lr_decay * epoch)`` (``lr_decay=0``: constant step). Extra arguments of the
    loss (``l2=...``) can be bound with ``functools.partial``.
    """
    n = X.shape[0]
    bs = n if batch_size is None else min(batch_size, n)
    theta = theta0.clone()
    result = GDResult(theta=theta)
    for epoch in range(epochs):
        step_size = lr / (1.0 + lr_decay * epoch)
        if bs == n:  # batch GD: the step's own loss is J(theta) before the update
            loss, grad = loss_grad(theta, X, y)
            result.losses.append(float(loss))
            theta -= step_size * grad
            result.steps += 1
            continue
        if epoch == 0:
            result.losses.append(float(loss_grad(theta, X, y)[0]))
        order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
        for idx in order.split(bs):
            _, grad = loss_grad(theta, X.index_select(0, idx), y.index_select(0, idx))
            theta -= step_size * grad
            result.steps += 1
        result.losses.append(float(loss_grad(theta, X, y)[0]))
    if bs == n or epochs == 0:
        result.losses.append(float(loss_grad(theta, X, y)[0]))
    return result


def batch_gd(loss_grad: LossAndGrad, X: Tensor, y: Tensor, theta0: Tensor, lr: float,
             epochs: int) -> GDResult:
    """Batch gradient descent: the exact full-data gradient at every step."""
    return gradient_descent(loss_grad, X, y, theta0, lr, epochs, batch_size=None)


def minibatch_gd(loss_grad: LossAndGrad, X: Tensor, y: Tensor, theta0: Tensor, lr: float,
                 epochs: int, batch_size: int = 32, generator: torch.Generator | None = None,
                 lr_decay: float = 0.0) -> GDResult:
    """Mini-batch gradient descent over a reshuffled partition of the data every epoch."""
    return gradient_descent(loss_grad, X, y, theta0, lr, epochs, batch_size=batch_size,
                            generator=generator, lr_decay=lr_decay)


def sgd(loss_grad: LossAndGrad, X: Tensor, y: Tensor, theta0: Tensor, lr: float, epochs: int,
        generator: torch.Generator | None = None, lr_decay: float = 0.0) -> GDResult:
    """Stochastic gradient descent: one randomly drawn example per step."""
    return gradient_descent(loss_grad, X, y, theta0, lr, epochs, batch_size=1,
                            generator=generator, lr_decay=lr_decay)

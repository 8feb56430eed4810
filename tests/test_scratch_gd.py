"""Gradient descent with hand-derived gradients, checked on real data.

* gradients against autograd (float64, to round-off),
* losses against PyTorch's loss functions,
* batch GD against the closed-form least-squares solution (diabetes),
* L2-regularised logistic regression against scikit-learn (breast cancer),
* mini-batch / stochastic GD reaching the optimum's neighbourhood, softmax regression on digits.
"""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits
from sklearn.linear_model import LogisticRegression

from dlbasics.scratch.gradient_descent import (
    add_intercept,
    batch_gd,
    gradient_descent,
    linear_regression_loss_grad,
    logistic_regression_loss_grad,
    minibatch_gd,
    sgd,
    softmax_regression_loss_grad,
)

EXACT = {"rtol": 1e-10, "atol": 1e-10}


def _standardized(X: np.ndarray) -> torch.Tensor:
    return add_intercept(torch.tensor((X - X.mean(0)) / X.std(0)))


@pytest.fixture(scope="module")
def diabetes() -> tuple[torch.Tensor, torch.Tensor]:
    X, y = load_diabetes(return_X_y=True)
    return _standardized(X), torch.tensor(y)


@pytest.fixture(scope="module")
def cancer() -> tuple[torch.Tensor, torch.Tensor]:
    X, y = load_breast_cancer(return_X_y=True)
    return _standardized(X), torch.tensor(y, dtype=torch.float64)


@pytest.fixture(scope="module")
def digits() -> tuple[torch.Tensor, torch.Tensor]:
    X, y = load_digits(return_X_y=True)
    return add_intercept(torch.tensor(X / 16.0)), torch.tensor(y)


def _lipschitz(X: torch.Tensor, scale: float) -> float:
    """Largest eigenvalue ``L`` of ``scale * X^T X / n``: GD with ``lr = 1/L`` decreases J."""
    return float(torch.linalg.eigvalsh(scale * X.T @ X / X.shape[0]).max())


def _autograd(loss_grad, theta, X, y, **kw):
    theta = theta.clone().requires_grad_(True)
    with torch.no_grad():
        loss, grad = loss_grad(theta.detach(), X, y, **kw)
    return loss, grad, theta


def test_linear_regression_gradient_matches_autograd(diabetes):
    X, y = diabetes
    theta0 = torch.randn(X.shape[1], dtype=torch.float64,
                         generator=torch.Generator().manual_seed(0))
    for l2 in (0.0, 0.3):
        loss, grad, theta = _autograd(linear_regression_loss_grad, theta0, X, y, l2=l2)
        ref = F.mse_loss(X @ theta, y) + 0.5 * l2 * (theta[1:] ** 2).sum()
        ref.backward()
        torch.testing.assert_close(loss, ref.detach(), **EXACT)
        torch.testing.assert_close(grad, theta.grad, **EXACT)


def test_logistic_regression_gradient_matches_autograd(cancer):
    X, y = cancer
    theta0 = torch.randn(X.shape[1], dtype=torch.float64,
                         generator=torch.Generator().manual_seed(1))
    for l2, pen_b in ((0.0, False), (0.1, False), (0.1, True)):
        loss, grad, theta = _autograd(logistic_regression_loss_grad, theta0, X, y, l2=l2,
                                      penalize_intercept=pen_b)
        w = theta if pen_b else theta[1:]
        ref = F.binary_cross_entropy_with_logits(X @ theta, y) + 0.5 * l2 * (w**2).sum()
        ref.backward()
        torch.testing.assert_close(loss, ref.detach(), **EXACT)
        torch.testing.assert_close(grad, theta.grad, **EXACT)


def test_logistic_loss_is_stable_for_huge_logits(cancer):
    X, y = cancer
    theta = torch.full((X.shape[1],), 50.0, dtype=torch.float64)  # |z| up to ~1e4
    loss, grad = logistic_regression_loss_grad(theta, X, y)
    ref = F.binary_cross_entropy_with_logits(X @ theta, y)
    assert torch.isfinite(loss) and torch.isfinite(grad).all()
    torch.testing.assert_close(loss, ref, **EXACT)


def test_softmax_regression_gradient_matches_autograd(digits):
    X, y = digits
    theta0 = torch.randn(X.shape[1], 10, dtype=torch.float64,
                         generator=torch.Generator().manual_seed(2))
    loss, grad, theta = _autograd(softmax_regression_loss_grad, theta0, X, y, l2=0.01)
    ref = F.cross_entropy(X @ theta, y) + 0.005 * (theta[1:] ** 2).sum()
    ref.backward()
    torch.testing.assert_close(loss, ref.detach(), **EXACT)
    torch.testing.assert_close(grad, theta.grad, **EXACT)


def test_batch_gd_converges_to_least_squares(diabetes):
    X, y = diabetes
    lr = 1.0 / _lipschitz(X, 2.0)
    result = batch_gd(linear_regression_loss_grad, X, y, torch.zeros(X.shape[1],
                      dtype=torch.float64), lr, epochs=8000)
    solution = np.linalg.lstsq(X.numpy(), y.numpy(), rcond=None)[0]
    np.testing.assert_allclose(result.theta.numpy(), solution, rtol=1e-6, atol=1e-6)
    assert result.steps == 8000 and len(result.losses) == 8001
    # with lr = 1/L every step decreases J (descent lemma)
    assert all(b <= a + 1e-9 for a, b in zip(result.losses, result.losses[1:]))


def test_minibatch_and_stochastic_gd_reach_the_optimum(diabetes):
    X, y = diabetes
    lr = 1.0 / _lipschitz(X, 2.0)
    optimum = float(linear_regression_loss_grad(
        torch.tensor(np.linalg.lstsq(X.numpy(), y.numpy(), rcond=None)[0]), X, y)[0])
    theta0 = torch.zeros(X.shape[1], dtype=torch.float64)
    gen = torch.Generator().manual_seed(0)
    mini = minibatch_gd(linear_regression_loss_grad, X, y, theta0, lr, epochs=60, batch_size=32,
                        generator=gen, lr_decay=0.1)
    assert mini.steps == 60 * 14  # ceil(442 / 32) steps per epoch
    assert mini.losses[-1] < 1.01 * optimum < mini.losses[0]
    stoch = sgd(linear_regression_loss_grad, X, y, theta0, lr / 4, epochs=8, generator=gen,
                lr_decay=0.5)
    assert stoch.steps == 8 * 442
    assert stoch.losses[-1] < 1.05 * optimum
    assert torch.equal(theta0, torch.zeros_like(theta0))  # the start point is not modified


def test_minibatch_without_shuffle_equals_manual_loop(diabetes):
    X, y = diabetes
    theta = torch.zeros(X.shape[1], dtype=torch.float64)
    result = gradient_descent(linear_regression_loss_grad, X, y, theta, 0.01, epochs=2,
                              batch_size=100, shuffle=False)
    for _ in range(2):
        for start in range(0, X.shape[0], 100):
            theta = theta - 0.01 * linear_regression_loss_grad(theta, X[start : start + 100],
                                                               y[start : start + 100])[1]
    torch.testing.assert_close(result.theta, theta, **EXACT)


def test_l2_logistic_regression_matches_sklearn(cancer):
    X, y = cancer
    n, C = X.shape[0], 0.1
    lam = 1.0 / (C * n)  # sklearn: C * sum(loss) + 1/2 ||w||^2  ==  n C (mean loss + lam/2 ||w||^2)
    clf = LogisticRegression(C=C, tol=1e-12, max_iter=10_000).fit(X[:, 1:].numpy(), y.numpy())
    reference = np.concatenate([clf.intercept_, clf.coef_[0]])
    lr = 1.0 / (_lipschitz(X, 0.25) + lam)
    result = batch_gd(partial(logistic_regression_loss_grad, l2=lam), X, y,
                      torch.zeros(X.shape[1], dtype=torch.float64), lr, epochs=2500)
    np.testing.assert_allclose(result.theta.numpy(), reference, rtol=0, atol=1e-4)


def test_softmax_regression_learns_digits(digits):
    X, y = digits
    gen = torch.Generator().manual_seed(0)
    perm = torch.randperm(X.shape[0], generator=gen)
    train, test = perm[:1400], perm[1400:]
    Xtr, ytr = X.index_select(0, train), y.index_select(0, train)
    result = minibatch_gd(partial(softmax_regression_loss_grad, l2=1e-4), Xtr, ytr,
                          torch.zeros(X.shape[1], 10, dtype=torch.float64), lr=0.5, epochs=15,
                          batch_size=64, generator=gen)
    assert result.losses[-1] < 0.25 * result.losses[0]
    accuracy = (X.index_select(0, test) @ result.theta).argmax(1).eq(y.index_select(0, test))
    assert accuracy.double().mean() > 0.93

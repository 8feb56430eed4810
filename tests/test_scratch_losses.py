"""Losses, penalties and dropout against PyTorch (float64 values and gradients)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch import nn

from dlbasics.scratch.losses import (
    cross_entropy,
    dropout,
    l1_penalty,
    l2_penalty,
    log_softmax,
    logsumexp,
    mse_loss,
    nll_loss,
    softmax,
)

EXACT = {"rtol": 1e-10, "atol": 1e-12}
F64 = torch.float64


def _rand(*shape: int, seed: int, scale: float = 1.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (scale * torch.randn(*shape, dtype=F64, generator=g)).requires_grad_(True)


def _targets(*shape: int, classes: int, seed: int) -> torch.Tensor:
    return torch.randint(0, classes, shape, generator=torch.Generator().manual_seed(seed))


def _same_value_and_grad(mine: torch.Tensor, ref: torch.Tensor, wrt: torch.Tensor) -> None:
    torch.testing.assert_close(mine, ref, **EXACT)
    g = torch.ones_like(mine) if mine.dim() == 0 else _rand(*mine.shape, seed=77).detach()
    torch.testing.assert_close(torch.autograd.grad(mine, wrt, g)[0],
                               torch.autograd.grad(ref, wrt, g)[0], **EXACT)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_mse_matches_torch(reduction):
    x, t = _rand(5, 3, seed=0), _rand(5, 3, seed=1).detach()
    _same_value_and_grad(mse_loss(x, t, reduction), F.mse_loss(x, t, reduction=reduction), x)
    with pytest.raises(ValueError):
        mse_loss(x, t, "median")


def test_log_softmax_and_logsumexp_are_stable():
    x = _rand(4, 6, seed=2, scale=1e4)  # exp(1e4) overflows float64; the trick never computes it
    _same_value_and_grad(log_softmax(x, 1), torch.log_softmax(x, 1), x)
    _same_value_and_grad(softmax(x, 0), torch.softmax(x, 0), x)
    _same_value_and_grad(logsumexp(x, 1), torch.logsumexp(x, 1), x)
    assert torch.isfinite(log_softmax(x, 1)).all()
    row = torch.tensor([[float("-inf")] * 3, [0.0, float("-inf"), 1.0]], dtype=F64)
    torch.testing.assert_close(logsumexp(row, 1), torch.logsumexp(row, 1))


def test_cross_entropy_on_digits_logits():
    X, y = load_digits(return_X_y=True)
    X, y = torch.tensor(X[:200] / 16.0), torch.tensor(y[:200])
    torch.manual_seed(0)
    logits = nn.Linear(64, 10, dtype=F64)(X)
    mine, ref = cross_entropy(logits, y), F.cross_entropy(logits, y)
    torch.testing.assert_close(mine, ref, **EXACT)
    lin_grads = torch.autograd.grad(mine, logits), torch.autograd.grad(ref, logits)
    torch.testing.assert_close(*lin_grads, **EXACT)


CE_CASES = {
    "plain": {},
    "weights": {"weight": torch.rand(5, dtype=F64, generator=torch.Generator().manual_seed(3))},
    "ignore_index": {"ignore_index": 2},
    "label smoothing": {"label_smoothing": 0.2},
    "all of them": {"weight": torch.rand(5, dtype=F64, generator=torch.Generator().manual_seed(4)),
                    "ignore_index": 1, "label_smoothing": 0.1},
}


@pytest.mark.parametrize("case", list(CE_CASES))
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("shape", [(7,), (3, 4, 2)], ids=["[N, C]", "[N, C, d1, d2]"])
def test_cross_entropy_with_class_indices_matches_torch(case, reduction, shape):
    n, *rest = shape
    x = _rand(n, 5, *rest, seed=5, scale=3.0)
    t = _targets(n, *rest, classes=5, seed=6)
    kwargs = CE_CASES[case]
    _same_value_and_grad(cross_entropy(x, t, reduction=reduction, **kwargs),
                         F.cross_entropy(x, t, reduction=reduction, **kwargs), x)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_with_probabilities_and_unbatched_matches_torch(reduction):
    x = _rand(6, 4, seed=7)
    probs = torch.softmax(_rand(6, 4, seed=8).detach(), 1)
    w = torch.tensor([0.5, 1.0, 2.0, 1.5], dtype=F64)
    for kwargs in ({}, {"weight": w}, {"label_smoothing": 0.3}):
        _same_value_and_grad(cross_entropy(x, probs, reduction=reduction, **kwargs),
                             F.cross_entropy(x, probs, reduction=reduction, **kwargs), x)
    one = _rand(4, seed=9)
    _same_value_and_grad(cross_entropy(one, torch.tensor(2), reduction=reduction),
                         F.cross_entropy(one, torch.tensor(2), reduction=reduction), one)


def test_nll_loss_matches_torch():
    logp = torch.log_softmax(_rand(6, 4, seed=10), 1)
    t = torch.tensor([0, 3, 1, -100, 2, 3])
    w = torch.tensor([0.5, 1.0, 2.0, 1.5], dtype=F64)
    for kwargs in ({}, {"weight": w}, {"weight": w, "reduction": "sum"}):
        torch.testing.assert_close(nll_loss(logp, t, **kwargs), F.nll_loss(logp, t, **kwargs),
                                   **EXACT)


def test_penalties_values_and_gradients():
    params = [_rand(3, 4, seed=11), _rand(4, seed=12)]
    l1, l2 = l1_penalty(params), l2_penalty(params)
    torch.testing.assert_close(l1, sum(p.abs().sum() for p in params), **EXACT)
    torch.testing.assert_close(l2, 0.5 * sum((p * p).sum() for p in params), **EXACT)
    for p, g in zip(params, torch.autograd.grad(l1, params)):
        torch.testing.assert_close(g, torch.sign(p), **EXACT)
    for p, g in zip(params, torch.autograd.grad(l2, params)):
        torch.testing.assert_close(g, p.detach(), **EXACT)


def test_l2_penalty_is_sgd_weight_decay():
    """loss + lambda * L2 with plain SGD follows exactly torch's SGD(weight_decay=lambda)."""
    X, y = load_digits(return_X_y=True)
    X, y = torch.tensor(X[:300] / 16.0), torch.tensor(y[:300])
    models = []
    for _ in range(2):
        torch.manual_seed(0)
        models.append(nn.Linear(64, 10, dtype=F64))
    lam = 0.05
    opt_pen = torch.optim.SGD(models[0].parameters(), lr=0.5)
    opt_wd = torch.optim.SGD(models[1].parameters(), lr=0.5, weight_decay=lam)
    for _ in range(30):
        for model, opt, penalty in ((models[0], opt_pen, True), (models[1], opt_wd, False)):
            opt.zero_grad()
            loss = F.cross_entropy(model(X), y)
            if penalty:
                loss = loss + lam * l2_penalty(model.parameters())
            loss.backward()
            opt.step()
    for p, q in zip(models[0].parameters(), models[1].parameters()):
        torch.testing.assert_close(p, q, **EXACT)


def test_dropout_draws_the_same_mask_as_torch():
    x = _rand(50, 40, seed=13)
    torch.manual_seed(5)
    mine = dropout(x, 0.3)
    torch.manual_seed(5)
    ref = F.dropout(x, 0.3)
    _same_value_and_grad(mine, ref, x)


def test_dropout_is_inverted_and_unbiased():
    x = torch.ones(200_000, dtype=F64, requires_grad=True)
    gen = torch.Generator().manual_seed(6)
    y = dropout(x, 0.25, generator=gen)
    kept = y != 0
    torch.testing.assert_close(y[kept], torch.full_like(y[kept], 1 / 0.75))  # scaled by 1/(1-p)
    assert abs(kept.double().mean().item() - 0.75) < 0.005  # ~5 standard deviations
    assert abs(y.mean().item() - 1.0) < 0.01  # E[y] = x
    (grad,) = torch.autograd.grad(y.sum(), x)
    torch.testing.assert_close(grad, y.detach())  # d y / d x = mask / (1 - p)


def test_dropout_edge_cases():
    x = _rand(10, seed=14)
    assert dropout(x, 0.5, training=False) is x
    assert dropout(x, 0.0) is x
    assert (dropout(x, 1.0) == 0).all()
    with pytest.raises(ValueError):
        dropout(x, 1.5)

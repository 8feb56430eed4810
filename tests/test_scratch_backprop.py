"""The hand-written MLP backward pass against autograd, finite differences and real training."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch import nn

from dlbasics.scratch.backprop import (
    ACTIVATIONS,
    MLP,
    linear_backward,
    linear_forward,
    mse_loss,
    softmax_cross_entropy,
)

EXACT = {"rtol": 1e-10, "atol": 1e-12}
TORCH_ACT = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}


@pytest.fixture(scope="module")
def digits() -> tuple[torch.Tensor, torch.Tensor]:
    X, y = load_digits(return_X_y=True)
    return torch.tensor(X / 16.0), torch.tensor(y)


def _torch_twin(mlp: MLP) -> nn.Sequential:
    """``nn.Sequential(Linear, act, ..., Linear)`` holding copies of ``mlp``'s weights."""
    layers: list[nn.Module] = []
    for i, (w, b) in enumerate(zip(mlp.weights, mlp.biases)):
        lin = nn.Linear(w.shape[1], w.shape[0], dtype=w.dtype)
        with torch.no_grad():
            lin.weight.copy_(w)
            lin.bias.copy_(b)
        layers.append(lin)
        if i < len(mlp.weights) - 1:
            layers.append(TORCH_ACT[mlp.activation]())
    return nn.Sequential(*layers)


def test_linear_backward_matches_autograd():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(7, 5, dtype=torch.float64, generator=gen, requires_grad=True)
    w = torch.randn(3, 5, dtype=torch.float64, generator=gen, requires_grad=True)
    b = torch.randn(3, dtype=torch.float64, generator=gen, requires_grad=True)
    dout = torch.randn(7, 3, dtype=torch.float64, generator=gen)
    y = linear_forward(x, w, b)
    torch.testing.assert_close(y, F.linear(x, w, b), **EXACT)
    y.backward(dout)
    dx, dw, db = linear_backward(dout, x.detach(), w.detach())
    for mine, ref in ((dx, x.grad), (dw, w.grad), (db, b.grad)):
        torch.testing.assert_close(mine, ref, **EXACT)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_derivatives_match_autograd(name):
    z = torch.linspace(-6, 6, 101, dtype=torch.float64).requires_grad_(True)
    a, deriv = ACTIVATIONS[name](z.detach())
    ref = TORCH_ACT[name]()(z)
    ref.sum().backward()
    torch.testing.assert_close(a, ref.detach(), **EXACT)
    torch.testing.assert_close(deriv, z.grad, **EXACT)


def test_losses_and_their_gradients_match_autograd(digits):
    _, y = digits
    gen = torch.Generator().manual_seed(1)
    logits = (5 * torch.randn(64, 10, dtype=torch.float64, generator=gen)).requires_grad_(True)
    loss, dlogits = softmax_cross_entropy(logits.detach(), y[:64])
    ref = F.cross_entropy(logits, y[:64])
    ref.backward()
    torch.testing.assert_close(loss, ref.detach(), **EXACT)
    torch.testing.assert_close(dlogits, logits.grad, **EXACT)

    pred = torch.randn(64, 3, dtype=torch.float64, generator=gen, requires_grad=True)
    target = torch.randn(64, 3, dtype=torch.float64, generator=gen)
    loss, dpred = mse_loss(pred.detach(), target)
    ref = F.mse_loss(pred, target)
    ref.backward()
    torch.testing.assert_close(loss, ref.detach(), **EXACT)
    torch.testing.assert_close(dpred, pred.grad, **EXACT)


def test_cross_entropy_is_stable_for_huge_logits():
    logits = torch.tensor([[1000.0, -1000.0, 0.0], [-5000.0, 5000.0, 4990.0]], dtype=torch.float64)
    target = torch.tensor([0, 2])
    loss, grad = softmax_cross_entropy(logits, target)
    torch.testing.assert_close(loss, F.cross_entropy(logits, target), **EXACT)
    assert torch.isfinite(grad).all()


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
@pytest.mark.parametrize("loss", ["cross_entropy", "mse"])
def test_mlp_forward_and_backward_match_autograd(digits, activation, loss):
    X, y = digits
    x, labels = X[:100], y[:100]
    mlp = MLP([64, 32, 16, 10], activation, dtype=torch.float64,
              generator=torch.Generator().manual_seed(2))
    twin = _torch_twin(mlp)
    target = labels if loss == "cross_entropy" else F.one_hot(labels, 10).double()
    value, grads = mlp.loss_and_grads(x, target, loss)
    out = twin(x)
    torch.testing.assert_close(mlp.forward(x), out.detach(), **EXACT)
    ref = F.cross_entropy(out, labels) if loss == "cross_entropy" else F.mse_loss(out, target)
    ref.backward()
    torch.testing.assert_close(value, ref.detach(), **EXACT)
    assert len(grads) == len(list(twin.parameters())) == 6
    for mine, p in zip(grads, twin.parameters()):
        torch.testing.assert_close(mine, p.grad, **EXACT)


def test_mlp_gradient_matches_finite_differences():
    """Independent of PyTorch's autograd: central differences on every parameter."""
    gen = torch.Generator().manual_seed(3)
    mlp = MLP([4, 5, 3], "tanh", dtype=torch.float64, generator=gen)
    x = torch.randn(6, 4, dtype=torch.float64, generator=gen)
    y = torch.tensor([0, 1, 2, 2, 1, 0])
    _, grads = mlp.loss_and_grads(x, y)
    eps = 1e-6
    for p, g in zip(mlp.parameters(), grads):
        numeric = torch.zeros_like(p)
        flat, num_flat = p.view(-1), numeric.view(-1)
        for i in range(flat.numel()):
            orig = float(flat[i])
            flat[i] = orig + eps
            up = float(mlp.loss_and_grads(x, y)[0])
            flat[i] = orig - eps
            down = float(mlp.loss_and_grads(x, y)[0])
            flat[i] = orig
            num_flat[i] = (up - down) / (2 * eps)
        torch.testing.assert_close(g, numeric, rtol=1e-6, atol=1e-8)


def test_mlp_trained_with_handwritten_backprop_learns_digits(digits):
    X, y = digits
    gen = torch.Generator().manual_seed(0)
    perm = torch.randperm(X.shape[0], generator=gen)
    train, test = perm[:1400], perm[1400:]
    mlp = MLP([64, 64, 10], "relu", dtype=torch.float64, generator=gen)
    first = float(mlp.loss_and_grads(X.index_select(0, train), y.index_select(0, train))[0])
    for _ in range(10):
        for idx in train[torch.randperm(train.numel(), generator=gen)].split(32):
            _, grads = mlp.loss_and_grads(X.index_select(0, idx), y.index_select(0, idx))
            mlp.sgd_step(grads, lr=0.1)
    last = float(mlp.loss_and_grads(X.index_select(0, train), y.index_select(0, train))[0])
    assert last < 0.1 * first
    accuracy = mlp.forward(X.index_select(0, test)).argmax(1).eq(y.index_select(0, test))
    assert accuracy.double().mean() > 0.93


def test_mlp_rejects_bad_configuration():
    with pytest.raises(ValueError):
        MLP([3], "relu")
    with pytest.raises(ValueError):
        MLP([3, 2], "softplus")
    with pytest.raises(ValueError):
        MLP([3, 2]).loss_and_grads(torch.zeros(1, 3), torch.zeros(1, dtype=torch.long), "hinge")

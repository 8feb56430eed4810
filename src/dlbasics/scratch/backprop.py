"""A multi-layer perceptron with a hand-written backward pass (plain tensors, no autograd).

Forward, layer ``l = 1..L`` (weights stored ``[out, in]`` like ``nn.Linear``)::

    z_l = a_{l-1} W_l^T + b_l          a_0 = x
    a_l = f(z_l)                       (no f on the last layer: a_L = z_L are the outputs)

Backward is the chain rule applied from the loss down. With ``delta_l = dJ/dz_l``::

    delta_L = dJ/dz_L                               (from the loss, below)
    dJ/dW_l = delta_l^T a_{l-1}        dJ/db_l = sum_over_batch delta_l
    dJ/da_{l-1} = delta_l W_l
    delta_{l-1} = dJ/da_{l-1} * f'(z_{l-1})         (element-wise)

Activation derivatives, written with the cached forward values::

    relu'(z) = 1[z > 0]     tanh'(z) = 1 - tanh(z)^2     sigmoid'(z) = s (1 - s),  s = sigmoid(z)

Losses over a batch of ``n`` (mean reduction)::

    softmax cross-entropy  J = -1/n sum_i log softmax(z_i)_{y_i}   dJ/dz = (softmax(z) - Y) / n
    mean squared error     J = 1/(n k) sum (z - t)^2                dJ/dz = 2 (z - t) / (n k)

(``Y`` is the one-hot encoding of the targets, ``k`` the number of outputs.)
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "ACTIVATIONS",
    "MLP",
    "linear_backward",
    "linear_forward",
    "mse_loss",
    "softmax_cross_entropy",
]


def linear_forward(x: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
    """``x W^T + b``."""
    return x @ weight.T + bias


def linear_backward(dout: Tensor, x: Tensor, weight: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Return ``(dx, dW, db) = (dout W, dout^T x, sum_batch dout)``."""
    return dout @ weight, dout.T @ x, dout.sum(dim=0)


def _relu(z: Tensor) -> tuple[Tensor, Tensor]:
    a = z.clamp(min=0)
    return a, (z > 0).to(z.dtype)


def _tanh(z: Tensor) -> tuple[Tensor, Tensor]:
    a = torch.tanh(z)
    return a, 1 - a * a


def _sigmoid(z: Tensor) -> tuple[Tensor, Tensor]:
    a = 1.0 / (1.0 + torch.exp(-z))
    return a, a * (1 - a)


ACTIVATIONS = {"relu": _relu, "tanh": _tanh, "sigmoid": _sigmoid}
"""name -> ``z -> (f(z), f'(z))``."""


def softmax_cross_entropy(logits: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
    """Mean cross-entropy of class indices ``target``; ``dJ/dlogits = (softmax - onehot) / n``."""
    n = logits.shape[0]
    m = logits.max(dim=1, keepdim=True).values
    logp = logits - m - torch.log(torch.exp(logits - m).sum(dim=1, keepdim=True))
    loss = -logp.gather(1, target.unsqueeze(1)).mean()
    dlogits = torch.exp(logp) - F.one_hot(target, logits.shape[1]).to(logits.dtype)
    return loss, dlogits / n


def mse_loss(pred: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
    """Mean of ``(pred - target)^2`` over all N elements; gradient ``2 (pred - target) / N``."""
    diff = pred - target
    return (diff * diff).mean(), 2.0 * diff / diff.numel()


class MLP:
    """Fully connected network ``sizes[0] -> ... -> sizes[-1]`` with a hand-written backward.

    Parameters are plain tensors (``requires_grad=False``) initialised like ``nn.Linear``
    (``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``). ``forward`` caches what ``backward`` needs.
    """

    def __init__(
        self,
        sizes: list[int],
        activation: str = "relu",
        dtype: torch.dtype = torch.float32,
        generator: torch.Generator | None = None,
    ) -> None:
        if len(sizes) < 2:
            raise ValueError("sizes needs at least an input and an output size")
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        self.activation = activation
        self.weights: list[Tensor] = []
        self.biases: list[Tensor] = []
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            bound = 1.0 / math.sqrt(fan_in)
            w = torch.empty(fan_out, fan_in, dtype=dtype).uniform_(-bound, bound, generator=generator)
            b = torch.empty(fan_out, dtype=dtype).uniform_(-bound, bound, generator=generator)
            self.weights.append(w)
            self.biases.append(b)
        self._inputs: list[Tensor] = []  # a_{l-1} for every layer
        self._derivs: list[Tensor] = []  # f'(z_l) for every hidden layer

    def parameters(self) -> list[Tensor]:
        """``[W_1, b_1, W_2, b_2, ...]``, the same order as ``nn.Sequential(Linear, act, ...)``."""
        return [t for pair in zip(self.weights, self.biases) for t in pair]

    def forward(self, x: Tensor) -> Tensor:
        act = ACTIVATIONS[self.activation]
        self._inputs, self._derivs = [], []
        a = x
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            self._inputs.append(a)
            z = linear_forward(a, w, b)
            if i < last:
                a, deriv = act(z)
                self._derivs.append(deriv)
            else:
                a = z
        return a

    __call__ = forward

    def backward(self, dout: Tensor) -> list[Tensor]:
        """Back-propagate ``dJ/doutput`` and return ``[dW_1, db_1, dW_2, db_2, ...]``."""
        grads: list[Tensor] = []
        delta = dout
        for i in reversed(range(len(self.weights))):
            dx, dw, db = linear_backward(delta, self._inputs[i], self.weights[i])
            grads = [dw, db, *grads]
            if i > 0:
                delta = dx * self._derivs[i - 1]
        return grads

    def loss_and_grads(self, x: Tensor, target: Tensor, loss: str = "cross_entropy"
                       ) -> tuple[Tensor, list[Tensor]]:
        """One forward + backward pass: ``(J, [dW_1, db_1, ...])``."""
        out = self.forward(x)
        if loss == "cross_entropy":
            value, dout = softmax_cross_entropy(out, target)
        elif loss == "mse":
            value, dout = mse_loss(out, target)
        else:
            raise ValueError(f"loss must be 'cross_entropy' or 'mse', got {loss!r}")
        return value, self.backward(dout)

    def sgd_step(self, grads: list[Tensor], lr: float) -> None:
        """``theta <- theta - lr * grad`` for every parameter, in place."""
        for p, g in zip(self.parameters(), grads):
            p.sub_(lr * g)

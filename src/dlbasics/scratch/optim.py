"""SGD, RMSprop, Adam and AdamW as ``torch.optim.Optimizer`` subclasses.

Each step updates every parameter of a group at once with ``torch._foreach_*`` ops (one C++ loop
per elementary operation instead of a Python loop over tensors). ``g`` is the gradient, ``lambda``
the weight decay, ``t`` the step count (starting at 1), all operations element-wise.

SGD (momentum ``mu``, dampening ``tau``)::

    g <- g + lambda theta
    b <- g                                  (first step)
    b <- mu b + (1 - tau) g                 (later steps)
    d <- g + mu b  (nesterov)   or   d <- b (classic momentum)   or   d <- g  (mu = 0)
    theta <- theta - lr d

RMSprop (smoothing ``alpha``; ``centered`` subtracts the squared mean gradient)::

    g <- g + lambda theta
    v <- alpha v + (1 - alpha) g^2
    a <- sqrt(v) + eps          (centered: m <- alpha m + (1 - alpha) g,  a <- sqrt(v - m^2) + eps)
    theta <- theta - lr g / a                     (momentum mu > 0:  b <- mu b + g / a,
                                                                      theta <- theta - lr b)

Adam (``beta1, beta2``; L2 weight decay enters through the gradient)::

    g <- g + lambda theta
    m <- beta1 m + (1 - beta1) g
    v <- beta2 v + (1 - beta2) g^2
    theta <- theta - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
    (amsgrad: v_max <- max(v_max, v) is used instead of v in the denominator)

AdamW (decoupled weight decay: shrink the weights, then take the Adam step without decay)::

    theta <- theta (1 - lr lambda)
    then Adam with lambda = 0

The arithmetic order matches ``torch.optim`` so that float64 trajectories agree to round-off.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor

__all__ = ["SGD", "Adam", "AdamW", "RMSprop"]


def _check(**hyper: float) -> None:
    """``torch.optim``'s ``ValueError`` for a negative (or NaN) hyper-parameter."""
    for name, value in hyper.items():
        if not value >= 0.0:
            label = {"lr": "learning rate", "eps": "epsilon value"}.get(name, f"{name} value")
            raise ValueError(f"Invalid {label}: {value}")


class _ForeachOptimizer(torch.optim.Optimizer):
    """Collects ``(params, grads)`` per group and hands them to :meth:`_update`."""

    def _update(self, group: dict[str, Any], params: list[Tensor], grads: list[Tensor]) -> None:
        raise NotImplementedError

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        """One update of every parameter that has a gradient; ``closure`` re-evaluates the loss."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            if any(p.grad.is_sparse for p in params):
                raise RuntimeError(f"{type(self).__name__} does not support sparse gradients")
            self._update(group, params, [p.grad for p in params])
        return loss

    def _state_list(self, params: list[Tensor], key: str) -> list[Tensor]:
        """``state[p][key]`` for every ``p``, created as zeros on first use."""
        out = []
        for p in params:
            st = self.state[p]
            if key not in st:
                st[key] = torch.zeros_like(p, memory_format=torch.preserve_format)
            out.append(st[key])
        return out

    def _steps(self, params: list[Tensor]) -> list[float]:
        """Increment and return every parameter's step count ``t``."""
        steps = []
        for p in params:
            st = self.state[p]
            st["step"] = st.get("step", 0.0) + 1.0
            steps.append(float(st["step"]))
        return steps


class SGD(_ForeachOptimizer):
    """Stochastic gradient descent with optional (Nesterov) momentum and L2 weight decay."""

    def __init__(self, params: Iterable, lr: float = 1e-3, momentum: float = 0.0,
                 dampening: float = 0.0, weight_decay: float = 0.0, nesterov: bool = False
                 ) -> None:
        _check(lr=lr, momentum=momentum, weight_decay=weight_decay)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        defaults = {"lr": lr, "momentum": momentum, "dampening": dampening,
                    "weight_decay": weight_decay, "nesterov": nesterov}
        super().__init__(params, defaults)

    def _update(self, group: dict[str, Any], params: list[Tensor], grads: list[Tensor]) -> None:
        lr, mu, wd = group["lr"], group["momentum"], group["weight_decay"]
        if wd != 0:
            grads = torch._foreach_add(grads, params, alpha=wd)
        if mu != 0:
            bufs: list[Tensor] = []
            old_bufs, old_grads = [], []
            for p, g in zip(params, grads):
                st = self.state[p]
                if st.get("momentum_buffer") is None:  # first step: b <- g
                    st["momentum_buffer"] = torch.clone(g).detach()
                else:
                    old_bufs.append(st["momentum_buffer"])
                    old_grads.append(g)
                bufs.append(st["momentum_buffer"])
            if old_bufs:  # b <- mu b + (1 - tau) g
                torch._foreach_mul_(old_bufs, mu)
                torch._foreach_add_(old_bufs, old_grads, alpha=1 - group["dampening"])
            # nesterov: d <- g + mu b; classic: d <- b
            grads = torch._foreach_add(grads, bufs, alpha=mu) if group["nesterov"] else bufs
        torch._foreach_add_(params, grads, alpha=-lr)


class RMSprop(_ForeachOptimizer):
    """RMSprop: divide the gradient by a running root-mean-square of its recent values."""

    def __init__(self, params: Iterable, lr: float = 1e-2, alpha: float = 0.99,
                 eps: float = 1e-8, weight_decay: float = 0.0, momentum: float = 0.0,
                 centered: bool = False) -> None:
        _check(lr=lr, eps=eps, alpha=alpha, momentum=momentum, weight_decay=weight_decay)
        defaults = {"lr": lr, "alpha": alpha, "eps": eps, "weight_decay": weight_decay,
                    "momentum": momentum, "centered": centered}
        super().__init__(params, defaults)

    def _update(self, group: dict[str, Any], params: list[Tensor], grads: list[Tensor]) -> None:
        lr, alpha, eps = group["lr"], group["alpha"], group["eps"]
        wd, mu = group["weight_decay"], group["momentum"]
        self._steps(params)
        if wd != 0:
            grads = torch._foreach_add(grads, params, alpha=wd)
        square_avgs = self._state_list(params, "square_avg")
        torch._foreach_mul_(square_avgs, alpha)
        torch._foreach_addcmul_(square_avgs, grads, grads, value=1 - alpha)
        if group["centered"]:
            grad_avgs = self._state_list(params, "grad_avg")
            torch._foreach_lerp_(grad_avgs, grads, 1 - alpha)
            avg = torch._foreach_addcmul(square_avgs, grad_avgs, grad_avgs, value=-1)
            torch._foreach_sqrt_(avg)
        else:
            avg = torch._foreach_sqrt(square_avgs)
        torch._foreach_add_(avg, eps)
        if mu > 0:
            bufs = self._state_list(params, "momentum_buffer")
            torch._foreach_mul_(bufs, mu)
            torch._foreach_addcdiv_(bufs, grads, avg)
            torch._foreach_add_(params, bufs, alpha=-lr)
        else:
            torch._foreach_addcdiv_(params, grads, avg, value=-lr)


class Adam(_ForeachOptimizer):
    """Adam: bias-corrected running means of the gradient and of its square (L2 weight decay)."""

    decoupled_weight_decay = False

    def __init__(self, params: Iterable, lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, amsgrad: bool = False) -> None:
        _check(lr=lr, eps=eps, weight_decay=weight_decay)
        if not (0.0 <= betas[0] < 1.0 and 0.0 <= betas[1] < 1.0):
            raise ValueError(f"Invalid beta parameters: {betas}")
        defaults = {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay,
                    "amsgrad": amsgrad}
        super().__init__(params, defaults)

    def _update(self, group: dict[str, Any], params: list[Tensor], grads: list[Tensor]) -> None:
        lr, (beta1, beta2) = group["lr"], group["betas"]
        eps, wd = group["eps"], group["weight_decay"]
        steps = self._steps(params)
        if wd != 0:
            if self.decoupled_weight_decay:  # AdamW: theta <- theta (1 - lr lambda)
                torch._foreach_mul_(params, 1 - lr * wd)
            else:  # Adam: g <- g + lambda theta
                grads = torch._foreach_add(grads, params, alpha=wd)
        exp_avgs = self._state_list(params, "exp_avg")
        exp_avg_sqs = self._state_list(params, "exp_avg_sq")
        torch._foreach_lerp_(exp_avgs, grads, 1 - beta1)  # m <- beta1 m + (1 - beta1) g
        torch._foreach_mul_(exp_avg_sqs, beta2)  # v <- beta2 v + (1 - beta2) g^2
        torch._foreach_addcmul_(exp_avg_sqs, grads, grads, value=1 - beta2)
        if group["amsgrad"]:
            max_sqs = self._state_list(params, "max_exp_avg_sq")
            torch._foreach_maximum_(max_sqs, exp_avg_sqs)
            denom = torch._foreach_sqrt(max_sqs)
        else:
            denom = torch._foreach_sqrt(exp_avg_sqs)
        # bias corrections, one per parameter (their step counts may differ)
        torch._foreach_div_(denom, [(1 - beta2**t) ** 0.5 for t in steps])
        torch._foreach_add_(denom, eps)
        torch._foreach_addcdiv_(params, exp_avgs, denom, [-lr / (1 - beta1**t) for t in steps])


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter): ``theta <- theta(1 - lr lambda)``."""

    decoupled_weight_decay = True

    def __init__(self, params: Iterable, lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad)

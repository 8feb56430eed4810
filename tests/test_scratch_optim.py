"""Optimizers: float64 parameter trajectories against torch.optim, step for step, on real data.

The problem is a small MLP classifying 500 of scikit-learn's digits (full batch, so the trajectory
is deterministic); each optimizer runs 100 steps and every parameter must agree after every step.
"""

from __future__ import annotations

import io

import pytest
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch import nn

from dlbasics.scratch import optim

STEPS = 100
CLOSE = {"rtol": 1e-10, "atol": 1e-12}

CONFIGS = [
    ("SGD", {"lr": 0.1}),
    ("SGD", {"lr": 0.1, "momentum": 0.9}),
    ("SGD", {"lr": 0.1, "momentum": 0.9, "dampening": 0.3}),
    ("SGD", {"lr": 0.1, "momentum": 0.9, "nesterov": True}),
    ("SGD", {"lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 1e-3}),
    ("SGD", {"lr": 0.1, "weight_decay": 1e-2}),
    ("RMSprop", {"lr": 1e-3}),
    ("RMSprop", {"lr": 1e-3, "alpha": 0.9, "eps": 1e-6, "weight_decay": 1e-3}),
    ("RMSprop", {"lr": 1e-3, "momentum": 0.9, "centered": True}),
    ("Adam", {"lr": 1e-2}),
    ("Adam", {"lr": 1e-2, "betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 1e-2}),
    ("Adam", {"lr": 1e-2, "amsgrad": True}),
    ("AdamW", {"lr": 1e-2}),
    ("AdamW", {"lr": 1e-2, "weight_decay": 0.1, "amsgrad": True}),
]


@pytest.fixture(scope="module")
def digits() -> tuple[torch.Tensor, torch.Tensor]:
    X, y = load_digits(return_X_y=True)
    return torch.tensor(X[:500] / 16.0), torch.tensor(y[:500])


def _mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(64, 32), nn.Tanh(), nn.Linear(32, 10)).double()


def _flat(model: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def _step(model: nn.Module, opt: torch.optim.Optimizer, X, y) -> float:
    opt.zero_grad()
    loss = F.cross_entropy(model(X), y)
    loss.backward()
    opt.step()
    return loss.item()


@pytest.mark.parametrize(("name", "kwargs"), CONFIGS, ids=[f"{n}{k}" for n, k in CONFIGS])
def test_trajectory_matches_torch_optim(digits, name, kwargs):
    X, y = digits
    ref_model, my_model = _mlp(), _mlp()
    ref_opt = getattr(torch.optim, name)(ref_model.parameters(), **kwargs)
    my_opt = getattr(optim, name)(my_model.parameters(), **kwargs)
    losses = []
    for step in range(STEPS):
        losses.append(_step(ref_model, ref_opt, X, y))
        _step(my_model, my_opt, X, y)
        torch.testing.assert_close(_flat(my_model), _flat(ref_model), **CLOSE,
                                   msg=lambda m, step=step: f"step {step}: {m}")
    assert losses[-1] < 0.8 * losses[0]  # the problem is really being optimised


def test_state_dict_round_trip_continues_the_same_trajectory(digits):
    X, y = digits
    model_a, model_b = _mlp(), _mlp()
    opt_a = optim.Adam(model_a.parameters(), lr=1e-2, amsgrad=True)
    for _ in range(10):
        _step(model_a, opt_a, X, y)
    checkpoint = io.BytesIO()  # through a real checkpoint: no tensor shared with opt_a
    torch.save({"model": model_a.state_dict(), "opt": opt_a.state_dict()}, checkpoint)
    checkpoint.seek(0)
    loaded = torch.load(checkpoint)
    model_b.load_state_dict(loaded["model"])
    opt_b = optim.Adam(model_b.parameters(), lr=1e-2, amsgrad=True)
    opt_b.load_state_dict(loaded["opt"])
    for _ in range(10):
        _step(model_a, opt_a, X, y)
        _step(model_b, opt_b, X, y)
    for p, q in zip(model_a.parameters(), model_b.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=0)


@pytest.mark.parametrize("name", ["SGD", "RMSprop", "Adam", "AdamW"])
def test_param_groups_scheduler_and_missing_grads_match_torch(digits, name):
    """Two groups with their own lr, a StepLR schedule, and a parameter whose gradient only
    appears after 5 steps (so per-parameter step counts differ)."""
    X, y = digits
    kwargs = {"momentum": 0.5} if name in ("SGD", "RMSprop") else {}
    models = [_mlp(), _mlp()]
    opts, scheds = [], []
    for model, lib in zip(models, (torch.optim, optim)):
        first, second = model[0], model[2]
        opt = getattr(lib, name)([{"params": first.parameters()},
                                  {"params": second.parameters(), "lr": 3e-3}], lr=1e-2, **kwargs)
        opts.append(opt)
        scheds.append(torch.optim.lr_scheduler.StepLR(opt, step_size=4, gamma=0.5))
    for step in range(12):
        for model, opt, sched in zip(models, opts, scheds):
            opt.zero_grad()
            F.cross_entropy(model(X), y).backward()
            if step < 5:
                model[2].bias.grad = None  # skipped: no gradient, no update, no state
            opt.step()
            sched.step()
        for p_ref, p_mine in zip(models[0].parameters(), models[1].parameters()):
            torch.testing.assert_close(p_mine, p_ref, **CLOSE)


def test_closure_is_evaluated_and_its_loss_returned(digits):
    X, y = digits
    model = _mlp()
    opt = optim.SGD(model.parameters(), lr=0.1)
    calls = []

    def closure() -> torch.Tensor:
        calls.append(1)
        opt.zero_grad()
        loss = F.cross_entropy(model(X), y)
        loss.backward()
        return loss

    first = opt.step(closure)
    second = opt.step(closure)
    assert len(calls) == 2 and second.item() < first.item()


def test_invalid_hyper_parameters_are_rejected():
    params = [nn.Parameter(torch.zeros(2))]
    with pytest.raises(ValueError):
        optim.SGD(params, lr=-1.0)
    with pytest.raises(ValueError):
        optim.SGD(params, lr=0.1, nesterov=True)  # nesterov needs momentum
    with pytest.raises(ValueError):
        optim.Adam(params, betas=(1.0, 0.9))
    with pytest.raises(ValueError):
        optim.RMSprop(params, eps=-1e-8)

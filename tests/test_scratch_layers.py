"""Drop-in layers: state dict keys, shapes and initialisation of torch.nn; same outputs, grads."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from sklearn.datasets import load_digits
from torch import nn

from dlbasics.scratch import layers

EXACT = {"rtol": 1e-10, "atol": 1e-10}
F64 = torch.float64


def _rand(*shape: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, dtype=F64, generator=g).requires_grad_(True)


# name -> (constructor args, kwargs, input shape)
CASES: dict[str, tuple[str, tuple, dict, tuple[int, ...]]] = {
    "Linear": ("Linear", (6, 4), {}, (5, 6)),
    "Linear no bias, 3-D input": ("Linear", (6, 4), {"bias": False}, (2, 5, 6)),
    "Conv2d": ("Conv2d", (3, 4, 3), {"stride": 2, "padding": 1}, (2, 3, 9, 8)),
    "Conv2d groups dilation": ("Conv2d", (4, 6, (3, 2)), {"dilation": (1, 2), "groups": 2,
                                                          "bias": False}, (2, 4, 7, 8)),
    "Conv2d same reflect": ("Conv2d", (3, 4, 3), {"padding": "same", "padding_mode": "reflect"},
                            (2, 3, 6, 7)),
    "Conv2d circular": ("Conv2d", (3, 2, 3), {"padding": (1, 2), "padding_mode": "circular"},
                        (1, 3, 5, 6)),
    "Conv2d replicate": ("Conv2d", (2, 2, 2), {"padding": 1, "padding_mode": "replicate"},
                         (1, 2, 4, 4)),
    "Conv1d": ("Conv1d", (3, 5, 4), {"stride": 2, "padding": 2}, (2, 3, 11)),
    "Conv1d same": ("Conv1d", (3, 5, 3), {"padding": "same", "dilation": 2}, (2, 3, 10)),
    "MaxPool2d": ("MaxPool2d", (3,), {"stride": 2, "padding": 1, "ceil_mode": True},
                  (2, 3, 9, 8)),
    "MaxPool1d": ("MaxPool1d", (2,), {}, (2, 3, 9)),
    "AvgPool2d": ("AvgPool2d", (2,), {"count_include_pad": False}, (2, 3, 7, 6)),
    "AvgPool1d": ("AvgPool1d", (3,), {"stride": 2, "padding": 1}, (2, 3, 9)),
    "Dropout (eval)": ("Dropout", (0.4,), {}, (4, 5)),
}


def _pair(cls: str, args: tuple, kwargs: dict) -> tuple[nn.Module, nn.Module]:
    """torch module and scratch twin, built under the same seed."""
    extra = {"dtype": F64} if cls.startswith(("Linear", "Conv")) else {}
    torch.manual_seed(0)
    ref = getattr(nn, cls)(*args, **kwargs, **extra)
    torch.manual_seed(0)
    mine = getattr(layers, cls)(*args, **kwargs, **extra)
    return ref, mine


def _assert_same(ref: nn.Module, mine: nn.Module, run: Callable[[nn.Module], torch.Tensor],
                 inputs: list[torch.Tensor]) -> None:
    out_ref, out_mine = run(ref), run(mine)
    torch.testing.assert_close(out_mine, out_ref, **EXACT)
    g = torch.randn(out_ref.shape, dtype=F64, generator=torch.Generator().manual_seed(1))
    grads_ref = torch.autograd.grad(out_ref, [*inputs, *ref.parameters()], g)
    grads_mine = torch.autograd.grad(out_mine, [*inputs, *mine.parameters()], g)
    for a, b in zip(grads_mine, grads_ref):
        torch.testing.assert_close(a, b, **EXACT)


@pytest.mark.parametrize("case", list(CASES))
def test_layer_is_a_drop_in_replacement(case):
    cls, args, kwargs, shape = CASES[case]
    ref, mine = _pair(cls, args, kwargs)
    sd_ref, sd_mine = ref.state_dict(), mine.state_dict()
    assert list(sd_ref) == list(sd_mine)
    for name in sd_ref:  # same shapes and same initial values under the same seed
        assert torch.equal(sd_ref[name], sd_mine[name]), name
    ref.eval()
    mine.eval()
    x = _rand(*shape, seed=2)
    _assert_same(ref, mine, lambda m: m(x), [x])
    if sd_ref:  # load both ways
        with torch.no_grad():
            for p in ref.parameters():
                p.mul_(-1.5)
        mine.load_state_dict(ref.state_dict())
        _assert_same(ref, mine, lambda m: m(x), [x])
        with torch.no_grad():
            for p in mine.parameters():
                p.add_(0.25)
        ref.load_state_dict(mine.state_dict())
        _assert_same(ref, mine, lambda m: m(x), [x])


@pytest.mark.parametrize("cls", ["RNN", "LSTM", "GRU"])
def test_recurrent_layers_are_drop_in_replacements(cls):
    ref, mine = _pair(cls, (4, 5), {"num_layers": 2, "bidirectional": True, "batch_first": True,
                                    "dtype": F64})
    assert list(ref.state_dict()) == list(mine.state_dict())
    x = _rand(3, 6, 4, seed=3)
    _assert_same(ref, mine, lambda m: m(x)[0], [x])


def test_multihead_attention_is_a_drop_in_replacement():
    ref, mine = _pair("MultiheadAttention", (8, 2), {"batch_first": True, "dtype": F64})
    assert list(ref.state_dict()) == list(mine.state_dict())
    x = _rand(3, 5, 8, seed=4)
    _assert_same(ref, mine, lambda m: m(x, x, x)[0], [x])


def test_max_pool_return_indices_and_dropout_training():
    ref, mine = _pair("MaxPool2d", (2,), {"return_indices": True})
    x = _rand(2, 3, 6, 6, seed=5)
    assert torch.equal(mine(x)[1], ref(x)[1])
    drop_ref, drop_mine = nn.Dropout(0.3), layers.Dropout(0.3)
    torch.manual_seed(9)
    a = drop_ref(x)
    torch.manual_seed(9)
    b = drop_mine(x)
    torch.testing.assert_close(b, a, **EXACT)  # same RNG stream, same mask
    inplace = layers.Dropout(0.5, inplace=True)
    y = torch.ones(100, dtype=F64)
    assert inplace(y) is y and (y == 0).any()


def test_conv_layer_rejects_bad_arguments():
    with pytest.raises(ValueError):
        layers.Conv2d(3, 4, 3, groups=2)
    with pytest.raises(ValueError):
        layers.Conv2d(4, 4, 3, padding="same", stride=2)
    with pytest.raises(ValueError):
        layers.Conv2d(4, 4, 3, padding_mode="mirror")
    with pytest.raises(ValueError):
        layers.Dropout(-0.1)


def _lenet(lib) -> nn.Module:
    return nn.Sequential(
        lib.Conv2d(1, 6, 3, padding=1), nn.ReLU(), lib.MaxPool2d(2),
        lib.Conv2d(6, 12, 3, padding=1), nn.ReLU(), lib.AvgPool2d(2),
        nn.Flatten(), lib.Dropout(0.2), lib.Linear(12 * 2 * 2, 10),
    ).double()


def test_a_whole_network_switches_between_torch_and_scratch():
    """The same LeNet built from ``torch.nn`` and from ``layers``: identical initial weights
    under one seed, identical outputs and gradients on real digit images, in eval and train."""
    X, y = load_digits(return_X_y=True)
    images = torch.tensor(X[:64] / 16.0).view(-1, 1, 8, 8)
    labels = torch.tensor(y[:64])
    torch.manual_seed(0)
    ref = _lenet(nn)
    torch.manual_seed(0)
    mine = _lenet(layers)
    for mode in ("eval", "train"):
        getattr(ref, mode)()
        getattr(mine, mode)()
        torch.manual_seed(1)
        loss_ref = nn.functional.cross_entropy(ref(images), labels)
        torch.manual_seed(1)
        loss_mine = nn.functional.cross_entropy(mine(images), labels)
        torch.testing.assert_close(loss_mine, loss_ref, **EXACT)
        grads_ref = torch.autograd.grad(loss_ref, list(ref.parameters()))
        grads_mine = torch.autograd.grad(loss_mine, list(mine.parameters()))
        for a, b in zip(grads_mine, grads_ref):
            torch.testing.assert_close(a, b, **EXACT)

"""Every from-scratch layer runs where its input lives: forward and backward on each available
device. ``meta`` tensors (shapes only, no data) stand in for an accelerator on a CPU-only machine:
any index or mask built on the CPU inside a layer fails there as it would on a GPU."""

from __future__ import annotations

import pytest
import torch

from dlbasics.scratch import layers as L

DEVICES = [
    "cpu",
    "meta",
    pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(),
                                                  reason="no CUDA device")),
    pytest.param("mps", marks=pytest.mark.skipif(not torch.backends.mps.is_available(),
                                                 reason="no MPS device")),
]

LAYERS = {  # a layer and the shape of its input
    "Linear": (lambda: L.Linear(4, 3), (2, 4)),
    "Conv2d": (lambda: L.Conv2d(2, 3, 3, padding=1, stride=2), (2, 2, 7, 7)),
    "Conv1d": (lambda: L.Conv1d(2, 3, 3, padding=1), (2, 2, 7)),
    "MaxPool2d": (lambda: L.MaxPool2d(3, stride=2, padding=1), (2, 2, 7, 7)),
    "MaxPool1d": (lambda: L.MaxPool1d(2), (2, 2, 7)),
    "AvgPool2d": (lambda: L.AvgPool2d(3, padding=1, count_include_pad=False), (2, 2, 6, 6)),
    "AvgPool1d": (lambda: L.AvgPool1d(2), (2, 2, 6)),
    "Dropout": (lambda: L.Dropout(0.3), (2, 5)),
    "RNN": (lambda: L.RNN(3, 4, num_layers=2), (5, 2, 3)),
    "LSTM": (lambda: L.LSTM(3, 4, batch_first=True, bidirectional=True), (2, 5, 3)),
    "GRU": (lambda: L.GRU(3, 4, batch_first=True), (2, 5, 3)),
    "MultiheadAttention": (lambda: L.MultiheadAttention(4, 2, batch_first=True), (2, 5, 4)),
}


def test_every_scratch_layer_is_covered():
    assert set(LAYERS) >= {n for n in L.__all__ if not n.endswith("Cell")}


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", list(LAYERS))
def test_layer_follows_its_input(name, device):
    make, shape = LAYERS[name]
    torch.manual_seed(0)
    layer = make().to(device)
    x = torch.randn(*shape).to(device).requires_grad_()
    out = layer(x, x, x)[0] if name == "MultiheadAttention" else layer(x)
    out = out[0] if isinstance(out, tuple) else out
    assert out.device.type == device
    out.square().sum().backward()
    assert x.grad is not None and x.grad.device.type == device
    if device not in ("cpu", "meta"):  # the same numbers as on the CPU
        torch.manual_seed(0)
        ref = make()
        ref_out = ref(*(3 * [x.detach().cpu()] if name == "MultiheadAttention"
                        else [x.detach().cpu()]))
        ref_out = ref_out[0] if isinstance(ref_out, tuple) else ref_out
        if name != "Dropout":
            torch.testing.assert_close(out.detach().cpu(), ref_out, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("device", [d for d in DEVICES if d != "meta"])
def test_packed_lengths_follow_the_input(device):
    lstm = L.LSTM(3, 4, batch_first=True).to(device)
    out, _ = lstm(torch.randn(2, 5, 3, device=device), lengths=torch.tensor([5, 2]))
    assert out.device.type == device and out[1, 2:].abs().sum() == 0

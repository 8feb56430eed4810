"""Time the from-scratch algorithms against PyTorch on the same inputs, in one run.

Forward + backward for the layers, one ``step()`` for the optimizers, with shapes from realistic
small models. Prints a markdown table of times (``torch.utils.benchmark.Timer``, after a warm-up;
best of several alternating rounds) and the ratio scratch / torch.

    python scripts/bench_scratch.py [--min-time 2.0] [--rounds 5] [--threads N]
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.benchmark import Timer

from dlbasics.scratch import attention, conv, layers, optim, pool


@dataclass
class Case:
    name: str
    shape: str
    scratch: Callable[[], object]
    torch: Callable[[], object]
    target: float | None = None  # maximal acceptable ratio, if any


def fwd_bwd(fn: Callable[..., torch.Tensor], *args, **kwargs) -> Callable[[], None]:
    """Closure running ``fn(*args)`` forward and back-propagating a fixed upstream gradient."""
    params = [a for a in args if isinstance(a, torch.Tensor) and a.requires_grad]
    with torch.no_grad():
        out = fn(*args, **kwargs)
        out = out[0] if isinstance(out, tuple) else out
    grad_out = torch.randn_like(out)

    def run() -> None:
        for p in params:
            p.grad = None
        y = fn(*args, **kwargs)
        y = y[0] if isinstance(y, tuple) else y
        y.backward(grad_out)

    return run


def module_fwd_bwd(module: nn.Module, x: torch.Tensor) -> Callable[[], None]:
    return fwd_bwd(lambda inp: module(inp), x)


def conv_case() -> Case:
    x = torch.randn(128, 32, 14, 14, requires_grad=True)
    w = torch.randn(64, 32, 3, 3, requires_grad=True)
    b = torch.randn(64, requires_grad=True)
    return Case("conv2d fwd+bwd", "x 128x32x14x14, w 64x32x3x3, pad 1",
                fwd_bwd(conv.conv2d, x, w, b, 1, 1), fwd_bwd(F.conv2d, x, w, b, 1, 1), 5.0)


def maxpool_case() -> Case:
    x = torch.randn(128, 64, 28, 28, requires_grad=True)
    return Case("max_pool2d fwd+bwd", "x 128x64x28x28, k 2, s 2",
                fwd_bwd(pool.max_pool2d, x, 2), fwd_bwd(F.max_pool2d, x, 2))


def avgpool_case() -> Case:
    x = torch.randn(128, 64, 28, 28, requires_grad=True)
    return Case("avg_pool2d fwd+bwd", "x 128x64x28x28, k 2, s 2",
                fwd_bwd(pool.avg_pool2d, x, 2), fwd_bwd(F.avg_pool2d, x, 2))


def lstm_case() -> Case:
    x = torch.randn(64, 100, 64, requires_grad=True)
    ref = nn.LSTM(64, 128, batch_first=True)
    mine = layers.LSTM(64, 128, batch_first=True)
    mine.load_state_dict(ref.state_dict())
    return Case("LSTM layer fwd+bwd", "batch 64, seq 100, 64->128",
                module_fwd_bwd(mine, x), module_fwd_bwd(ref, x))


def sdpa_case() -> Case:
    q, k, v = (torch.randn(32, 4, 128, 64, requires_grad=True) for _ in range(3))
    return Case("attention (SDPA) fwd+bwd", "batch 32, heads 4, seq 128, d 64",
                fwd_bwd(attention.scaled_dot_product_attention, q, k, v, is_causal=True),
                fwd_bwd(F.scaled_dot_product_attention, q, k, v, is_causal=True), 2.0)


def mha_case() -> Case:
    x = torch.randn(32, 128, 256, requires_grad=True)
    ref = nn.MultiheadAttention(256, 4, batch_first=True)
    mine = layers.MultiheadAttention(256, 4, batch_first=True)
    mine.load_state_dict(ref.state_dict())
    return Case("MultiheadAttention fwd+bwd", "batch 32, seq 128, embed 256, 4 heads",
                fwd_bwd(lambda inp: mine(inp, inp, inp, need_weights=False), x),
                fwd_bwd(lambda inp: ref(inp, inp, inp, need_weights=False), x), 2.0)


def optimizer_case(name: str, **kwargs) -> Case:
    def make() -> list[nn.Parameter]:
        torch.manual_seed(0)
        net = nn.Sequential(nn.Linear(784, 1024), nn.ReLU(), nn.Linear(1024, 256), nn.ReLU(),
                            nn.Linear(256, 10))
        params = list(net.parameters())
        for p in params:
            p.grad = torch.randn_like(p)
        return params

    mine = getattr(optim, name)(make(), **kwargs)
    ref = getattr(torch.optim, name)(make(), **kwargs)
    n = sum(p.numel() for p in mine.param_groups[0]["params"])
    opts = ", ".join(f"{k}={v}" for k, v in kwargs.items())
    return Case(f"{name} step", f"MLP 784-1024-256-10 ({n / 1e6:.2f}M params), {opts}",
                mine.step, ref.step, 2.0)


def time_pair(scratch: Callable[[], object], ref: Callable[[], object], min_time: float,
              rounds: int) -> tuple[float, float]:
    """Best-of-``rounds`` mean time (ms) of each closure, the two measured in alternation.

    Each round runs ``Timer.timeit`` with enough calls to fill ``min_time / rounds`` seconds.
    Alternating the two and keeping each one's best round makes the ratio robust to other
    processes sharing the CPU.
    """
    timers = [Timer(stmt="fn()", globals={"fn": fn}, num_threads=torch.get_num_threads())
              for fn in (scratch, ref)]
    calls = []
    for fn, timer in zip((scratch, ref), timers):
        fn()  # warm-up
        once = timer.timeit(1).mean
        calls.append(max(1, int(min_time / rounds / max(once, 1e-6))))
    best = [float("inf"), float("inf")]
    for _ in range(rounds):
        for i, timer in enumerate(timers):
            best[i] = min(best[i], timer.timeit(calls[i]).mean * 1e3)
    return best[0], best[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--min-time", type=float, default=2.0,
                        help="seconds spent timing each side of each case")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds per case")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cases = [conv_case, maxpool_case, avgpool_case, lstm_case, sdpa_case, mha_case,
             lambda: optimizer_case("Adam", lr=1e-3),
             lambda: optimizer_case("AdamW", lr=1e-3, weight_decay=1e-2),
             lambda: optimizer_case("SGD", lr=1e-2, momentum=0.9, nesterov=True),
             lambda: optimizer_case("RMSprop", lr=1e-3)]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, float32, CPU\n")
    print("| operation | shape | scratch ms | torch ms | ratio | target |")
    print("|---|---|---:|---:|---:|---|")
    for make in cases:
        case = make()
        mine, ref = time_pair(case.scratch, case.torch, args.min_time, args.rounds)
        ratio = mine / ref
        target = "" if case.target is None else (
            f"<= {case.target:g}x " + ("ok" if ratio <= case.target else "MISSED"))
        print(f"| {case.name} | {case.shape} | {mine:.2f} | {ref:.2f} | {ratio:.2f}x | {target} |",
              flush=True)


if __name__ == "__main__":
    main()

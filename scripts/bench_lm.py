"""Tokens per second of training and of generation for both language models, as one table.

    OMP_NUM_THREADS=1 .venv/bin/python scripts/bench_lm.py [--train-steps 40] [--threads 1]

The models are those of ``experiment=shakespeare_{transformer,lstm}`` (same sizes, same batches
of 12 x 64 Tiny Shakespeare characters). Training is a plain PyTorch loop (forward, backward,
AdamW step; no Lightning overhead). Generation is batch 1, from a one-character prompt: "window"
samples block_size - 1 tokens (everything fits in the context, so every step reuses the KV cache);
"long" samples --long tokens: past block_size the Transformer's window slides and is re-encoded
every step, with or without a cache (exact sampling: it always sees the last block_size
characters), while the LSTM keeps carrying its state.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch
from hydra import compose, initialize_config_dir

from dlbasics.build import build_datamodule, build_module
from dlbasics.cli import register_resolvers
from dlbasics.configs import CONF_DIR
from dlbasics.models.sampling import generate


def build(experiment: str):
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("train", overrides=[f"experiment={experiment}", "data.download=false"])
    dm = build_datamodule(cfg)
    return build_module(cfg, dm.spec).net, dm


def timed(fn: Callable[[], int], repeats: int = 1) -> float:
    """Best tokens/second over ``repeats`` calls of ``fn`` (which returns its token count)."""
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        n = fn()
        best = max(best, n / (time.perf_counter() - start))
    return best


def train_speed(net: torch.nn.Module, dm, steps: int) -> float:
    net.train()
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
    batches = iter(dm.train_dataloader())

    def run(n: int) -> int:
        tokens = 0
        for _ in range(n):
            x, y = next(batches)
            logits = net(x)
            loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), y.flatten())
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            tokens += x.numel()
        return tokens

    run(3)  # warm-up
    return timed(lambda: run(steps))


def generation_speed(net: torch.nn.Module, dm, new_tokens: int, use_cache: bool,
                     repeats: int) -> float:
    prompt = torch.tensor([dm.vocab.encode(["\n"])])

    def run() -> int:
        generate(net, prompt, new_tokens, temperature=1.0, top_k=None,
                 generator=torch.Generator().manual_seed(0), use_cache=use_cache)
        return new_tokens

    run()  # warm-up
    return timed(run, repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train-steps", type=int, default=40)
    parser.add_argument("--long", type=int, default=500, help="tokens of the long generation")
    parser.add_argument("--repeats", type=int, default=3, help="best of N generation runs")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    register_resolvers()

    rows = []
    for name in ("shakespeare_transformer", "shakespeare_lstm"):
        net, dm = build(name)
        params = sum(p.numel() for p in net.parameters())
        train = train_speed(net, dm, args.train_steps)
        window = dm.block_size - 1
        for cache in (True, False):
            label = {True: "KV cache" if "transformer" in name else "carried state",
                     False: "re-encode context"}[cache]
            short = generation_speed(net, dm, window, cache, args.repeats)
            long = generation_speed(net, dm, args.long, cache, max(1, args.repeats // 3))
            rows.append((type(net).__name__, f"{params / 1e6:.2f}M", f"{train:,.0f}", label,
                         f"{short:,.0f}", f"{long:,.0f}"))
            train = float("nan")
    heads = ("model", "params", "train tok/s", "generation", f"gen tok/s ({window} new)",
             f"gen tok/s ({args.long} new)")
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(heads)]
    line = lambda cells: "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"  # noqa: E731
    print(f"torch {torch.__version__}, {args.threads} thread(s), batch 12 x {dm.block_size} "
          f"for training, batch 1 for generation")
    print(line(heads))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print(line(tuple(c if c != "nan" else "" for c in r)))


if __name__ == "__main__":
    main()

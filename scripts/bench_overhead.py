"""Lightning's overhead where it shows: small steps, with everything a user runs on.

    python scripts/bench_overhead.py [--recipes lm mlp] [--repeats 5]

For each recipe, ``python -m dlbasics.train``'s fit (in this process: the default callbacks,
the progress bar and the CSV logger all on, per-step training metrics and logging; the fit time
of metrics.json, i.e. ``trainer.fit`` from its start to its end, sanity check and last
checkpoint included) against the plain PyTorch loop of the same recipe (``dlbasics.plain``:
same data order, network, optimizer, schedule and validations; its loop time), alternating,
after one warm-up run of each. Prints each side's median time and the median and range of the
per-repeat ratio Lightning / plain (goal: <= 1.05x).

Recipes: ``lm`` is the char Transformer of experiment=shakespeare_transformer (~50 ms steps on
2 cores), 250 steps and one validation; ``mlp`` is the MLP on scikit-learn's 8x8 digits (~1 ms
steps), 10 epochs of 21 steps, validated after each.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from dlbasics import plain
from dlbasics.speedrun import compose_recipe
from dlbasics.train import train

RECIPES = {
    "lm": ["experiment=shakespeare_transformer", "trainer.max_steps=250", "trainer.max_epochs=1"],
    "mlp": ["model=mlp", "data=digits", "trainer.max_epochs=10"],
}


def lightning_seconds(overrides: list[str], root: Path) -> float:
    out = Path(tempfile.mkdtemp(dir=root))
    return float(train(compose_recipe([*overrides, "test=false"], out))["fit_seconds"])


def plain_seconds(overrides: list[str], root: Path) -> float:
    return plain.fit(compose_recipe(overrides, root), test=False).seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", nargs="+", default=list(RECIPES), choices=list(RECIPES))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--set", nargs="*", default=[], help="extra overrides for both sides")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-overhead-"))
    lines = []
    for name in args.recipes:
        overrides = [*RECIPES[name], *args.set]
        lightning_seconds(overrides, root), plain_seconds(overrides, root)  # warm-up
        light, ref = [], []
        for _ in range(args.repeats):
            light.append(lightning_seconds(overrides, root))
            ref.append(plain_seconds(overrides, root))
        ratios = sorted(a / b for a, b in zip(light, ref))
        lines.append(f"{name}: Lightning {statistics.median(light):.2f} s, plain "
                     f"{statistics.median(ref):.2f} s (medians of {args.repeats}); ratio "
                     f"{statistics.median(ratios):.3f}x median, {ratios[0]:.3f}-{ratios[-1]:.3f} "
                     f"range  [{' '.join(overrides)}]")
        print(lines[-1], flush=True)
    print(time.strftime("%Y-%m-%d %H:%M"), *lines, sep="\n")


if __name__ == "__main__":
    main()

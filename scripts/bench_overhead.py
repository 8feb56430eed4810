"""Lightning's overhead where it shows: small steps, with everything a user runs on.

    python scripts/bench_overhead.py [--recipes lm mlp] [--repeats 5]
    python scripts/bench_overhead.py --recipes mlp --trees /tmp/before .   # two checkouts, A/B

For each recipe, ``python -m dlbasics.train``'s fit (the default callbacks, the progress bar and
the CSV logger all on; the ``fit_seconds`` of metrics.json: ``trainer.fit`` from its start to its
end, sanity check and last checkpoint included; no test) against the plain PyTorch loop of the
same recipe (``dlbasics.plain``: same data order, network, optimizer, schedule and validations;
its loop time). A third side, ``bare``, is Lightning's own floor: the same LitModule and
recipe in a Trainer with nothing attached (no callbacks, logger, progress bar, checkpoints,
model summary or sanity check), so what the ratio owes to Lightning's loop and what to the
template's defaults reads off the table. Each run is a fresh process; the runs alternate
(every Lightning checkout given with ``--trees``, the bare Trainer, then the plain loop), after
one warm-up round. Prints the median times and the median and range of the per-round ratios
to the plain loop (goal: <= 1.05x).

Recipes: ``lm`` is experiment=shakespeare_transformer's char Transformer (steps of 50-70
ms on 2 cores), 250 steps and one validation; ``mlp`` is the MLP on scikit-learn's 8x8 digits
(steps of a few ms), 10 epochs of 21 steps, validated after each.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from dlbasics.readme import update

RECIPES = {
    "lm": ["experiment=shakespeare_transformer", "trainer.max_steps=250", "trainer.max_epochs=1"],
    "mlp": ["model=mlp", "data=digits", "trainer.max_epochs=10"],
}
LIGHTNING = ("import sys, tempfile; from dlbasics.speedrun import compose_recipe; "
             "from dlbasics.train import train; print('SECONDS', train(compose_recipe("
             "sys.argv[1:] + ['test=false'], tempfile.mkdtemp()))['fit_seconds'])")
PLAIN = ("import sys, tempfile; from dlbasics import plain; from dlbasics.speedrun import "
         "compose_recipe; print('SECONDS', plain.fit(compose_recipe(sys.argv[1:], "
         "tempfile.mkdtemp()), test=False).seconds)")
BARE = ["callbacks=none", "logger=none", "trainer.enable_progress_bar=false",
        "+trainer.enable_checkpointing=false", "trainer.enable_model_summary=false",
        "+trainer.num_sanity_val_steps=0"]
HERE = Path(__file__).resolve().parents[1]


def timed(tree: Path, code: str, overrides: list[str]) -> float:
    env = {**os.environ, "PYTHONPATH": f"{tree}/src:{tree}", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run([sys.executable, "-c", code, *overrides], env=env, capture_output=True,
                          text=True, cwd=tree)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("SECONDS")]
    if proc.returncode or not lines:
        raise SystemExit(f"{tree}: {proc.stderr[-3000:]}")
    return float(lines[-1].split()[1])


def ratio(times: list[float], ref: list[float]) -> str:
    """The median and range of the per-round ratios ``times / ref``."""
    ratios = sorted(a / b for a, b in zip(times, ref))
    return f"{statistics.median(ratios):.3f}x median, {ratios[0]:.3f}-{ratios[-1]:.3f} range"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", nargs="+", default=list(RECIPES), choices=list(RECIPES))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--trees", nargs="+", type=Path, default=[HERE],
                        help="checkouts whose Lightning side runs (default: this one)")
    parser.add_argument("--set", nargs="*", default=[], help="extra overrides for every side")
    parser.add_argument("--no-save", action="store_true",
                        help="print only (default: results/overhead.md and the README block)")
    args = parser.parse_args()
    trees = [t.resolve() for t in args.trees]
    lines = []
    for name in args.recipes:
        overrides = [*RECIPES[name], *args.set]
        light: dict[Path, list[float]] = {t: [] for t in trees}
        bare: list[float] = []
        ref: list[float] = []
        for round_ in range(args.repeats + 1):  # round 0 warms up
            times = [timed(t, LIGHTNING, overrides) for t in trees]
            floor = timed(HERE, LIGHTNING, [*overrides, *BARE])
            plain = timed(HERE, PLAIN, overrides)
            print(f"{name} round {round_}: Lightning {[round(t, 2) for t in times]} s, "
                  f"bare {floor:.2f} s, plain {plain:.2f} s", flush=True)
            if round_:
                for t, s in zip(trees, times):
                    light[t].append(s)
                bare.append(floor)
                ref.append(plain)

        for t in trees:
            label = name if t == HERE else f"{name} [{t}]"
            lines.append(f"{label}: Lightning {statistics.median(light[t]):.2f} s, bare Trainer "
                         f"{statistics.median(bare):.2f} s, plain {statistics.median(ref):.2f} s "
                         f"(medians of {args.repeats}); ratio {ratio(light[t], ref)}; bare "
                         f"Trainer {ratio(bare, ref)}")
            print(lines[-1], flush=True)
    report = "\n".join([f"Measured by `python {' '.join(sys.argv)}` on "
                        f"{time.strftime('%Y-%m-%d')} ({os.cpu_count()} CPU cores):", "",
                        *(f"- {line}" for line in lines)])
    print(report)
    if not args.no_save and args.trees == [HERE]:
        (HERE / "results").mkdir(exist_ok=True)
        (HERE / "results" / "overhead.md").write_text(report + "\n")
        update(HERE / "README.md", "overhead", report)


if __name__ == "__main__":
    main()

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
one warm-up round. Two measures per side: the whole fit's time, and the median interval
between consecutive training steps' ends (``dlbasics.callbacks.StepTimes``; the plain loop's
own): each step's whole cost without a run's fixed costs (start-up, sanity check, plots, the
last checkpoint), and robust to a burst of noise. Prints the medians over the rounds and the
median and range of the per-round ratios to the plain loop (goal: <= 1.05x).

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
LIGHTNING = ("import json, statistics, sys, tempfile; from dlbasics.speedrun import "
             "compose_recipe; from dlbasics.train import train; d = tempfile.mkdtemp(); "
             "s = train(compose_recipe(sys.argv[1:] + ['test=false', "
             "'+callbacks.step_times._target_=dlbasics.callbacks.StepTimes'], d))['fit_seconds']; "
             "i = json.load(open(d + '/step_times.json'))['intervals']; "
             "print('SECONDS', s, statistics.median(i))")
PLAIN = ("import statistics, sys, tempfile, time; from dlbasics import plain; from "
         "dlbasics.speedrun import compose_recipe; e = []; s = plain.fit(compose_recipe("
         "sys.argv[1:], tempfile.mkdtemp()), test=False, on_loss=lambda step, loss: "
         "e.append(time.perf_counter())).seconds; "
         "print('SECONDS', s, statistics.median(b - a for a, b in zip(e, e[1:])))")
BARE = ["callbacks=none", "logger=none", "trainer.enable_progress_bar=false",
        "+trainer.enable_checkpointing=false", "trainer.enable_model_summary=false",
        "+trainer.num_sanity_val_steps=0"]
HERE = Path(__file__).resolve().parents[1]


def timed(tree: Path, code: str, overrides: list[str]) -> tuple[float, float]:
    """(fit seconds, median seconds between consecutive training steps' ends) of one run."""
    env = {**os.environ, "PYTHONPATH": f"{tree}/src:{tree}", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run([sys.executable, "-c", code, *overrides], env=env, capture_output=True,
                          text=True, cwd=tree)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("SECONDS")]
    if proc.returncode or not lines:
        raise SystemExit(f"{tree}: {proc.stderr[-3000:]}")
    _, seconds, step = lines[-1].split()
    return float(seconds), float(step)


Runs = list[tuple[float, float]]  # one side's (fit seconds, median step interval) per round


def median(runs: Runs, k: int, scale: float = 1.0) -> str:
    """The median over the rounds of measure ``k`` (0: fit, 1: step), times ``scale``."""
    return f"{statistics.median(r[k] for r in runs) * scale:.2f}"


def ratio(runs: Runs, ref: Runs, k: int) -> str:
    """The median and range of the per-round ratios of measure ``k``, ``runs / ref``."""
    ratios = sorted(a[k] / b[k] for a, b in zip(runs, ref))
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
        light: dict[Path, Runs] = {t: [] for t in trees}
        bare: Runs = []
        ref: Runs = []
        for round_ in range(args.repeats + 1):  # round 0 warms up
            runs = [timed(t, LIGHTNING, overrides) for t in trees]
            floor = timed(HERE, LIGHTNING, [*overrides, *BARE])
            plain = timed(HERE, PLAIN, overrides)
            print(f"{name} round {round_}: Lightning {[round(r[0], 2) for r in runs]} s, "
                  f"bare {floor[0]:.2f} s, plain {plain[0]:.2f} s; median step "
                  f"{[round(r[1] * 1e3, 2) for r in runs]} / {floor[1] * 1e3:.2f} / "
                  f"{plain[1] * 1e3:.2f} ms", flush=True)
            if round_:
                for t, r in zip(trees, runs):
                    light[t].append(r)
                bare.append(floor)
                ref.append(plain)

        for t in trees:
            label = name if t == HERE else f"{name} [{t}]"
            lines.append(
                f"{label}, whole fit: Lightning {median(light[t], 0)} s, bare Trainer "
                f"{median(bare, 0)} s, plain {median(ref, 0)} s (medians of {args.repeats}); "
                f"ratio {ratio(light[t], ref, 0)}; bare Trainer {ratio(bare, ref, 0)}")
            lines.append(
                f"{label}, per step (median interval between steps): Lightning "
                f"{median(light[t], 1, 1e3)} ms, bare Trainer {median(bare, 1, 1e3)} ms, plain "
                f"{median(ref, 1, 1e3)} ms; ratio {ratio(light[t], ref, 1)}; bare Trainer "
                f"{ratio(bare, ref, 1)}")
            print(*lines[-2:], sep="\n", flush=True)
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

"""Transfer learning on real offline data: an MNIST CNN fine-tuned on scikit-learn's digits.

Pre-trains ``experiment=mnist5k_cnn`` once per seed (4,000 MNIST digits), then trains the same
network on 50, 100 and 500 labelled 8x8 digits resized to 28x28 (``experiment=transfer_digits``),
fine-tuned from that seed's checkpoint and from scratch, on the same images, for every seed.

Recipes are chosen on the validation split only: each arm's candidates below are trained once
(first seed, 100 labels) and the one with the best validation accuracy is used for the whole grid.
The test split (360 digits, fixed) is read once per run, after training. Writes
``results/transfer.json`` (every run) and ``results/transfer.md`` (test accuracy, mean ± sample
std over seeds)::

    python scripts/transfer.py [--seeds 0 1 2] [--sizes 50 100 500] [--out outputs/transfer]

Runs already finished in ``--out`` are reused, so an interrupted experiment continues.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from dlbasics.configs import PROJECT_ROOT
from dlbasics.readme import update

QUIET = ["callbacks.progress_bar=null", "trainer.enable_progress_bar=false",
         "trainer.enable_model_summary=false", "hydra/job_logging=disabled"]
CANDIDATES = {  # arm: {recipe name: overrides}; chosen on validation accuracy
    "fine-tuned": {
        "all layers, same lr": [],
        "backbone lr x0.1": ["finetune.backbone_lr_scale=0.1"],
    },
    "from scratch": {
        "lr 3e-3": [],
        "lr 1e-3": ["optimizer.lr=1e-3"],
    },
}


def train(run_dir: Path, overrides: list[str]) -> dict:
    """``python -m dlbasics.train`` into ``run_dir`` (reused when it finished before)."""
    metrics_file = run_dir / "metrics.json"
    if metrics_file.is_file() and json.loads(metrics_file.read_text()).get("status", "").startswith(
            ("finished", "stopped")):
        return json.loads(metrics_file.read_text())
    if run_dir.exists():
        raise SystemExit(f"{run_dir} holds an unfinished run: delete it and run again")
    command = [sys.executable, "-m", "dlbasics.train", *overrides, *QUIET,
               f"hydra.run.dir={run_dir}"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    print("  $", " ".join(command[1:]), flush=True)
    proc = subprocess.run(command, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"run failed ({run_dir}):\n{proc.stderr[-3000:]}")
    return json.loads(metrics_file.read_text())


def best_val_acc(run_dir: Path) -> float:
    with open(run_dir / "csv" / "metrics.csv") as f:
        return max(float(r["val/acc"]) for r in csv.DictReader(f) if r.get("val/acc"))


def arm_overrides(arm: str, recipe: list[str], size: int, seed: int, pretrained: Path) -> list[str]:
    args = ["experiment=transfer_digits", f"data.train_size={size}", f"seed={seed}"]
    if arm == "fine-tuned":
        args.append(f"finetune.ckpt_path={pretrained}")
    return args + recipe


def pretrained_checkpoint(run_dir: Path) -> Path:
    (best,) = sorted((run_dir / "checkpoints").glob("epoch*.ckpt"))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--sizes", type=int, nargs="+", default=[50, 100, 500])
    parser.add_argument("--out", type=Path, default=Path("outputs/transfer"))
    parser.add_argument("--results", type=Path, default=PROJECT_ROOT / "results")
    parser.add_argument("--readme", type=Path, default=PROJECT_ROOT / "README.md")
    parser.add_argument("--readme-only", action="store_true",
                        help="render results/transfer.json into transfer.md and the README")
    args = parser.parse_args()
    if args.readme_only:
        publish(json.loads((args.results / "transfer.json").read_text()), args.results,
                args.readme)
        return
    start = time.perf_counter()
    out = args.out.resolve()

    print("pre-training on mnist5k, one run per seed", flush=True)
    pretrain = {s: train(out / f"pretrain_seed{s}", ["experiment=mnist5k_cnn", f"seed={s}"])
                for s in args.seeds}
    ckpts = {s: pretrained_checkpoint(out / f"pretrain_seed{s}") for s in args.seeds}

    print("choosing each arm's recipe on validation accuracy (first seed, 100 labels)", flush=True)
    chosen, selection = {}, {}
    seed0 = args.seeds[0]
    for arm, recipes in CANDIDATES.items():
        scores = {}
        for i, (name, recipe) in enumerate(recipes.items()):
            run_dir = out / f"select_{arm.replace(' ', '_')}_{i}"
            train(run_dir, arm_overrides(arm, recipe, 100, seed0, ckpts[seed0]))
            scores[name] = best_val_acc(run_dir)
        chosen[arm] = max(scores, key=scores.get)
        selection[arm] = scores
        print(f"  {arm}: {scores} -> {chosen[arm]}", flush=True)

    runs = []
    for size in args.sizes:
        for arm in CANDIDATES:
            for seed in args.seeds:
                run_dir = out / f"{arm.replace(' ', '_')}_n{size}_seed{seed}"
                overrides = arm_overrides(arm, CANDIDATES[arm][chosen[arm]], size, seed,
                                          ckpts[seed])
                metrics = train(run_dir, overrides)
                runs.append({"arm": arm, "train_size": size, "seed": seed,
                             "test_acc": metrics["test/acc"], "best_val_acc": best_val_acc(run_dir),
                             "fit_seconds": metrics["fit_seconds"], "run_dir": str(run_dir),
                             "overrides": overrides})
                print(f"  {arm:12s} n={size:3d} seed={seed}: test acc {metrics['test/acc']:.4f}",
                      flush=True)
    wall = time.perf_counter() - start
    table = {}
    for size in args.sizes:
        for arm in CANDIDATES:
            accs = [r["test_acc"] for r in runs if r["arm"] == arm and r["train_size"] == size]
            table[f"{arm}, n={size}"] = {
                "mean": statistics.mean(accs), "std": statistics.stdev(accs) if len(accs) > 1 else 0.0,
                "n": len(accs)}
    result = {"pretrain_test_acc": {s: m["test/acc"] for s, m in pretrain.items()},
              "selection_val_acc": selection, "chosen": chosen, "table": table, "runs": runs,
              "wall_seconds": round(wall, 1), "command": " ".join(sys.argv)}
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "transfer.json").write_text(json.dumps(result, indent=2) + "\n")
    publish(result, args.results, args.readme)


def render(result: dict) -> str:
    """The README's transfer block, from ``results/transfer.json`` alone."""
    runs = result["runs"]
    seeds = sorted({r["seed"] for r in runs})
    sizes = sorted({r["train_size"] for r in runs})
    table = result["table"]
    lines = ["| labelled training digits | fine-tuned from MNIST | from scratch |", "|---|---|---|"]
    gaps = []
    for size in sizes:
        cells = [table[f"{arm}, n={size}"] for arm in CANDIDATES]
        gaps.append(100 * (cells[0]["mean"] - cells[1]["mean"]))
        lines.append(f"| {size} | " + " | ".join(
            f"{100 * c['mean']:.1f}% ± {100 * c['std']:.1f} (n={c['n']})" for c in cells) + " |")
    pre = [100 * v for v in result["pretrain_test_acc"].values()]
    selection = "; ".join(
        f"{arm}: " + ", ".join(f"{name} {100 * acc:.1f}%" for name, acc in scores.items())
        + f" -> {result['chosen'][arm]}" for arm, scores in result["selection_val_acc"].items())
    fit = sum(r["fit_seconds"] for r in runs) / 60
    lines += ["", f"Test accuracy on the 360 held-out digits, mean ± sample std over seeds "
              f"{', '.join(map(str, seeds))}. The pre-trained CNNs: {statistics.mean(pre):.1f}% "
              f"on mnist5k's test split. Validation accuracy of each arm's candidate recipes "
              f"(first seed, 100 labels): {selection}. Fine-tuned minus from scratch: "
              + ", ".join(f"{g:+.1f} points at {s}" for s, g in zip(sizes, gaps))
              + f". The grid's {len(runs)} runs fitted for {fit:.0f} min on 2 shared CPU cores "
              f"(`{result['command']}`: {result['wall_seconds'] / 60:.0f} min wall, finished "
              f"runs reused)."]
    return "\n".join(lines)


def publish(result: dict, results: Path, readme: Path) -> None:
    text = render(result)
    (results / "transfer.md").write_text(text + "\n")
    update(readme, "transfer", text)
    print(text)

if __name__ == "__main__":
    main()

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
    parser.add_argument("--results", type=Path, default=Path("results"))
    args = parser.parse_args()
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
    lines = ["| labelled training digits | fine-tuned from MNIST | from scratch |", "|---|---|---|"]
    for size in args.sizes:
        cells = [table[f"{arm}, n={size}"] for arm in CANDIDATES]
        lines.append(f"| {size} | " + " | ".join(
            f"{100 * c['mean']:.1f}% ± {100 * c['std']:.1f} (n={c['n']})" for c in cells) + " |")
    pre = [100 * v for v in result["pretrain_test_acc"].values()]
    lines += ["", f"Test accuracy on the 360 held-out digits, mean ± sample std over seeds "
              f"{args.seeds}. Pre-trained CNNs: {statistics.mean(pre):.1f}% on mnist5k's test "
              f"split. Recipes chosen on validation accuracy: fine-tuned: {chosen['fine-tuned']}; "
              f"from scratch: {chosen['from scratch']}. Wall time {wall / 60:.1f} min."]
    (args.results / "transfer.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

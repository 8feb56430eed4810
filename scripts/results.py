"""Regenerate every number of the README: ``make results`` (``python scripts/results.py``).

Runs each experiment behind the README's tables over 3 seeds, stores each (experiment, seed)
result in ``results/runs/<experiment>/seed<k>.json`` as soon as it finishes, skips it later
while its recipe is unchanged (a hash of the composed config), computes the classical baselines
on the same splits, aggregates mean ± std per experiment into ``results/results.{json,csv,md}``
and rewrites the README's tables between their markers. Every figure is a test-split figure;
the language models also report the loss on nanoGPT's validation split (our val + test).

    python scripts/results.py                  # all, 3 seeds, 2 jobs at a time, 1 thread each
    python scripts/results.py --only mnist1d   # experiments whose name contains "mnist1d"
    python scripts/results.py --force --device gpu
    python scripts/results.py --readme-only    # rebuild the tables from results/ alone
"""

from __future__ import annotations

import argparse
import concurrent.futures as futures
import csv
import hashlib
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import OmegaConf

from dlbasics.baselines import baselines
from dlbasics.cli import register_resolvers
from dlbasics.configs import CONF_DIR, PROJECT_ROOT
from dlbasics.readme import splice

RESULTS = PROJECT_ROOT / "results"
README = PROJECT_ROOT / "README.md"
SEEDS = (1, 2, 3)


@dataclass(frozen=True)
class Row:
    experiment: str
    table: str
    label: str
    metrics: tuple[str, ...]  # the first is the headline figure
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict, hash=False)


ROWS = [
    Row("mnist5k_cnn", "images", "CNN, 5,000 MNIST digits (`make train`)", ("test/acc",)),
    Row("mnist5k_cnn_scratch", "images", "same, every layer and AdamW from `dlbasics.scratch`",
        ("test/acc",)),
    Row("digits_mlp", "images", "MLP, scikit-learn's 8x8 digits", ("test/acc",)),
    Row("digits_resnet", "images", "ResNet, scikit-learn's 8x8 digits", ("test/acc",)),
    Row("mnist1d_mlp", "mnist1d", "MLP 2x256, BatchNorm", ("test/acc",), "paper: 68%"),
    Row("mnist1d_cnn", "mnist1d", "1-D CNN", ("test/acc",), "paper: 94%"),
    Row("mnist1d_gru", "mnist1d", "bidirectional GRU", ("test/acc",), "paper: 91%"),
    Row("mnist1d_lstm", "mnist1d", "bidirectional LSTM", ("test/acc",)),
    Row("mnist1d_transformer", "mnist1d", "Transformer encoder, conv stem", ("test/acc",)),
    Row("rt_lstm", "text", "LSTM", ("test/acc",)),
    Row("rt_bilstm", "text", "bidirectional LSTM", ("test/acc",)),
    Row("rt_gru", "text", "GRU", ("test/acc",)),
    Row("rt_bigru", "text", "bidirectional GRU", ("test/acc",)),
    Row("rt_transformer", "text", "Transformer encoder", ("test/acc",)),
    Row("shakespeare_transformer", "language", "Transformer, Tiny Shakespeare",
        ("test/loss", "nanogpt_val/loss"), "4,000 steps; nanoGPT's CPU recipe: 1.88 (its val) at 2,000"),
    Row("shakespeare_lstm", "language", "LSTM, Tiny Shakespeare", ("test/loss", "nanogpt_val/loss")),
    Row("pydoc_transformer", "language", "Transformer, Python's documentation", ("test/loss",),
        "4,000 steps, as for Shakespeare"),
    Row("numbers_bahdanau", "translation", "biGRU + Bahdanau attention",
        ("test/exact_match", "test/beam_exact_match", "test/bleu")),
    Row("numbers_luong", "translation", "biGRU + Luong attention",
        ("test/exact_match", "test/beam_exact_match", "test/bleu")),
    Row("numbers_noattn", "translation", "biGRU, no attention",
        ("test/exact_match", "test/beam_exact_match", "test/bleu")),
    Row("numbers_transformer", "translation", "Transformer encoder-decoder",
        ("test/exact_match", "test/beam_exact_match", "test/bleu")),
    Row("diabetes_mlp", "regression", "MLP 10-16-1, weight decay", ("test/r2", "test/mae")),
]
TABLES = {  # table name: (heading of the figure column, what "baseline" means there)
    "images": "test accuracy", "mnist1d": "test accuracy", "text": "test accuracy",
    "language": "test loss (nats/char)", "translation": "test exact match",
    "regression": "test R2",
}


def compose_recipe(experiment: str, seed: int, device: str) -> Any:
    register_resolvers()
    overrides = [f"experiment={experiment}", f"seed={seed}"]
    if device == "gpu":
        overrides.append("trainer=gpu")
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        return compose("train", overrides=overrides)


# Options added after results were stored, at the value that does what the code did before
# them: left out of the hash, so a new option does not make every stored result stale.
NEUTRAL = {("model", "word_dropout"): 0.0}


def recipe_hash(experiment: str, seed: int, device: str) -> str:
    """What the result depends on: the composed config without paths and logging."""
    cfg = OmegaConf.to_container(compose_recipe(experiment, seed, device), resolve=False)
    for key in ("paths", "hydra", "print_config", "tags"):
        cfg.pop(key, None)
    for (group, key), value in NEUTRAL.items():
        if cfg.get(group, {}).get(key, object()) == value:
            del cfg[group][key]
    return hashlib.sha256(json.dumps(cfg, sort_keys=True, default=str).encode()).hexdigest()[:16]


def commit() -> str:
    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=PROJECT_ROOT,
                         capture_output=True, text=True)
    return out.stdout.strip() or "unknown"


def run_one(experiment: str, seed: int, device: str, threads: int, recipe: str
            ) -> dict[str, Any]:
    """Train one seed of one experiment in its own process; its summary."""
    folder = PROJECT_ROOT / "outputs" / "results" / experiment / f"seed{seed}"
    args = [sys.executable, "-m", "dlbasics.train", f"experiment={experiment}", f"seed={seed}",
            f"hydra.run.dir={folder}", "existing_run_dir=version", "print_config=false",
            "callbacks.progress_bar=null", "trainer.enable_progress_bar=false"]
    if device == "gpu":
        args.append("trainer=gpu")
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    start = time.perf_counter()
    proc = subprocess.run(args, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{experiment} seed {seed} failed:\n{proc.stderr[-3000:]}")
    run_dir = Path(proc.stdout.split("run folder: ")[-1].strip())
    metrics = json.loads((run_dir / "metrics.json").read_text())
    record = json.loads((run_dir / "run.json").read_text())
    if "nanogpt_val/loss" in {m for r in ROWS if r.experiment == experiment for m in r.metrics}:
        n_val, n_test = record["sizes"]["val"], record["sizes"]["test"]  # windows of equal length
        metrics["nanogpt_val/loss"] = ((metrics["val/loss"] * n_val + metrics["test/loss"]
                                        * n_test) / (n_val + n_test))
    return {"experiment": experiment, "seed": seed, "recipe": recipe,
            "commit": commit(), "device": device, "threads": threads, "wall_seconds": wall,
            "status": metrics.get("status"), "parameters": metrics.get("parameters"),
            "fit_seconds": metrics.get("fit_seconds"),
            "metrics": {k: v for k, v in metrics.items() if k.startswith(("test/", "val/",
                                                                          "nanogpt_val/"))}}


def stored(experiment: str, seed: int) -> Path:
    return RESULTS / "runs" / experiment / f"seed{seed}.json"


def baseline_figures(experiment: str) -> dict[str, float]:
    """The classical baselines on the experiment's own splits (seed 1 picks the val split);
    cached per data config in results/baselines.json."""
    cache_path = RESULTS / "baselines.json"
    cache = json.loads(cache_path.read_text()) if cache_path.is_file() else {}
    cfg = compose_recipe(experiment, SEEDS[0], "cpu")
    data = OmegaConf.to_container(cfg.data, resolve=False)
    key = hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]
    if key not in cache:
        dm = instantiate(cfg.data)
        dm.prepare_data()
        dm.setup()
        figures = baselines(dm)  # in name order, as they read back from the file
        cache[key] = {"data": cfg.data._target_, "figures": dict(sorted(figures.items()))}
        cache_path.parent.mkdir(parents=True, exist_ok=True)
        cache_path.write_text(json.dumps(cache, indent=2, sort_keys=True) + "\n")
    return cache[key]["figures"]


def summarise() -> dict[str, Any]:
    rows = []
    for row in ROWS:
        runs = [json.loads(p.read_text()) for p in sorted((RESULTS / "runs" / row.experiment)
                                                          .glob("seed*.json"))]
        if not runs:
            continue
        stats = {}
        for name in {*row.metrics, *[k for r in runs for k in r["metrics"]]}:
            values = [r["metrics"][name] for r in runs if r["metrics"].get(name) is not None]
            if values:
                stats[name] = {"mean": statistics.fmean(values), "n": len(values),
                               "std": statistics.stdev(values) if len(values) > 1 else None}
        fit = [r["fit_seconds"] for r in runs]
        rows.append({"experiment": row.experiment, "table": row.table, "label": row.label,
                     "headline": list(row.metrics), "note": row.note, "metrics": stats,
                     "fit_seconds": {"mean": statistics.fmean(fit), "n": len(fit)},
                     "parameters": runs[0]["parameters"], "seeds": [r["seed"] for r in runs],
                     "commits": sorted({r["commit"] for r in runs}),
                     "threads": sorted({r["threads"] for r in runs}),
                     "baselines": baseline_figures(row.experiment)})
    total = sum(json.loads(p.read_text())["wall_seconds"] for p in RESULTS.glob("runs/*/*.json"))
    return {"rows": rows, "seeds": list(SEEDS), "compute_seconds": total,
            "generated_at_commit": commit()}


def fmt(stats: dict[str, Any] | None, percent: bool) -> str:
    if not stats:
        return "-"
    scale, digits = (100, 1) if percent else (1, 3)
    mean = f"{stats['mean'] * scale:.{digits}f}"
    std = f" ± {stats['std'] * scale:.{digits}f}" if stats.get("std") is not None else ""
    return f"{mean}{std}{'%' if percent else ''}"


def metric_label(metric: str) -> str:
    """``test/beam_exact_match`` -> "beam exact match"; other splits are named."""
    split, name = metric.split("/", 1)
    name = name.replace("_", " ")
    return {"test": name, "nanogpt_val": f"{name} on nanoGPT's val split"}.get(split,
                                                                              f"{split} {name}")


def beaten_by_baseline(row: dict[str, Any]) -> bool:
    """Whether the best baseline's figure is at least the neural mean (losses: at most)."""
    head = row["metrics"].get(row["headline"][0])
    if not head or not row["baselines"]:
        return False
    lower_is_better = row["headline"][0].endswith(("loss", "mae", "mse"))
    best = (min if lower_is_better else max)(row["baselines"].values())
    return best <= head["mean"] if lower_is_better else best >= head["mean"]


def table(summary: dict[str, Any], name: str) -> str:
    rows = [r for r in summary["rows"] if r["table"] == name]
    percent = name not in ("language", "regression")
    lines = [f"| model | command | {TABLES[name]} (mean ± std, {len(SEEDS)} seeds) | more | "
             f"baseline, same split | fit time | parameters |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        head, *more = r["headline"]
        extra = [f"{metric_label(m)} {fmt(r['metrics'].get(m), percent)}" for m in more]
        if r["note"]:
            extra.append(r["note"])
        base = ", ".join(f"{k.replace('_', ' ')} {fmt({'mean': v}, percent)}"
                         for k, v in r["baselines"].items())
        if beaten_by_baseline(r):
            base += " (**not beaten**)"
        lines.append(f"| {r['label']} | `experiment={r['experiment']}` | "
                     f"**{fmt(r['metrics'].get(head), percent)}** | {'; '.join(extra)} | {base} | "
                     f"{r['fit_seconds']['mean']:.0f} s | {r['parameters']:,} |")
    return "\n".join(lines)


def rewrite_readme(summary: dict[str, Any]) -> None:
    text = README.read_text()
    for name in TABLES:
        text = splice(text, name, table(summary, name))
    hours = summary["compute_seconds"] / 3600
    line = (f"Every figure: the test split, mean ± standard deviation over seeds "
            f"{', '.join(map(str, summary['seeds']))}, from `make results`, rendered at commit "
            f"{summary['generated_at_commit']} (the commit of each run is in "
            f"`results/results.csv`; {len(summary['rows'])} experiments, "
            f"{hours:.1f} h of compute: each run on 1 CPU thread, 2 at a time on 2 cores). "
            f"Fit time is the mean per seed.")
    text = splice(text, "summary", line)
    README.write_text(text)


def write_summary(summary: dict[str, Any]) -> None:
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "results.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    (RESULTS / "results.md").write_text("\n\n".join(f"### {n}\n\n{table(summary, n)}"
                                                   for n in TABLES) + "\n")
    with open(RESULTS / "results.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["experiment", "metric", "mean", "std", "n", "fit_seconds", "parameters",
                         "commits"])
        for r in summary["rows"]:
            for name, s in sorted(r["metrics"].items()):
                writer.writerow([r["experiment"], name, s["mean"], s["std"], s["n"],
                                 r["fit_seconds"]["mean"], r["parameters"],
                                 " ".join(r["commits"])])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="run experiments whose name contains this")
    parser.add_argument("--force", action="store_true", help="rerun results already stored")
    parser.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    parser.add_argument("--jobs", type=int, default=2, help="runs at a time")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads per run")
    parser.add_argument("--readme-only", action="store_true")
    args = parser.parse_args()

    todo = []
    if not args.readme_only:
        for row in ROWS:
            if args.only not in row.experiment:
                continue
            for seed in SEEDS:
                path, recipe = stored(row.experiment, seed), recipe_hash(row.experiment, seed,
                                                                          args.device)
                done = path.is_file() and json.loads(path.read_text())["recipe"] == recipe
                if args.force or not done:
                    todo.append((row.experiment, seed, recipe))
    print(f"{len(todo)} runs to do", flush=True)
    with futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
        jobs = {pool.submit(run_one, e, s, args.device, args.threads, r): (e, s)
                for e, s, r in todo}
        for job in futures.as_completed(jobs):
            result = job.result()
            path = stored(result["experiment"], result["seed"])
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
            head = next(r.metrics[0] for r in ROWS if r.experiment == result["experiment"])
            print(f"{result['experiment']} seed {result['seed']}: {head} "
                  f"{result['metrics'].get(head)} in {result['wall_seconds']:.0f} s", flush=True)
    summary = summarise()
    write_summary(summary)
    rewrite_readme(summary)
    print(f"wrote {RESULTS / 'results.md'} and the README tables")


if __name__ == "__main__":
    main()

"""Speedruns: wall time to a target on the validation split, Lightning recipe against the plain
PyTorch loop of the same recipe, over seeds; writes results/speedrun.json and the README table.

    python scripts/speedrun.py                                  # every target, seeds 0 1 2
    python scripts/speedrun.py shakespeare --seeds 0 1 2 --nanogpt /path/to/nanoGPT
    python scripts/speedrun.py mnist5k --variant base= --variant compile=model.compile=true \\
        --sides lightning --no-save                             # one change, side by side

Per seed the runs alternate (variant by variant, Lightning then plain), after one short warm-up
run of each; medians and ranges are over seeds. What each side's seconds include is in
``dlbasics.speedrun``'s docstring. ``--nanogpt DIR`` also runs nanoGPT's CPU recipe for Tiny
Shakespeare (a checkout of karpathy/nanoGPT; its data is prepared from the packaged text when
missing) once per seed in the same alternation, timing the whole process.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import platform
import re
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dlbasics.configs import PROJECT_ROOT
from dlbasics.data.chars import packaged_shakespeare
from dlbasics.readme import update
from dlbasics.speedrun import SPEEDRUNS, compose_recipe, run_lightning, run_plain, spread, summarise

NANOGPT_CPU = ["config/train_shakespeare_char.py", "--device=cpu", "--compile=False",
               "--eval_iters=20", "--log_interval=1", "--block_size=64", "--batch_size=12",
               "--n_layer=4", "--n_head=4", "--n_embd=128", "--max_iters=2000",
               "--lr_decay_iters=2000", "--dropout=0.0"]


def prepare_nanogpt(root: Path) -> None:
    """nanoGPT's data/shakespeare_char/prepare.py, from the packaged text instead of a download."""
    folder = root / "data" / "shakespeare_char"
    if (folder / "val.bin").is_file():
        return
    text = packaged_shakespeare()
    chars = sorted(set(text))
    stoi = {c: i for i, c in enumerate(chars)}
    n = len(text)
    folder.mkdir(parents=True, exist_ok=True)
    np.array([stoi[c] for c in text[: int(n * 0.9)]], dtype=np.uint16).tofile(folder / "train.bin")
    np.array([stoi[c] for c in text[int(n * 0.9):]], dtype=np.uint16).tofile(folder / "val.bin")
    with open(folder / "meta.pkl", "wb") as f:
        pickle.dump({"vocab_size": len(chars), "itos": dict(enumerate(chars)), "stoi": stoi}, f)


def run_nanogpt(root: Path, seed: int) -> dict[str, Any]:
    """nanoGPT's CPU recipe (its own seed, 1337, whatever ``seed``): the process's wall time
    (start-up, data, 2,000 iterations and its 9 evaluations of 2 x 20 batches) and its last
    printed val loss."""
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "train.py", *NANOGPT_CPU, "--out_dir=out-speedrun"],
                          cwd=root, capture_output=True, text=True, check=True)
    seconds = time.perf_counter() - start
    evals = re.findall(r"step (\d+): train loss ([\d.]+), val loss ([\d.]+)", proc.stdout)
    return {"side": "nanogpt", "seed": seed, "seconds": round(seconds, 2),
            "step": int(evals[-1][0]), "val": float(evals[-1][2]),
            "evals": [(int(s), float(v)) for s, _, v in evals]}


def warm_up(name: str, sides: list[str], root: Path) -> None:
    """One short run of each side: imports, allocator and caches warm before anything is timed."""
    short = ["trainer.max_steps=10", "trainer.max_epochs=1", "callbacks.stop_at_target.target=null"]
    if "lightning" in sides:
        run_lightning(SPEEDRUNS[name], 0, short, root)
    if "plain" in sides:
        from dlbasics import plain

        plain.fit(compose_recipe([*SPEEDRUNS[name].recipe, *short], root), test=False)


def fmt(s: dict[str, float] | None, scale: float = 1.0, digits: int = 1, unit: str = "") -> str:
    if not s:
        return "not reached"
    m, lo, hi = (s[k] * scale for k in ("median", "min", "max"))
    return f"{m:.{digits}f}{unit} ({lo:.{digits}f}-{hi:.{digits}f})"


def table(results: dict[str, Any]) -> str:
    """The README table, from the JSON the runs wrote (the ``recipe`` variant of each target)."""
    rows = ["| target (validation split) | recipe | time to target, s: median (range) | "
            "steps | test figure at that point | plain loop, s | Lightning / plain |",
            "|---|---|---|---|---|---|---|"]
    for name, entry in results.get("targets", {}).items():
        variant = entry["variants"].get("recipe")
        if not variant:
            continue
        s, run = variant["summary"], SPEEDRUNS[name]
        light, ref = s.get("lightning", {}), s.get("plain", {})
        is_acc = run.monitor.endswith("acc")
        target = (f"{run.monitor} >= {100 * run.target:.1f}%" if is_acc
                  else f"{run.monitor} <= {run.target}")
        test = test_cell(light, is_acc)
        ratio = f"{s['ratio']:.2f}x" if "ratio" in s else "-"
        rows.append(f"| {name}: {target} | `{' '.join(entry['recipe'])}` | "
                    f"{fmt(light.get('seconds'))}, {light.get('reached', '?')} seeds | "
                    f"{fmt(light.get('steps'), digits=0)} | {test} | "
                    f"{fmt(ref.get('seconds'))} | {ratio} |")
    for name, entry in results.get("targets", {}).items():
        if entry.get("nanogpt") and entry["variants"].get("recipe"):
            ng = entry["nanogpt"]
            light = entry["variants"]["recipe"]["summary"].get("lightning", {}).get("seconds")
            versus = (f" The recipe reaches its loss in {light['median'] / ng['seconds']['median']:.2f}x "
                      f"that time (medians; goal: at most 0.5x)." if light else "")
            rows.append(f"\nnanoGPT's CPU recipe in the same invocation as {name}: "
                        f"{fmt(ng['seconds'])} s for 2,000 iterations (printed val loss "
                        f"{fmt(ng['val'], digits=3)}).{versus}")
    groups = [(name, group) for name, entry in results.get("targets", {}).items()
              for group in entry.get("options", [])]
    if groups:
        rows += ["", "Options, Lightning side only, against the first variant of the same "
                 "invocation:", "", "| target | variant | overrides | time to target, s: median "
                 "(range) | test figure at that point | time / first variant |",
                 "|---|---|---|---|---|---|"]
    for name, group in groups:
        is_acc = SPEEDRUNS[name].monitor.endswith("acc")
        base: float | None = None
        for i, (vname, variant) in enumerate(group["variants"].items()):
            light = variant["summary"].get("lightning", {})
            seconds = (light.get("seconds") or {}).get("median")
            if i == 0:
                base = seconds
            test = test_cell(light, is_acc)
            rows.append(f"| {name} | {vname} | `{' '.join(variant['overrides']) or '-'}` | "
                        f"{fmt(light.get('seconds'))}, {light.get('reached', '?')} seeds | {test} "
                        f"| {f'{seconds / base:.2f}x' if seconds and base else '-'} |")
    measured = [(name, entry) for name, entry in results.get("targets", {}).items()
                if entry["variants"].get("recipe")]
    measured += [(f"{name} options", group) for name, group in groups]
    rows.append("\nMeasured by " + "; ".join(
        f"{name}: `{entry.get('command', '?')}` ({measured_on(entry.get('environment', {}))})"
        for name, entry in measured) + ".")
    return "\n".join(rows)


def test_cell(light: dict[str, Any], is_acc: bool) -> str:
    """The test figure at the stopping point (and, for losses, on nanoGPT's val split)."""
    if is_acc:
        return fmt(light.get("test"), 100, 1, "%")
    return (f"test {fmt(light.get('test'), 1, 3)}; val+test "
            f"{fmt(light.get('whole_val_loss'), 1, 3)}")


def nanogpt_summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {"runs": runs, "seconds": spread([r["seconds"] for r in runs]),
            "val": spread([r["val"] for r in runs])}


def measured_on(env: dict[str, Any]) -> str:
    return (f"{env.get('date', '?')}; torch {env.get('torch', '?')}, {env.get('threads', '?')} "
            f"threads, {env.get('machine', '?')}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("targets", nargs="*", default=list(SPEEDRUNS), choices=[[], *SPEEDRUNS],
                        metavar="TARGET", help=f"of {', '.join(SPEEDRUNS)} (default: all)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--sides", nargs="+", default=["lightning", "plain"],
                        choices=["lightning", "plain"])
    parser.add_argument("--variant", action="append", default=[],
                        help="NAME=override,override (repeatable; default: recipe=)")
    parser.add_argument("--nanogpt", type=Path, help="a nanoGPT checkout: also run its CPU recipe")
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "results" / "speedrun.json")
    parser.add_argument("--readme", type=Path, default=PROJECT_ROOT / "README.md")
    parser.add_argument("--no-save", action="store_true", help="print only")
    parser.add_argument("--no-warm-up", action="store_true")
    args = parser.parse_args()
    if any("=" not in v for v in args.variant):
        parser.error("--variant takes NAME=override,override (NAME= for the recipe as it is)")
    names = [v.split("=", 1)[0] for v in args.variant]
    if len(set(names)) < len(names):
        parser.error(f"--variant names must differ: {', '.join(names)}")
    variants = dict(v.split("=", 1) for v in args.variant) or {"recipe": ""}
    variants = {k: [o for o in v.split(",") if o] for k, v in variants.items()}
    if args.nanogpt:
        prepare_nanogpt(args.nanogpt)

    results: dict[str, Any] = (json.loads(args.out.read_text())
                               if args.out.is_file() and not args.no_save else {})
    results.setdefault("targets", {})
    root = Path(tempfile.mkdtemp(prefix="speedrun-"))
    nanogpt: list[dict[str, Any]] = []
    command = shlex.join(["python", "scripts/speedrun.py", *sys.argv[1:]])
    environment = {"date": time.strftime("%Y-%m-%d"), "torch": torch.__version__,
                   "threads": torch.get_num_threads(), "cpus": os.cpu_count(),
                   "machine": platform.processor() or platform.machine()}
    for name in args.targets:
        run = SPEEDRUNS[name]
        if not args.no_warm_up:
            warm_up(name, args.sides, root)
        runs: dict[str, list[dict[str, Any]]] = {v: [] for v in variants}
        for seed in args.seeds:
            if args.nanogpt and name == "shakespeare":
                nanogpt.append(run_nanogpt(args.nanogpt, seed))
                print(f"[nanogpt] {nanogpt[-1]['seconds']} s, val {nanogpt[-1]['val']}",
                      flush=True)
            for vname, extra in variants.items():
                for side in args.sides:
                    fn = run_lightning if side == "lightning" else run_plain
                    r = fn(run, seed, extra, root)
                    r["variant"] = vname
                    runs[vname].append(r)
                    print(f"[{name} {vname} {side} seed {seed}] reached={r['reached']} "
                          f"seconds={r['seconds']} step={r['step']} test={r['test']}", flush=True)
        entry = results["targets"].setdefault(name, {"variants": {}})
        entry.update(recipe=list(run.recipe), monitor=run.monitor, target=run.target,
                     mode=run.mode, goal=run.goal)
        measured = {"command": command,
                    "environment": {**environment, "load_average": os.getloadavg()}}
        if variants == {"recipe": []}:  # the table's row
            entry.update(measured)
            into = entry["variants"]
            entry.pop("nanogpt", None)
            if nanogpt and name == "shakespeare":
                entry["nanogpt"] = nanogpt_summary(nanogpt)
        else:  # an options comparison, kept apart: one group per set of variant names
            group = {**measured, "variants": {}}
            entry["options"] = [g for g in entry.get("options", [])
                                if list(g["variants"]) != list(variants)] + [group]
            into = group["variants"]
        base = None
        for i, (vname, rs) in enumerate(runs.items()):
            summary = summarise(rs, run.test_metric)
            into[vname] = {"overrides": variants[vname], "runs": rs, "summary": summary}
            light = (summary.get("lightning") or summary.get("plain") or {}).get("seconds")
            if i == 0:  # the first variant is the reference, reached or not
                base = light["median"] if light else None
            print(f"{name} / {vname}: " + json.dumps(summary, default=str))
            if light and base:
                print(f"  time to target {light['median']:.1f} s median, "
                      f"{light['median'] / base:.2f}x the first variant")
    print(table(results))
    if not args.no_save:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=1, default=str))
        update(args.readme, "speedrun", table(results))
        print(f"wrote {args.out} and the table in {args.readme}")


if __name__ == "__main__":
    main()

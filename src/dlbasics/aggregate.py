"""Turn a multirun folder into a table: ``python -m dlbasics.aggregate <multirun folder>``.

Jobs are grouped by their overrides without ``seed`` and ``data.fold`` (so ``-m seed=1,2,3`` or
``data.fold=0,1,2,3,4`` repeats of one setting form one row); each row gives the mean, standard
deviation (over the jobs, ddof=1) and count of every test and validation metric, and the mean
fit time. Failed jobs are listed, not averaged. Writes ``jobs.csv`` (one row per job: the trial
table of a search) and ``aggregate.{csv,md,json}`` into the folder.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from dlbasics.errors import UserError

REPEATS = ("seed", "data.fold")  # overrides that only repeat a setting
REPORTED = ("test/", "val/")
STATS = ("mean", "std", "count")  # of every reported metric over the jobs of a setting


@dataclass
class Job:
    name: str
    overrides: list[str]
    metrics: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    @property
    def failed(self) -> bool:
        return self.error is not None or str(self.metrics.get("status", "")).startswith("failed")

    @property
    def setting(self) -> str:
        """The overrides that define what was run, without the repeats."""
        kept = [o for o in self.overrides if o.lstrip("+").split("=", 1)[0] not in REPEATS]
        return " ".join(kept) or "(defaults)"


def collect(folder: Path) -> list[Job]:
    """Every job of a multirun folder (a sub-folder with ``.hydra/overrides.yaml``)."""
    if not folder.is_dir():
        raise UserError(f"{folder} is not a folder: give a multirun folder "
                        f"(outputs/train/multirun/<date>/<time>-<id>)")
    jobs = []
    for sub in sorted((p for p in folder.iterdir() if (p / ".hydra" / "overrides.yaml").is_file()),
                      key=lambda p: (len(p.name), p.name)):
        overrides = [str(o) for o in OmegaConf.load(sub / ".hydra" / "overrides.yaml")]
        metrics = json.loads((sub / "metrics.json").read_text()) if (sub / "metrics.json").is_file() else {}
        error = (sub / "error.txt").read_text().strip() if (sub / "error.txt").is_file() else None
        if not metrics and error is None:
            error = "no metrics.json: the job did not finish"
        jobs.append(Job(sub.name, overrides, metrics, error))
    if not jobs:
        raise UserError(f"{folder} holds no jobs (sub-folders with .hydra/overrides.yaml): give "
                        f"the folder a multirun printed, e.g. outputs/train/multirun/<date>/<time>")
    return jobs


def summarise(jobs: list[Job]) -> list[dict[str, Any]]:
    """One row per setting: n, and mean/std/count of every reported metric (finished jobs)."""
    rows: dict[str, dict[str, Any]] = {}
    for job in jobs:
        row = rows.setdefault(job.setting, {"setting": job.setting, "n": 0, "failed": [],
                                            "_values": {}})
        if job.failed:
            row["failed"].append(job.name)
            continue
        row["n"] += 1
        for key, value in job.metrics.items():
            reported = key.startswith(REPORTED) or key == "fit_seconds"
            if reported and isinstance(value, int | float) and math.isfinite(value):
                row["_values"].setdefault(key, []).append(float(value))
    for row in rows.values():
        for key, values in sorted(row.pop("_values").items()):
            row[key] = {"mean": statistics.fmean(values),
                        "std": statistics.stdev(values) if len(values) > 1 else None,
                        "count": len(values)}
    return list(rows.values())


def _cell(stats: dict[str, Any] | None) -> str:
    if not stats:
        return ""
    mean, std = stats["mean"], stats["std"]
    return f"{mean:.4g}" + (f" ± {std:.2g}" if std is not None else "")


def write_tables(folder: Path, jobs: list[Job], rows: list[dict[str, Any]]) -> list[Path]:
    averaged = [*sorted({k for r in rows for k in r if "/" in k}), "fit_seconds"]
    columns = ["setting", "n", *averaged, "failed"]
    with open(folder / "jobs.csv", "w", newline="") as f:
        keys = sorted({k for j in jobs for k in j.metrics})
        writer = csv.writer(f)
        writer.writerow(["job", "overrides", "status", *keys])
        for j in jobs:
            status = "failed: " + j.error if j.error else j.metrics.get("status", "")
            writer.writerow([j.name, " ".join(j.overrides), status,
                             *[j.metrics.get(k, "") for k in keys]])
    with open(folder / "aggregate.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["setting", "n", "failed", *(f"{m} {s}" for m in averaged for s in STATS)])
        for r in rows:
            writer.writerow([r["setting"], r["n"], " ".join(r["failed"]),
                             *((r.get(m) or {}).get(s, "") for m in averaged for s in STATS)])
    shared = set.intersection(*(set(r["setting"].split()) for r in rows))
    lines = [f"Every job: `{' '.join(o for o in rows[0]['setting'].split() if o in shared)}`", ""]
    lines += ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for r in rows:
        own = " ".join(o for o in r["setting"].split() if o not in shared) or "(as above)"
        cells = [f"`{own}`", str(r["n"]), *[_cell(r.get(m)) for m in averaged], ", ".join(r["failed"])]
        lines.append("| " + " | ".join(cells) + " |")
    (folder / "aggregate.md").write_text("\n".join(lines) + "\n")
    (folder / "aggregate.json").write_text(json.dumps(rows, indent=2) + "\n")
    return [folder / n for n in ("jobs.csv", "aggregate.csv", "aggregate.md", "aggregate.json")]


def aggregate(folder: str | Path) -> list[dict[str, Any]]:
    folder = Path(folder).expanduser()
    jobs = collect(folder)
    rows = summarise(jobs)
    write_tables(folder, jobs, rows)
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m dlbasics.aggregate",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("folder", help="a multirun folder (outputs/train/multirun/<date>/<time>)")
    args = parser.parse_args(argv)
    try:
        rows = aggregate(args.folder)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    print((Path(args.folder) / "aggregate.md").read_text(), end="")
    failed = [name for r in rows for name in r["failed"]]
    if failed:
        print(f"failed jobs (not averaged): {', '.join(failed)}", file=sys.stderr)


if __name__ == "__main__":
    main()

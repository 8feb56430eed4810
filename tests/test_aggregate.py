"""``dlbasics.aggregate`` on a real multirun: three seeds of two settings and a job that fails."""

from __future__ import annotations

import json
import statistics

from dlbasics.aggregate import aggregate
from tests.clirun import FAST, call


def test_seeds_become_mean_and_std_and_failures_are_listed(tmp_path, monkeypatch):
    monkeypatch.setenv("DLBASICS_LOG_DIR", str(tmp_path))
    code, _, err = call("dlbasics.train", "-m", "model=mlp", "data=digits", "seed=1,2,3",
                        "optimizer=sgd", "scheduler=none", "optimizer.lr=0.05,1e9",
                        "trainer.max_epochs=2", "logger=none", *FAST)
    assert code == 1 and "3 of 6 jobs failed" in err  # lr=1e9 diverges for every seed
    (sweep,) = (tmp_path / "train" / "multirun").glob("*/*")
    assert (sweep / "aggregate.md").is_file() and (sweep / "jobs.csv").is_file()  # at the end
    rows = aggregate(sweep)
    by_lr = {r["setting"].split("optimizer.lr=")[1].split()[0]: r for r in rows}
    good, bad = by_lr["0.05"], by_lr["1000000000.0"]
    assert good["n"] == 3 and good["failed"] == [] and bad["n"] == 0 and len(bad["failed"]) == 3
    accs = []
    for job in sweep.iterdir():
        overrides = (job / ".hydra" / "overrides.yaml").read_text() if job.is_dir() else ""
        if "optimizer.lr=0.05" in overrides:
            accs.append(json.loads((job / "metrics.json").read_text())["test/acc"])
    stats = good["test/acc"]
    assert stats["count"] == 3
    assert abs(stats["mean"] - statistics.fmean(accs)) < 1e-12
    assert abs(stats["std"] - statistics.stdev(accs)) < 1e-12
    assert "test/acc" not in bad  # failed jobs are not averaged
    table = (sweep / "aggregate.md").read_text()
    assert f"{stats['mean']:.4g} ± {stats['std']:.2g}" in table
    assert all(name in table for name in bad["failed"])


def test_a_folder_without_jobs_is_one_clear_line(tmp_path):
    code, _, err = call("dlbasics.aggregate", str(tmp_path))
    assert code == 2 and err.startswith("error: ") and "holds no jobs" in err

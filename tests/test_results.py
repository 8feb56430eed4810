"""The README's results tables are exactly what ``make results`` renders from
``results/results.json`` (no number typed by hand), and every row is a test-split figure over
the seeds of its recipe."""

from __future__ import annotations

import json

from dlbasics.configs import PROJECT_ROOT, choices
from dlbasics.readme import block
from tests.clirun import load_script

results = load_script("results")


def test_readme_tables_are_the_rendered_results():
    summary = json.loads((PROJECT_ROOT / "results" / "results.json").read_text())
    readme = (PROJECT_ROOT / "README.md").read_text()
    for name in results.TABLES:
        assert block(readme, name) == results.table(summary, name), name


def test_every_row_is_a_known_experiment_with_test_figures():
    summary = json.loads((PROJECT_ROOT / "results" / "results.json").read_text())
    experiments = set(choices("experiment"))
    for row in summary["rows"]:
        assert row["experiment"] in experiments
        head = row["headline"][0]
        assert head.startswith("test/") and row["metrics"][head]["n"] == len(row["seeds"])
        runs = [json.loads((PROJECT_ROOT / "results" / "runs" / row["experiment"] /
                            f"seed{s}.json").read_text()) for s in row["seeds"]]
        assert all(r["status"] in ("finished",) or r["status"].startswith("stopped early")
                   for r in runs)
        values = [r["metrics"][head] for r in runs]
        assert abs(row["metrics"][head]["mean"] - sum(values) / len(values)) < 1e-12


def test_readme_transfer_table_is_the_rendered_experiment():
    transfer = load_script("transfer")
    result = json.loads((PROJECT_ROOT / "results" / "transfer.json").read_text())
    rendered = transfer.render(result)
    assert block((PROJECT_ROOT / "README.md").read_text(), "transfer") == rendered
    assert (PROJECT_ROOT / "results" / "transfer.md").read_text().strip() == rendered
    sizes = {r["train_size"] for r in result["runs"]}
    assert sizes == {50, 100, 500} and len({r["seed"] for r in result["runs"]}) == 3

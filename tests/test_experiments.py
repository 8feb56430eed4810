"""Every experiment config (the recipes behind the README's numbers) runs end to end under
``trainer.fast_dev_run=true``, in one multirun over ``experiment=glob(*)``."""

from __future__ import annotations

import json
import math

from dlbasics.configs import choices
from tests.clirun import FAST, metrics_files, run_here


def test_every_experiment_runs_in_one_multirun(tmp_path):
    proc = run_here("dlbasics.train", "-m", "experiment=glob(*)", "trainer.fast_dev_run=true",
                    "logger=none", "print_config=false", "data.eval_batch_size=16",
                    "data.batch_size=8", "callbacks.plots=null", *FAST, log_dir=tmp_path)
    files = metrics_files(tmp_path)
    ran = {}
    for f in files:
        overrides = (f.parent / ".hydra" / "overrides.yaml").read_text()
        name = next(line.split("=", 1)[1] for line in overrides.splitlines()
                    if "experiment=" in line).strip()
        ran[name] = json.loads(f.read_text())
    assert set(ran) == set(choices("experiment")), proc.stderr[-2000:]
    for name, metrics in ran.items():
        assert metrics["global_step"] == 1, name
        tests = {k: v for k, v in metrics.items() if k.startswith("test/")}
        assert "test/loss" in tests and all(math.isfinite(v) for v in tests.values()), name

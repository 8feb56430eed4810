"""Cluster launch through Hydra's submitit launcher: ``hydra/launcher=local`` runs the jobs as
local processes (the path SLURM jobs take), and ``hydra/launcher=slurm`` renders its job script
from the config without a cluster (the ``sbatch`` call is intercepted)."""

from __future__ import annotations

import json
import os

import pytest
import submitit.slurm.slurm as slurm
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from dlbasics.configs import CONF_DIR
from tests.clirun import FAST, metrics_files, run


@pytest.mark.slow  # ~40 s of process start-ups; the SLURM rendering below stays fast
def test_local_launcher_runs_two_jobs_as_processes(tmp_path):
    run("dlbasics.train", "-m", "hydra/launcher=local", "model=mlp", "data=digits", "seed=1,2",
        "trainer.fast_dev_run=true", "logger=none", *FAST, log_dir=tmp_path)
    files = metrics_files(tmp_path)
    assert len(files) == 2
    assert all(json.loads(f.read_text())["status"] == "finished" for f in files)
    assert list(tmp_path.rglob(".submitit"))  # submitit's own job folder


class Submitted(Exception):
    pass


def test_slurm_launcher_renders_one_ddp_job_per_sweep_point(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"  # submitit looks for srun, as on a login node
    bin_dir.mkdir()
    (bin_dir / "srun").write_text("#!/bin/sh\nexit 0\n")
    (bin_dir / "srun").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("train", overrides=[
            "hydra/launcher=slurm", "hydra.launcher.partition=gpu",
            "hydra.launcher.gpus_per_node=4", "hydra.launcher.timeout_min=120", "trainer=ddp",
            "trainer.devices=4", "hydra.job.name=train", f"hydra.sweep.dir={tmp_path}"],
            return_hydra_config=True)
    launcher = instantiate(cfg.hydra.launcher)
    launcher.setup(hydra_context=None, task_function=lambda c: None, config=cfg)
    scripts = []

    def submit(self, command):
        scripts.append(self._make_submission_file_text(command, "uid"))
        raise Submitted

    monkeypatch.setattr(slurm.SlurmExecutor, "_submit_command", submit)
    with pytest.raises(Submitted):
        launcher.launch([["seed=1"], ["seed=2"], ["seed=3"]], initial_job_idx=0)
    (script,) = scripts
    for line in ("#SBATCH --partition=gpu", "#SBATCH --gpus-per-node=4",
                 "#SBATCH --ntasks-per-node=4", "#SBATCH --cpus-per-task=8",
                 "#SBATCH --mem=32GB", "#SBATCH --time=120", "#SBATCH --array=0-2%3",
                 "#SBATCH --nodes=1", "-m submitit.core._submit"):
        assert line in script, script
    assert cfg.trainer.devices == 4 and cfg.trainer.strategy == "ddp"

"""The run folder: never reused by accident, resumable as a whole, and a record of how it ran.

- ``check_command_line``: before Hydra creates a folder, refuse an explicit ``hydra.run.dir``
  (or ``hydra.sweep.dir``) that already holds a run, unless ``existing_run_dir=version`` (then a
  fresh ``<dir>-v2``, ``-v3``, ... is used); turn ``resume=<run folder>`` into that folder.
  ``resume=`` composes the folder's saved config with the overrides that may change on resume
  (trainer, callbacks, logger, test); an override of the model, data, optimizer, scheduler,
  module options or seed is refused.
- ``write_record``: config, data spec, git commit, versions, seed and hardware, in the folder.
- ``best_checkpoint``: the best checkpoint of *this* folder, never a path read from a file.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from dlbasics.checkpoint import newest_checkpoint
from dlbasics.configs import PROJECT_ROOT, RUNTIME_MODEL_KEYS
from dlbasics.errors import UserError
from dlbasics.spec import DataSpec

RESUMABLE = ("trainer.", "callbacks.", "logger.", "test=", "hydra.", "hydra/",
             "optimized_metric=")


def _holds_run(folder: Path) -> bool:
    return any((folder / name).exists() for name in (".hydra", "metrics.json", "checkpoints",
                                                     "multirun.yaml"))


def _value(argv: list[str], key: str) -> str | None:
    return next((a.split("=", 1)[1] for a in argv if a.startswith(key + "=")), None)


def check_command_line(argv: list[str]) -> list[str]:
    """Check and rewrite a train command line before Hydra reads it (see the module docstring)."""
    if os.environ.get("LOCAL_RANK", "0") != "0" or "--help" in argv or "--cfg" in argv:
        return argv  # a DDP worker started by Lightning runs rank 0's (checked) command
    resume = _value(argv, "resume")
    if resume:
        return _resume_command_line(resume, argv)
    for key in ("hydra.run.dir", "hydra.sweep.dir"):
        given = _value(argv, key)
        if not given or "${" in given or not _holds_run(Path(given).expanduser()):
            continue
        if _value(argv, "existing_run_dir") != "version":
            raise UserError(f"{key}={given} already holds a run: choose another folder, "
                            f"continue it with resume={given}, or add existing_run_dir=version "
                            f"to write to {given}-v2 instead")
        version = next(v for v in range(2, 10_000) if not _holds_run(Path(f"{given}-v{v}")))
        argv = [a for a in argv if not a.startswith(key + "=")] + [f"{key}={given}-v{version}"]
    return argv


def _resume_command_line(resume: str, argv: list[str]) -> list[str]:
    """Compose the run folder's saved config (``.hydra/config.yaml``) with the overrides that
    may change, in that folder, from its newest checkpoint."""
    folder = Path(resume).expanduser().resolve()
    if not (folder / ".hydra" / "config.yaml").is_file():
        raise UserError(f"resume={resume} is not a run folder (no .hydra/config.yaml): give "
                        f"the folder a training run printed as 'run folder: ...'")
    newest = newest_checkpoint(folder)
    if newest is None:
        raise UserError(f"resume={resume} holds no checkpoint yet (checkpoints/*.ckpt): "
                        f"start the run again instead")
    kept = [a for a in argv if not a.startswith(("resume=", "hydra.run.dir=",
                                                 "hydra.output_subdir="))]
    refused = [a for a in kept if not a.lstrip("+~").startswith(RESUMABLE)]
    if refused:
        raise UserError(f"resume={resume} continues the saved run, so {refused[0]} cannot "
                        f"change (only trainer.*, callbacks.*, logger.* and test may): start a "
                        f"new run to change the model, data or optimizer")
    n = 1 + sum(1 for _ in (folder / ".hydra").glob("resume-*"))
    return ["--config-path", str(folder / ".hydra"), "--config-name", "config", *kept,
            f"++resume={folder}", f"++ckpt_path={newest}", f"hydra.run.dir={folder}",
            f"hydra.output_subdir=.hydra/resume-{n}"]


def saved_choices(run_dir: Path) -> dict[str, Any]:
    """The config groups a run folder's run was composed from (``model=...``, ``data=...``)."""
    hydra_yaml = run_dir / ".hydra" / "hydra.yaml"
    if not hydra_yaml.is_file():
        return {}
    return OmegaConf.to_container(OmegaConf.load(hydra_yaml).hydra.runtime.choices)  # type: ignore[return-value]


RUNTIME_DATA_KEYS = {"data_dir", "num_workers", "pin_memory", "eval_batch_size", "download"}


def check_fits(ckpt_path: str, saved: dict[str, Any], cfg: DictConfig) -> None:
    """Refuse to resume a checkpoint whose model, data or optimizer settings differ from the
    configured ones, naming both (before a state dict fails to load, or loads wrongly)."""
    now: dict[str, Any] = OmegaConf.to_container(cfg, resolve=True)  # type: ignore[assignment]
    for section in ("model", "data", "optimizer"):
        old, new = saved.get(section) or {}, now.get(section) or {}
        runtime = {"data": RUNTIME_DATA_KEYS, "model": RUNTIME_MODEL_KEYS}.get(section, ())
        diff = sorted(k for k in (old.keys() | new.keys()) - set(runtime) if old.get(k) != new.get(k))
        if not diff:
            continue
        choice_then = (saved.get("choices") or {}).get(section, old.get("_target_"))
        choice_now = (now.get("choices") or {}).get(section, new.get("_target_"))
        then = ", ".join(f"{k}={old.get(k)!r}" for k in diff[:3])
        asked = ", ".join(f"{k}={new.get(k)!r}" for k in diff[:3])
        raise UserError(f"ckpt_path={ckpt_path} was trained with {section}={choice_then} "
                        f"({then}), not {section}={choice_now} ({asked}): resume with the same "
                        f"{section} settings, or start a new run from its weights with "
                        f"finetune.ckpt_path={ckpt_path}")


def best_checkpoint(trainer: Any, run_dir: Path) -> str | None:
    """The best checkpoint inside this run's ``checkpoints/``: the checkpoint callback's, when it
    points there, else the one ``epoch*.ckpt`` the folder keeps; None to test the last weights."""
    folder = (run_dir / "checkpoints").resolve()
    best = getattr(trainer.checkpoint_callback, "best_model_path", "") or ""
    if best and Path(best).resolve().parent == folder and Path(best).is_file():
        return str(Path(best).resolve())
    kept = sorted(folder.glob("epoch*.ckpt"))
    return str(kept[-1]) if len(kept) == 1 else None


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=PROJECT_ROOT, capture_output=True, text=True,
                             timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def write_record(run_dir: Path, cfg: DictConfig, spec: DataSpec, trainer: Any,
                 sizes: dict[str, int]) -> Path:
    """``run.json``: what a reader needs to reproduce the run."""
    import hydra
    import lightning

    status = _git("status", "--porcelain", "--untracked-files=no")
    record = {
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "seed": cfg.seed,
        "tags": list(cfg.get("tags") or []),
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty": None if status is None else bool(status),
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "lightning": lightning.__version__, "hydra": hydra.__version__},
        "hardware": {"machine": platform.machine(), "processor": platform.processor(),
                     "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                     "accelerator": type(trainer.accelerator).__name__,
                     "devices": trainer.num_devices, "world_size": trainer.world_size,
                     "cuda": [torch.cuda.get_device_name(i)
                              for i in range(torch.cuda.device_count())]},
        "spec": {k: v for k, v in spec.to_dict().items() if k not in ("vocab", "tgt_vocab")},
        "sizes": sizes,  # examples per split (windows for a character corpus)
        "config": OmegaConf.to_container(cfg, resolve=True),
    }
    path = run_dir / "run.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2, default=str) + "\n")
    return path

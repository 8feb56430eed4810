"""What every command-line entry point shares: Hydra's main, resolvers, one-line user errors.

``entry_point("train")`` turns ``run(cfg)`` into a Hydra main reading ``conf/train.yaml``. Any
mistake a user can make ends with one ``error: ...`` line on stderr and exit code 2, no traceback:
a ``UserError`` raised by dlbasics, a bad override caught at instantiation, and Hydra's own
composition errors (unknown choice, bad key, run folder that cannot be created). In a multirun a
failing job does not end the sweep: its error goes to ``error.txt`` (and ``traceback.txt``) in
its folder, the sweeper gets NaN, and ``SweepReport`` lists the failures at the end (exit 1).
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import sys
import traceback
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import hydra
import hydra._internal.utils as hydra_utils
from hydra.core.hydra_config import HydraConfig
from hydra.errors import HydraException, InstantiationException
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from dlbasics.configs import CONF_DIR, PROJECT_ROOT
from dlbasics.errors import UserError
from dlbasics.validation import validate_config


def register_resolvers() -> None:
    """``${uid:}`` makes run folders unique (two runs in one second never share one);
    ``${project_root:}`` lets every entry point work from any working directory."""
    if not OmegaConf.has_resolver("uid"):
        OmegaConf.register_new_resolver("uid", lambda: uuid.uuid4().hex[:6], use_cache=True)
    if not OmegaConf.has_resolver("project_root"):
        OmegaConf.register_new_resolver("project_root", lambda: str(PROJECT_ROOT))


register_resolvers()


def fail(message: str) -> None:
    print(f"error: {message}", file=sys.stderr, flush=True)
    sys.exit(2)


def user_message(err: BaseException) -> str | None:
    """The one-line message of a mistake the user can fix, or None for anything else (a bug)."""
    if isinstance(err, UserError):
        return str(err)
    if isinstance(err, InstantiationException):  # a class named by the config refused its values
        cause = err.__cause__ or err
        first = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
        if isinstance(cause, UserError):
            return first
        return (f"{first}. Check the overrides you gave (e.g. `model.hidden=128`), print the "
                f"composed config with `--cfg job`, or see the traceback with HYDRA_FULL_ERROR=1.")
    return None


def _in_multirun() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def _record_failure(message: str) -> float:
    """A failed multirun job: its error in its own folder, NaN for the sweeper."""
    folder = Path(HydraConfig.get().runtime.output_dir)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "error.txt").write_text(message + "\n")
    (folder / "traceback.txt").write_text(traceback.format_exc())
    print(f"error: {message}", file=sys.stderr, flush=True)
    return float("nan")


def _one_line(err: BaseException) -> str:
    """Hydra's multi-line composition errors, as one line."""
    text = str(err).split("Config search path")[0]  # Hydra appends every folder it searched
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    cause = err.__cause__
    if isinstance(cause, OmegaConfBaseException) and str(cause).strip():
        lines.append(str(cause).strip().splitlines()[0])
    return " ".join(dict.fromkeys(lines)) or type(err).__name__


def _hydra_errors_in_one_line(run_and_report: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def report(func: Any) -> Any:
        def guarded() -> Any:
            try:
                return func()
            except (HydraException, OmegaConfBaseException) as err:
                if os.environ.get("HYDRA_FULL_ERROR") == "1":
                    raise
                fail(_one_line(err) + " (print the composed config with --cfg job)")
            except OSError as err:  # the run folder could not be created
                if err.filename is None or _raised_in(err, "/dlbasics/"):
                    raise
                fail(f"could not create {err.filename} ({err.strerror}): set DLBASICS_LOG_DIR "
                     f"or hydra.run.dir to a folder you can write to")
            except RuntimeError as err:  # a cluster launcher that cannot submit from here
                if not _raised_in(err, "/submitit/"):
                    raise
                fail(f"the SLURM launcher could not submit ({str(err).splitlines()[0]}): run "
                     f"from a SLURM login node, or use hydra/launcher=local on this machine")
        return run_and_report(guarded)

    return report


def _raised_in(err: BaseException, package: str) -> bool:
    """Whether a frame of ``package`` (a path part such as ``/submitit/``) raised ``err``."""
    tb = err.__traceback__
    while tb is not None:
        if package in tb.tb_frame.f_code.co_filename and tb.tb_frame.f_code.co_name != "guarded":
            return True
        tb = tb.tb_next
    return False


def entry_point(config_name: str, prepare_argv: Callable[[list[str]], list[str]] | None = None,
                checkpoint_usage: str | None = None
                ) -> Callable[[Callable[[DictConfig], Any]], Callable[[], Any]]:
    """Decorate ``run(cfg)`` into the Hydra main of ``conf/<config_name>.yaml``.

    ``prepare_argv`` may check and rewrite the command line before Hydra reads it (it may raise
    ``UserError``). ``checkpoint_usage``: the entry point starts from ``ckpt_path``; its config
    is checked and a missing ``ckpt_path`` fails with ``give the checkpoint <usage>``.
    """

    def wrap(run: Callable[[DictConfig], Any]) -> Callable[[], Any]:
        @hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name=config_name)
        @functools.wraps(run)
        def task(cfg: DictConfig) -> Any:
            try:
                if checkpoint_usage is not None:
                    validate_config(cfg)
                    if not cfg.get("ckpt_path"):
                        raise UserError(f"give the checkpoint {checkpoint_usage}")
                return run(cfg)
            except Exception as err:
                message = user_message(err)
                if _in_multirun():  # the other jobs go on
                    return _record_failure(message or f"{type(err).__name__}: {err}")
                if message is None:
                    raise
                fail(message)

        @functools.wraps(run)
        def main() -> Any:
            if prepare_argv is not None:
                try:
                    sys.argv[1:] = prepare_argv(sys.argv[1:])
                except UserError as err:
                    fail(str(err))
            original = hydra_utils.run_and_report
            hydra_utils.run_and_report = _hydra_errors_in_one_line(original)
            try:
                return task()
            finally:
                hydra_utils.run_and_report = original

        return main

    return wrap


class SweepReport(Callback):
    """At the end of a multirun: the job table and the aggregate over seeds/folds in the sweep
    folder (``dlbasics.aggregate``), then the jobs that failed, each with its error (exit 1)."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        Path(config.hydra.sweep.dir).mkdir(parents=True, exist_ok=True)  # e.g. for a study's db

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from dlbasics.aggregate import aggregate

        sweep = Path(config.hydra.sweep.dir)
        with contextlib.suppress(UserError):  # no finished job folder: nothing to tabulate
            aggregate(sweep)
        failed = sorted(sweep.glob("*/error.txt"), key=lambda p: p.parent.name)
        if not failed:
            return
        jobs = {p.name: OmegaConf.load(p / ".hydra" / "overrides.yaml") for p in sweep.iterdir()
                if (p / ".hydra" / "overrides.yaml").is_file()}
        shared = set.intersection(*(set(o) for o in jobs.values())) if jobs else set()
        lines = [f"{len(failed)} of {len(jobs)} jobs failed (the others finished):"]
        for path in failed:
            args = " ".join(o for o in jobs.get(path.parent.name, []) if o not in shared)
            lines.append(f"  job {path.parent.name} ({args}): {path.read_text().strip()}")
        lines.append(f"tracebacks: {sweep}/<job>/traceback.txt")
        print("\n".join(lines), file=sys.stderr, flush=True)
        sys.exit(1)


def print_config_tree(cfg: DictConfig, first: tuple[str, ...] = ("data", "model", "optimizer",
                                                                   "scheduler", "trainer")) -> None:
    """The composed config as a tree (rich), its main groups first."""
    from rich import print as rprint
    from rich.syntax import Syntax
    from rich.tree import Tree

    tree = Tree("config", guide_style="dim")
    for key in [*[k for k in first if k in cfg], *[k for k in cfg if k not in first]]:
        value = cfg[key]
        text = OmegaConf.to_yaml(value, resolve=True) if isinstance(value, DictConfig) else str(value)
        tree.add(str(key)).add(Syntax(text, "yaml", theme="ansi_dark", background_color="default"))
    rprint(tree)


def write_json(path: str | Path, data: dict[str, Any]) -> Path:
    """Strict JSON: a NaN/inf value becomes null."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    clean = {k: None if isinstance(v, float) and not math.isfinite(v) else v
             for k, v in data.items()}
    path.write_text(json.dumps(clean, indent=2, sort_keys=True, allow_nan=False) + "\n")
    return path


def to_float_dict(metrics: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items()}

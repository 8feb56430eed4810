"""Run the real command-line entry points in a subprocess, as a user would."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

from dlbasics.configs import PROJECT_ROOT

FAST = ["callbacks.progress_bar=null", "trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false", "hydra/job_logging=disabled"]


def run(module: str, *args: str, log_dir: Path, cwd: Path | None = None,
        check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "DLBASICS_LOG_DIR": str(log_dir), "OMP_NUM_THREADS": "1",
           "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def metrics_files(root: Path) -> list[Path]:
    return sorted(root.rglob("metrics.json"))


def call(module: str, *args: str) -> tuple[int, str, str]:
    """Run ``python -m <module> <args>`` in this process (no interpreter start-up):
    (exit code, stdout, stderr). Not for DDP, whose launcher starts the script again."""
    import contextlib
    import importlib
    import io

    main = importlib.import_module(module).main
    out, err = io.StringIO(), io.StringIO()
    old, code = sys.argv, 0
    sys.argv = [module, *args]
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            main()  # Hydra mains read sys.argv; argparse ones (aggregate) too
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    finally:
        sys.argv = old
    return code, out.getvalue(), err.getvalue()


def run_here(module: str, *args: str, log_dir: Path, cwd: Path | None = None,
             check: bool = True) -> subprocess.CompletedProcess:
    """``run`` without starting an interpreter: the same entry point, arguments, log folder
    and working folder, in this process."""
    saved = os.environ.get("DLBASICS_LOG_DIR"), os.getcwd()
    os.environ["DLBASICS_LOG_DIR"] = str(log_dir)
    try:
        if cwd is not None:
            os.chdir(cwd)
        code, out, err = call(module, *args)
    finally:
        os.chdir(saved[1])
        if saved[0] is None:
            os.environ.pop("DLBASICS_LOG_DIR")
        else:
            os.environ["DLBASICS_LOG_DIR"] = saved[0]
    if check and code != 0:
        raise AssertionError(f"exit {code}\n{out[-3000:]}\n{err[-3000:]}")
    return subprocess.CompletedProcess([module, *args], code, out, err)


def load_script(name: str) -> ModuleType:
    """``scripts/<name>.py`` as a module (the scripts are not a package)."""
    spec = importlib.util.spec_from_file_location(f"{name}_script",
                                                  PROJECT_ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module

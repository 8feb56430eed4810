"""dlbasics as an installed package: a wheel built with ``pip wheel .`` holds every module and
every config file, and its ``dlbasics-train`` runs from an empty folder in a fresh venv."""

from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from dlbasics.configs import CONF_DIR, PROJECT_ROOT

SRC = PROJECT_ROOT / "src" / "dlbasics"


@pytest.mark.slow  # a fresh venv and a wheel build: ~50 s
def test_wheel_installs_and_trains_from_an_empty_folder(tmp_path):
    source, wheels = tmp_path / "source", tmp_path / "wheels"  # a copy: the build leaves build/
    for part in ("src", "conf", "pyproject.toml", "README.md"):
        copy = shutil.copytree if (PROJECT_ROOT / part).is_dir() else shutil.copy
        copy(PROJECT_ROOT / part, source / part)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels),
                    str(source)], check=True, capture_output=True, timeout=600)
    (wheel,) = wheels.glob("dlbasics-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    modules = {f"dlbasics/{p.relative_to(SRC)}" for p in SRC.rglob("*.py")}
    configs = {f"dlbasics/conf/{p.relative_to(CONF_DIR)}" for p in CONF_DIR.rglob("*.yaml")}
    assert modules <= names and configs <= names, sorted((modules | configs) - names)

    # a fresh venv with the wheel alone; its dependencies come from this environment's
    # site-packages (added behind the venv's own, so the wheel's dlbasics is the one imported)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    py = venv / "bin" / "python"
    purelib = subprocess.run([py, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                             capture_output=True, text=True, check=True).stdout.strip()
    Path(purelib, "deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "-q",
                    str(wheel)], check=True, capture_output=True, timeout=300)
    empty = tmp_path / "empty"
    empty.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DLBASICS_")}
    proc = subprocess.run([venv / "bin" / "dlbasics-train", "model=mlp", "data=digits",
                           "trainer.fast_dev_run=true", "callbacks.progress_bar=null",
                           "trainer.enable_progress_bar=false"],
                          cwd=empty, env={**env, "OMP_NUM_THREADS": "1"}, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (metrics,) = (empty / "outputs").rglob("metrics.json")  # outputs/ in the working folder
    assert json.loads(metrics.read_text())["global_step"] == 1
    where = subprocess.run([py, "-c", "import dlbasics; print(dlbasics.__file__)"], cwd=empty,
                           capture_output=True, text=True, check=True).stdout
    assert str(venv) in where  # the wheel's copy ran, not the checkout's

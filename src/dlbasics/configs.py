"""Where the configs live, what each config group offers, and which model/data pairs compose.

``conf/`` sits at the top of a clone and ships inside the wheel as ``dlbasics/conf`` (the same
files, mapped by ``pyproject.toml``). Compatibility comes from class attributes (a network's
``input_kinds``/``tasks``, a data module's ``input_kind``/``task``), read from ``conf/`` alone, so
a bad pair fails before any data is read or any model is built.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from hydra.utils import get_class
from omegaconf import OmegaConf

PACKAGE_DIR = Path(__file__).resolve().parent
CONF_DIR = PACKAGE_DIR / "conf" if (PACKAGE_DIR / "conf").is_dir() else PACKAGE_DIR.parents[1] / "conf"
# a clone: its top folder (data/ and outputs/ go there); an installed wheel: the working folder
PROJECT_ROOT = CONF_DIR.parent if CONF_DIR.parent != PACKAGE_DIR else Path.cwd()
# model.* options of every network, applied by dlbasics.build rather than passed to it: how the
# network runs, not what it is (a checkpoint resumes or loads whatever they are)
RUNTIME_MODEL_KEYS = ("compile", "channels_last")


def choices(group: str) -> list[str]:
    """Names of the YAML files in a config group, e.g. ``choices("model")``."""
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


@cache
def target_class(group: str, name: str) -> type:
    return get_class(OmegaConf.load(CONF_DIR / group / f"{name}.yaml")["_target_"])


def _accepts(model_cls: type, data_cls: type) -> bool:
    return model_cls.accepts(data_cls.input_kind, data_cls.task)


def compatible_data(model_target: str) -> list[str]:
    model_cls = get_class(model_target)
    return [d for d in choices("data") if _accepts(model_cls, target_class("data", d))]


def compatible_models(data_target: str) -> list[str]:
    data_cls = get_class(data_target)
    return [m for m in choices("model") if _accepts(target_class("model", m), data_cls)]


def pairs() -> list[tuple[str, str]]:
    """Every (model, data) pair meant to work."""
    return [(m, d) for m in choices("model") for d in choices("data")
            if _accepts(target_class("model", m), target_class("data", d))]

"""What every command-line entry point shares: Hydra's main, resolvers, one-line user errors.

``entry_point("train")`` turns a function of the composed config into a Hydra main reading
``conf/train.yaml``: any mistake a user can make (``UserError``, a bad override caught at
instantiation) ends with one ``error: ...`` line on stderr and exit code 2, no traceback.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import hydra
from hydra.errors import InstantiationException
from omegaconf import DictConfig, OmegaConf

from dlbasics.configs import CONF_DIR, PROJECT_ROOT
from dlbasics.errors import UserError


def register_resolvers() -> None:
    """``${uid:}`` makes run folders unique (two runs in one second never share one);
    ``${project_root:}`` lets every entry point work from any working directory."""
    if not OmegaConf.has_resolver("uid"):
        OmegaConf.register_new_resolver("uid", lambda: uuid.uuid4().hex[:6], use_cache=True)
    if not OmegaConf.has_resolver("project_root"):
        OmegaConf.register_new_resolver("project_root", lambda: str(PROJECT_ROOT))


register_resolvers()


def fail(message: str, code: int = 2) -> None:
    print(f"error: {message}", file=sys.stderr, flush=True)
    sys.exit(code)


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Turn mistakes a user can make into one clear line on stderr and exit code 2."""
    try:
        yield
    except UserError as err:
        fail(str(err))
    except InstantiationException as err:
        cause = err.__cause__ or err
        first = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
        if isinstance(cause, UserError):
            fail(first)
        if not isinstance(cause, TypeError | ValueError):
            raise
        fail(f"{first}. Check the overrides you gave (e.g. `model.hidden=128`), "
             f"or print the composed config with `--cfg job`.")


def entry_point(config_name: str) -> Callable[[Callable[[DictConfig], Any]], Callable[[], Any]]:
    """Decorate ``run(cfg)`` into the Hydra main of ``conf/<config_name>.yaml``."""

    def wrap(run: Callable[[DictConfig], Any]) -> Callable[[], Any]:
        @hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name=config_name)
        @functools.wraps(run)
        def main(cfg: DictConfig) -> Any:
            with user_errors():
                return run(cfg)

        return main

    return wrap


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

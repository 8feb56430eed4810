"""Shared plumbing of the Hydra entry points: resolvers, user-error reporting, checkpoints."""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from hydra.errors import InstantiationException
from omegaconf import OmegaConf

from dlbasics.errors import UserError
from dlbasics.registry import REPO_ROOT

log = logging.getLogger("dlbasics")


def register_resolvers() -> None:
    """``${uid:}`` makes run folders unique (two runs in one second never share one);
    ``${repo_root:}`` lets every entry point work from any working directory."""
    if not OmegaConf.has_resolver("uid"):
        OmegaConf.register_new_resolver("uid", lambda: uuid.uuid4().hex[:6], use_cache=True)
    if not OmegaConf.has_resolver("repo_root"):
        OmegaConf.register_new_resolver("repo_root", lambda: str(REPO_ROOT))


def fail(message: str, code: int = 2) -> None:
    print(f"error: {message}", file=sys.stderr, flush=True)
    sys.exit(code)


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Turn mistakes a user can make into one clear line on stderr and a non-zero exit."""
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


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a dlbasics checkpoint on the CPU, or raise a UserError saying what is wrong."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise UserError(f"ckpt_path={path} does not exist. Checkpoints are saved in "
                        f"<run folder>/checkpoints/ (last.ckpt and the best epoch).")
    try:
        ckpt = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unpickling failure means "not a checkpoint"
        raise UserError(f"ckpt_path={path} is not a readable checkpoint ({type(err).__name__}). "
                        f"Pass a .ckpt file written by dlbasics.train.") from None
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt or "dlbasics" not in ckpt:
        raise UserError(f"ckpt_path={path} is not a dlbasics checkpoint (no state_dict/run "
                        f"config). Pass a .ckpt file written by dlbasics.train.")
    return ckpt


def write_metrics(output_dir: str | Path, metrics: dict[str, Any]) -> Path:
    path = Path(output_dir) / "metrics.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    return path


def to_float_dict(metrics: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items()}

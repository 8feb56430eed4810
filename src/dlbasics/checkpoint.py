"""dlbasics checkpoints: Lightning's checkpoint plus one documented key, always read safely.

A checkpoint is Lightning's dict (``state_dict``, ``optimizer_states``, ``lr_schedulers``,
``loops``, ``callbacks``, ...) plus::

    checkpoint["dlbasics"] = {
        "format": 1,
        "config": the run's resolved config (a plain dict),
        "spec": DataSpec.to_dict(),
        "data_state": DataModule.data_state(),   # see below
    }

    data_state = {
        "vocabs": {name: {"itos": [...], "tokenizer": "word"}},   # token data (dlbasics.data.vocab)
        "inputs": {"kind": "image", "shape": [C, H, W], "mean": [...], "std": [...], "margin": m}
                | {"kind": "vector", "features": [names], "mean": [...], "std": [...]},
    }

``inputs`` (``DataModule.input_state``) is how a raw input becomes what the network reads, so
``predict`` and ``explain`` convert a user's images or rows as the test split was; either key is
absent when there is nothing to keep, and a checkpoint without ``inputs`` (written before it
existed) falls back to the data module's defaults.

Every read goes through ``read_checkpoint``: ``torch.load(weights_only=True)`` (tensors and plain
containers only, so loading a file cannot run code) and a check that the file is a dlbasics
checkpoint. ``SafeCheckpointIO`` makes Lightning read checkpoints (resume, test) the same way.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from dlbasics.errors import UserError
from dlbasics.spec import DataSpec

KEY = "dlbasics"
FORMAT = 1


def run_payload(config: dict[str, Any] | None, spec: DataSpec,
                data_state: dict[str, Any]) -> dict[str, Any]:
    """The ``dlbasics`` entry of a checkpoint."""
    return {KEY: {"format": FORMAT, "config": config, "spec": spec.to_dict(),
                  "data_state": data_state}}


_last_read: tuple[tuple[Any, ...], dict[str, Any]] | None = None


def read_checkpoint(path: str | Path, option: str = "ckpt_path") -> dict[str, Any]:
    """Load a dlbasics checkpoint on the CPU, or raise a UserError saying what is wrong.

    The last file read is kept (keyed by path, size and modification time), so a checkpoint
    checked before Lightning reads it (resume, test) is read from disk once.
    """
    global _last_read
    p = Path(path).expanduser()
    if p.is_dir():
        hint = f"continue that run with resume={path}, or give" if (p / ".hydra").is_dir() else "give"
        raise UserError(f"{option}={path} is a folder, not a checkpoint file: {hint} a .ckpt file "
                        f"(e.g. {p / 'checkpoints' / 'last.ckpt'})")
    if not p.is_file():
        raise UserError(f"{option}={path} does not exist. Checkpoints are saved in "
                        f"<run folder>/checkpoints/ (last.ckpt and the best epoch).")
    st = p.stat()
    key = (p.resolve(), st.st_size, st.st_mtime_ns)
    if _last_read is not None and _last_read[0] == key:
        return dict(_last_read[1])
    try:
        ckpt = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any failure means "not a checkpoint"
        unsafe = isinstance(err, pickle.UnpicklingError) and (
            "weights_only" in str(err) or "Unsupported global" in str(err))
        why = ("holds Python objects besides tensors and plain containers, so it was not loaded "
               "(loading it could run code)" if unsafe
               else f"is not a readable checkpoint ({type(err).__name__})")
        raise UserError(f"{option}={path} {why}. Pass a .ckpt file written by dlbasics.train.") from None
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt or KEY not in ckpt:
        raise UserError(f"{option}={path} is not a dlbasics checkpoint (no state_dict/run "
                        f"config). Pass a .ckpt file written by dlbasics.train.")
    _last_read = (key, ckpt)
    return dict(ckpt)


def newest_checkpoint(run_dir: Path) -> Path | None:
    """The most recently written checkpoint of a run folder (``last.ckpt`` on a tie)."""
    found = list((run_dir / "checkpoints").glob("*.ckpt"))
    return max(found, key=lambda p: (p.stat().st_mtime, p.name == "last.ckpt"), default=None)


class SafeCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint IO (atomic saves), reading through ``read_checkpoint``."""

    def load_checkpoint(self, path: Any, map_location: Any = None,
                        weights_only: bool | None = None) -> dict[str, Any]:
        return read_checkpoint(path)

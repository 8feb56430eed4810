"""Tiny Shakespeare as it sits in data_dir after a download: ``tinyshakespeare/input.txt``, plain
UTF-8 text. The tiny file is the real corpus's first 20,000 characters (from the packaged copy)."""

from __future__ import annotations

from pathlib import Path

N_CHARS = 20_000


def write_shakespeare(root: Path, n_chars: int = N_CHARS, start: int = 0) -> Path:
    from dlbasics.data.chars import packaged_shakespeare

    path = root / "tinyshakespeare" / "input.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(packaged_shakespeare()[start : start + n_chars], encoding="utf-8")
    return path


WRITERS = {"shakespeare": write_shakespeare}

"""The README's generated blocks: every figure between ``<!-- results:NAME -->`` and
``<!-- /results:NAME -->`` is written by a script (``scripts/results.py``, ``speedrun.py``,
``transfer.py``) from the files it stores under ``results/``, never typed by hand."""

from __future__ import annotations

from pathlib import Path


def markers(name: str) -> tuple[str, str]:
    return f"<!-- results:{name} -->", f"<!-- /results:{name} -->"


def block(text: str, name: str) -> str:
    """The generated block ``name`` of ``text`` (without its markers and outer blank lines)."""
    begin, end = markers(name)
    if begin not in text or end not in text:
        raise ValueError(f"no {begin} ... {end} markers")
    return text.split(begin, 1)[1].split(end, 1)[0].strip()


def splice(text: str, name: str, content: str) -> str:
    """``text`` with the block ``name`` replaced by ``content``."""
    block(text, name)  # both markers present
    begin, end = markers(name)
    head, rest = text.split(begin, 1)
    return f"{head}{begin}\n{content.strip()}\n{end}{rest.split(end, 1)[1]}"


def update(readme: Path, name: str, content: str) -> None:
    readme.write_text(splice(readme.read_text(), name, content))

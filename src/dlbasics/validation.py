"""Check a composed config before any data is read or any model built.

Every value is checked against a range when its name is in ``RANGES`` (the same rule wherever the
key appears: ``data.batch_size`` and ``data.eval_batch_size`` alike), and otherwise against the
type its ``_target_`` declares (``trainer.deterministic``, ``model.bidirectional``, ...). A wrong
value ends in one line naming the key, the value and what is allowed.
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable
from typing import Any

from hydra.utils import get_class
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from dlbasics.configs import RUNTIME_MODEL_KEYS
from dlbasics.errors import UserError

Rule = tuple[Callable[[Any], bool], str]  # (whether a value is allowed, what is allowed)


def _rule(kind: type, low: float, high: float | None = None, *,
          low_open: bool = False, high_open: bool = False, nullable: bool = False) -> Rule:
    def ok(v: Any) -> bool:
        if v is None:
            return nullable
        if isinstance(v, bool) or not isinstance(v, int if kind is int else int | float):
            return False
        return not ((v <= low if low_open else v < low)
                    or (high is not None and (v >= high if high_open else v > high)))

    what = "an integer" if kind is int else "a number"
    bounds = [f"{'>' if low_open else '>='} {low:g}"]
    if high is not None:
        bounds.append(f"{'<' if high_open else '<='} {high:g}")
    return ok, f"{what} {' and '.join(bounds)}" + (", or null" if nullable else "")


def _ints(low: int, **kw: Any) -> Rule:
    return _rule(int, low, **kw)


FRACTION = _rule(float, 0, 1, low_open=True, high_open=True)
PROBABILITY = _rule(float, 0, 1, high_open=True)
POSITIVE = _rule(float, 0, low_open=True)
NON_NEGATIVE = _rule(float, 0)

RANGES: dict[str, Rule] = {
    # loops and batches
    "max_epochs": _ints(-1), "max_steps": _ints(-1), "batch_size": _ints(1),
    "eval_batch_size": _ints(1, nullable=True), "num_workers": _ints(0), "seed": _ints(0),
    "accumulate_grad_batches": _ints(1), "log_every_n_steps": _ints(1), "num_nodes": _ints(1),
    "check_val_every_n_epoch": _ints(1, nullable=True), "patience": _ints(0),
    "samples_per_epoch": _ints(1), "block_size": _ints(1, nullable=True),
    "bucket_pool": _ints(1), "every_n_train_steps": _ints(0, nullable=True),
    # data
    "val_fraction": FRACTION, "test_fraction": FRACTION, "folds": _ints(2, nullable=True),
    "fold": _ints(0), "min_freq": _ints(1),
    "max_size": _ints(2, nullable=True), "max_length": _ints(1, nullable=True),
    "n_train": _ints(1), "n_val": _ints(1), "n_test": _ints(1), "max_len": _ints(1, nullable=True),
    "crop_padding": _ints(0), "rotation": NON_NEGATIVE, "image_size": _ints(1, nullable=True),
    "image_margin": _ints(0), "train_size": _ints(1, nullable=True),
    # networks
    "hidden": _ints(0), "depth": _ints(0), "num_layers": _ints(1), "heads": _ints(1),
    "n_layer": _ints(1), "n_head": _ints(1), "n_embd": _ints(1), "dim": _ints(1),
    "d_model": _ints(1), "nhead": _ints(1), "dim_feedforward": _ints(1), "ff_mult": _ints(1),
    "embed_dim": _ints(1, nullable=True), "kernel_size": _ints(1), "convs_per_block": _ints(1),
    "blocks_per_stage": _ints(1), "num_encoder_layers": _ints(1),
    "num_decoder_layers": _ints(1), "signal_kernel": _ints(1), "dropout": PROBABILITY,
    "word_dropout": _rule(float, 0, 1, high_open=True),
    # optimisation
    "lr": POSITIVE, "max_lr": POSITIVE, "weight_decay": NON_NEGATIVE, "momentum": PROBABILITY,
    "l1": NON_NEGATIVE, "label_smoothing": _rule(float, 0, 1, high_open=True, nullable=True),
    "teacher_forcing": _rule(float, 0, 1, nullable=True), "pct_start": FRACTION,
    "gradient_clip_val": _rule(float, 0, low_open=True, nullable=True),
    "test_beam_size": _ints(1, nullable=True), "eta_min": NON_NEGATIVE, "gamma": POSITIVE,
    "step_size": _ints(1), "unfreeze_at_epoch": _ints(1, nullable=True),
    "backbone_lr_scale": POSITIVE,
    # generation and translation
    "max_new_tokens": _ints(0), "temperature": POSITIVE, "top_k": _ints(1, nullable=True),
    "beam_size": _ints(1), "samples": _ints(1), "n": _ints(1),
    # predict and explain
    "steps": _ints(1), "random_orders": _ints(1), "show": _ints(0),
}
LISTS_OF_WIDTHS = ("channels", "widths")


def _alternatives(annotation: Any) -> list[Any] | None:
    """What an annotation allows as a list of plain types and ``Literal`` values
    (``Optional[Literal["a"]]`` -> ["a", NoneType]), or None when it allows something this check
    does not model (classes, tensors, callables...)."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        parts = [_alternatives(a) for a in typing.get_args(annotation)]
        return None if any(p is None for p in parts) else [a for p in parts for a in p]  # type: ignore[union-attr]
    if origin is typing.Literal:
        return list(typing.get_args(annotation))
    if annotation in (int, float, bool, str, type(None)):
        return [annotation]
    return None


def _matches(value: Any, alternative: Any) -> bool:
    if not isinstance(alternative, type):
        return value == alternative and type(value) is type(alternative)
    if isinstance(value, bool):
        return alternative is bool
    if alternative is float:
        return isinstance(value, int | float)
    return isinstance(value, alternative)


def init_hints(cls: type) -> dict[str, Any]:
    """The declared argument types of a class's ``__init__`` and of its bases' (a subclass passes
    ``**kwargs`` on), the subclass's winning."""
    hints: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        if "__init__" in vars(klass):
            try:
                hints.update(typing.get_type_hints(klass.__init__))
            except Exception:  # noqa: BLE001 - a base whose hints do not resolve is not checked
                continue
    return hints


def _hints(target: str) -> dict[str, Any]:
    try:
        cls = get_class(target)
        return init_hints(cls) if inspect.isclass(cls) else typing.get_type_hints(cls)
    except Exception:  # noqa: BLE001 - an unresolvable hint is simply not checked
        return {}


def _problem(key: str, value: Any, annotation: Any) -> str | None:
    if key in RANGES:
        ok, text = RANGES[key]
        return None if ok(value) else f"must be {text}"
    if key in RUNTIME_MODEL_KEYS:
        return None if isinstance(value, bool) else "must be true or false"
    if key in LISTS_OF_WIDTHS:
        widths_ok = isinstance(value, list) and len(value) > 0 and all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in value)
        return None if widths_ok else "must be a list of integers >= 1, e.g. [32, 64]"
    allowed = _alternatives(annotation) if annotation is not None else None
    if allowed is None or any(_matches(value, a) for a in allowed):
        return None
    names = sorted({"null" if a is type(None) else a.__name__ if isinstance(a, type) else repr(a)
                    for a in allowed})
    return f"must be {' or '.join(names)}"


SKIPPED = ("hydra", "choices", "paths")


def validate_config(cfg: DictConfig, hints: dict[str, dict[str, Any]] | None = None) -> None:
    """Raise a UserError for the first value of the wrong type or out of range.

    ``hints``: the declared types of nodes without a ``_target_`` (e.g. ``{"module": ...}``).
    """
    _check(cfg, "", {}, hints or {})


def _check(node: DictConfig, prefix: str, hints: dict[str, Any],
           extra: dict[str, dict[str, Any]]) -> None:
    if "_target_" in node:
        hints = _hints(node["_target_"])
    for key in node:
        if str(key).startswith("_") or key in SKIPPED:
            continue
        try:
            value = node[key]
        except OmegaConfBaseException:  # an interpolation only Hydra's runtime can resolve
            continue
        if isinstance(value, DictConfig):
            _check(value, f"{prefix}{key}.", extra.get(f"{prefix}{key}", {}), extra)
            continue
        if isinstance(value, ListConfig):
            value = OmegaConf.to_container(value, resolve=True)
        problem = _problem(str(key), value, hints.get(key))
        if problem:
            raise UserError(f"{prefix}{key}={value!r}: {problem}.")

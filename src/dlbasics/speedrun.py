"""Speedruns: the wall time a recipe takes to reach a target on the validation split, trained by
``python -m dlbasics.train`` (Lightning, as a user runs it) and by the plain-PyTorch loop of the
same recipe (``dlbasics.plain``), alternating over seeds. ``scripts/speedrun.py`` is the command;
this module holds the targets, one run of each side and the summary.

What each side's seconds include, from the same starting point (data module and network built,
before the first training batch) to the end of the validation that reached the target:
  - Lightning: ``trainer.fit`` as ``python -m dlbasics.train`` runs it, with every default
    callback (best/last and timed checkpoints, early stopping, learning-rate monitor, the
    non-finite guard, seeded steps, the progress bar) and the CSV logger: per-step training
    metrics and logging, the sanity-check validation, every validation and checkpoint before the
    target. Not the checkpoint written after the stopping validation, nor testing.
  - plain: training steps and the same validations (loss and accuracy over the whole split),
    nothing else.
"""

from __future__ import annotations

import statistics
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, open_dict

from dlbasics import plain
from dlbasics.cli import register_resolvers
from dlbasics.configs import CONF_DIR


@dataclass(frozen=True)
class Speedrun:
    """A named target: the recipe (overrides of ``train``), what must be reached on the
    validation split, and the test-split figure reported at that point."""

    recipe: tuple[str, ...]
    monitor: str
    target: float
    mode: str
    test_metric: str
    goal: str

    def overrides(self, seed: int) -> list[str]:
        return [*self.recipe, f"seed={seed}", f"callbacks.stop_at_target.monitor={self.monitor}",
                f"callbacks.stop_at_target.target={self.target}",
                f"callbacks.stop_at_target.mode={self.mode}",
                # the best checkpoint (tested) is then the one that reached the target
                f"callbacks.model_checkpoint.monitor={self.monitor}",
                f"callbacks.model_checkpoint.mode={self.mode}"]


# The Tiny Shakespeare target: nanoGPT's CPU recipe (its seed; deterministic on the CPU) prints
# val 1.8857 at step 2,000, a mean over 20 random batches of its val split. Its final model,
# scored on every non-overlapping 64-character window: 1.8785 on our validation split (the first
# half of nanoGPT's val split: the same windows), 1.9180 on our test split (the second half),
# 1.8982 on both. "Reaching nanoGPT's loss" is val/loss <= 1.878 on our validation split.
SPEEDRUNS: dict[str, Speedrun] = {
    "shakespeare": Speedrun(("experiment=shakespeare_speedrun",), "val/loss", 1.878, "min",
                            "test/loss", "nanoGPT's CPU recipe's loss in half its 2,000-step time"),
    "mnist5k": Speedrun(("experiment=mnist5k_cnn",), "val/acc", 0.985, "max", "test/acc",
                        "98.5% in at most 60 s of fitting"),
    "mnist1d": Speedrun(("experiment=mnist1d_cnn",), "val/acc", 0.99, "max", "test/acc",
                        "the CNN's 99% in the least time"),
}


def compose_recipe(overrides: list[str], output_dir: str | Path) -> DictConfig:
    """The ``train`` config of ``python -m dlbasics.train <overrides>``, writing to ``output_dir``."""
    register_resolvers()
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("train", overrides=[*overrides, f"paths.output_dir={output_dir}"])
    with open_dict(cfg):
        cfg.choices = {}
    return cfg


def samples_per_step(cfg: DictConfig) -> int:
    """Examples (images, signals) or tokens (a language model's windows x length) per step."""
    block = cfg.data.get("block_size")
    return int(cfg.data.batch_size) * (int(block) if block else 1)


def split_tokens(cfg: DictConfig) -> tuple[int, int] | None:
    """Characters scored in the val and test splits of a character corpus (else None)."""
    from hydra.utils import instantiate

    from dlbasics.data.chars import CharCorpus

    dm = instantiate(cfg.data)
    if not isinstance(dm, CharCorpus):
        return None
    train_end, val_end, n = dm.split_bounds()
    block = dm.block_size
    return tuple(((m - block - 1) // block + 1) * block  # type: ignore[return-value]
                 for m in (val_end - train_end, n - val_end))


def _result(side: str, seed: int, hit: dict[str, Any] | None, cfg: DictConfig, run: Speedrun,
            fit_seconds: float, steps_run: int, test: dict[str, float]) -> dict[str, Any]:
    """One run's record; for a char LM that reached a val/loss target, also the loss over val +
    test (``whole_val_loss``: nanoGPT's val split, the last 10%)."""
    result = {
        "side": side, "seed": seed, "reached": hit is not None,
        "seconds": round(hit["seconds"], 3) if hit else None, "step": hit["step"] if hit else None,
        "samples": hit["step"] * samples_per_step(cfg) if hit else None,
        "value": hit["value"] if hit else None, "fit_seconds": round(fit_seconds, 2),
        "steps_run": steps_run, "monitor": run.monitor, "test": test}
    tokens, test_loss = split_tokens(cfg), test.get("test/loss")
    if tokens and hit and test_loss is not None and run.monitor == "val/loss":
        result["whole_val_loss"] = (hit["value"] * tokens[0] + test_loss * tokens[1]) / sum(tokens)
    return result


def run_lightning(run: Speedrun, seed: int, extra: list[str], root: Path) -> dict[str, Any]:
    from dlbasics.train import train

    out = Path(tempfile.mkdtemp(prefix=f"lightning-{seed}-", dir=root))
    cfg = compose_recipe([*run.overrides(seed), *extra], out)
    metrics = train(cfg)
    return _result("lightning", seed, metrics.get("target_reached"), cfg, run,
                   metrics["fit_seconds"], metrics["global_step"],
                   {k: v for k, v in metrics.items() if k.startswith("test/")})


def run_plain(run: Speedrun, seed: int, extra: list[str], root: Path) -> dict[str, Any]:
    cfg = compose_recipe([*run.overrides(seed), *extra], root)
    result = plain.fit(cfg, plain.Target(run.monitor, run.target, run.mode))
    return _result("plain", seed, result.reached, cfg, run, result.seconds, result.steps,
                   result.test)


def spread(values: list[float]) -> dict[str, float] | None:
    return ({"median": statistics.median(values), "min": min(values), "max": max(values),
             "n": len(values)} if values else None)


def summarise(runs: list[dict[str, Any]], test_metric: str) -> dict[str, Any]:
    """Median and range over seeds of each side, and the Lightning / plain ratio of medians."""
    out: dict[str, Any] = {}
    for side in ("lightning", "plain"):
        mine = [r for r in runs if r["side"] == side]
        if not mine:
            continue
        hit = [r for r in mine if r["reached"]]
        out[side] = {"reached": f"{len(hit)}/{len(mine)}",
                     "seconds": spread([r["seconds"] for r in hit]),
                     "steps": spread([r["step"] for r in hit]),
                     "samples": spread([r["samples"] for r in hit]),
                     "test": spread([r["test"][test_metric] for r in hit
                                     if test_metric in r["test"]]),
                     "whole_val_loss": spread([r["whole_val_loss"] for r in hit
                                               if "whole_val_loss" in r])}
    light, ref = (out.get(s, {}).get("seconds") for s in ("lightning", "plain"))
    if light and ref:
        out["ratio"] = light["median"] / ref["median"]
    return out

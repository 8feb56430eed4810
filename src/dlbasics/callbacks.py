"""Callbacks Lightning does not ship: a guard against non-finite numbers, random numbers that
depend on the position in training only (exact resume), what to do after Ctrl-C, the frozen
backbone of transfer learning, and a progress bar that costs little on small steps (the
run-folder plots are ``dlbasics.plots.RunPlots``)."""

from __future__ import annotations

import csv
import json
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import BaseFinetuning, RichProgressBar
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from dlbasics.checkpoint import newest_checkpoint
from dlbasics.errors import NonFiniteError

ADVICE = ("Lower the learning rate (optimizer.lr=...), clip gradients "
          "(trainer.gradient_clip_val=1.0), or find the operation with debug=default "
          "(anomaly detection).")


class FiniteGuard(L.Callback):
    """Stop at the first NaN/inf training loss, gradient or validation metric, before it reaches
    a checkpoint: raising (rather than ``trainer.should_stop``) skips the checkpoint callbacks,
    so the checkpoints keep the last good weights."""

    def _stop(self, trainer: L.Trainer, what: str) -> None:
        ckpt = getattr(trainer.checkpoint_callback, "last_model_path", "") or "none yet"
        raise NonFiniteError(f"{what} at epoch {trainer.current_epoch}, step "
                             f"{trainer.global_step}. {ADVICE} Last good checkpoint: {ckpt}")

    def on_before_backward(self, trainer: L.Trainer, pl_module: L.LightningModule,
                           loss: torch.Tensor) -> None:
        if not torch.isfinite(loss).all():
            self._stop(trainer, f"the training loss became {loss.item()}")

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._params = list(pl_module.parameters())  # walked once, not at every step

    def on_before_optimizer_step(self, trainer: L.Trainer, pl_module: L.LightningModule,
                                 optimizer: torch.optim.Optimizer) -> None:
        grads = [p.grad for p in self._params if p.grad is not None]
        if grads and not torch.stack(torch._foreach_norm(grads)).isfinite().all():
            bad = next(n for n, p in pl_module.named_parameters()
                       if p.grad is not None and not p.grad.isfinite().all())
            self._stop(trainer, f"the gradient of {bad} became non-finite")

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        bad = {k: float(v) for k, v in trainer.callback_metrics.items()
               if k.startswith("val/") and not math.isfinite(float(v))}
        if bad:
            self._stop(trainer, f"validation gave {bad}")


class MedianPruner(L.Callback):
    """Stop a trial of a search when, after ``warmup_epochs`` validations, the best ``monitor``
    so far is worse than the median of the earlier trials' best at the same epoch (the median
    stopping rule of Optuna's MedianPruner and Google Vizier), read from the CSV logs of the other
    jobs in the sweep folder: hopeless trials end early and free the machine."""

    def __init__(self, monitor: str = "val/loss", mode: str = "min", warmup_epochs: int = 2,
                 min_trials: int = 3) -> None:
        self.monitor, self.mode = monitor, mode
        self.warmup_epochs, self.min_trials = warmup_epochs, min_trials
        self.best: float | None = None
        self.stop_reason: str | None = None

    def _better(self, a: float, b: float) -> bool:
        return a < b if self.mode == "min" else a > b

    def _others(self, run_dir: Path, epoch: int) -> list[float]:
        bests = []
        for path in run_dir.parent.glob("*/csv/metrics.csv"):
            if path.parents[1] == run_dir:
                continue
            with open(path, newline="") as f:
                values = [float(r[self.monitor]) for r in csv.DictReader(f)
                          if r.get(self.monitor) and int(float(r.get("epoch") or -1)) <= epoch]
            if values:
                bests.append(min(values) if self.mode == "min" else max(values))
        return bests

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        value = trainer.callback_metrics.get(self.monitor)
        if trainer.sanity_checking or value is None:
            return
        value = float(value)
        if self.best is None or self._better(value, self.best):
            self.best = value
        epoch = trainer.current_epoch
        if epoch + 1 < self.warmup_epochs:
            return
        others = self._others(Path(trainer.default_root_dir), epoch)
        if len(others) >= self.min_trials:
            median = statistics.median(others)
            if self._better(median, self.best):
                trainer.should_stop = True
                self.stop_reason = (f"pruned at epoch {epoch}: best {self.monitor} {self.best:.4g} "
                                    f"is worse than the median {median:.4g} of {len(others)} "
                                    f"earlier trials at that epoch")


def step_seed(seed: int, rank: int, batch: int) -> int:
    """The torch seed set before training batch number ``batch`` (counted over the whole run) is
    read: SeededSteps' and the plain-PyTorch reference loop's (``dlbasics.plain``)."""
    return (seed * 1_000_003 + rank * 7919 + batch) % 2**63


def seed_generators(seed: int, device: torch.device) -> None:
    """Seed the CPU generator and ``device``'s: what ``torch.manual_seed`` does for the devices a
    run uses, at a thousandth of its cost (it visits every backend and records a stack trace for
    each one not initialised: milliseconds, as much as a whole small training step)."""
    torch.default_generator.manual_seed(seed)
    if device.type == "cuda":
        torch.cuda.manual_seed(seed)
    elif device.type == "mps":
        torch.mps.manual_seed(seed)


class SeededSteps(L.Callback):
    """Seed torch's random numbers from ``(seed, rank, batch number)`` before every training
    batch is read, so augmentation and dropout depend on the position in training only and a
    resumed run draws exactly the numbers an uninterrupted one would (with ``num_workers=0``:
    worker processes keep their own generators)."""

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def _seed(self, trainer: L.Trainer) -> None:
        batch = trainer.fit_loop.epoch_loop.batch_progress.total.ready  # the next batch's number
        seed_generators(step_seed(self.seed, trainer.global_rank, batch), trainer.strategy.root_device)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._seed(trainer)  # a run resumed mid-epoch starts its epoch without the next hook

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._seed(trainer)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule,
                           outputs: Any, batch: Any, batch_idx: int) -> None:
        self._seed(trainer)


def reached(value: float, target: float, mode: str) -> bool:
    """Whether a metric ``value`` meets ``target`` (``min``: at or below, ``max``: at or above)."""
    return value <= target if mode == "min" else value >= target


class StopAtTarget(L.Callback):
    """Speedruns: stop at the end of the first validation whose ``monitor`` reaches ``target``,
    and record when (``self.result``: step, epoch, seconds since the fit started, value). With
    ``target: null`` it only watches. The seconds run from the start of ``fit`` to the end of
    that validation: data setup, sanity check, every training step, validation, logging and
    checkpoint written before it; not the checkpoint written after it, nor testing."""

    def __init__(self, monitor: str = "val/loss", target: float | None = None,
                 mode: str = "min") -> None:
        if mode not in ("min", "max"):
            raise ValueError(f"callbacks.stop_at_target.mode must be 'min' or 'max', got {mode!r}")
        self.monitor, self.target, self.mode = monitor, target, mode
        self.result: dict[str, Any] | None = None
        self.stop_reason: str | None = None
        self._start = 0.0

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage == "fit":
            self._start, self.result, self.stop_reason = time.perf_counter(), None, None

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.target is None or trainer.sanity_checking or self.result is not None:
            return
        value = trainer.callback_metrics.get(self.monitor)
        if value is None or not reached(float(value), self.target, self.mode):
            return
        self.result = {"monitor": self.monitor, "target": self.target, "value": float(value),
                       "step": trainer.global_step, "epoch": trainer.current_epoch,
                       "seconds": round(time.perf_counter() - self._start, 3)}
        self.stop_reason = (f"reached the target {self.monitor} "
                            f"{'<=' if self.mode == 'min' else '>='} {self.target} at step "
                            f"{trainer.global_step} after {self.result['seconds']:.1f} s")
        trainer.should_stop = True


class StepTimes(L.Callback):
    """The wall time between consecutive training batches' ends, written at the end of fit to
    ``<run folder>/step_times.json`` (``{"intervals": [seconds, ...]}``): each step's whole cost
    (data, hooks, logging, progress bar, and a validation where one falls) without a run's
    fixed costs. Their median is robust to a burst of noise; ``scripts/bench_overhead.py``
    compares it with the plain loop's."""

    def __init__(self) -> None:
        self.ends: list[float] = []

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule,
                           outputs: Any, batch: Any, batch_idx: int) -> None:
        self.ends.append(time.perf_counter())

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.is_global_zero:
            intervals = [b - a for a, b in zip(self.ends, self.ends[1:])]
            path = Path(trainer.default_root_dir) / "step_times.json"
            path.write_text(json.dumps({"intervals": intervals}))


class ResumeHint(L.Callback):
    """After Ctrl-C: where the last checkpoint is and the command that continues the run."""

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule,
                     exception: BaseException) -> None:
        if not isinstance(exception, KeyboardInterrupt) or not trainer.is_global_zero:
            return
        last = newest_checkpoint(Path(trainer.default_root_dir))
        print(f"\ninterrupted: the last checkpoint is {last or 'not written yet'}\n"
              f"continue with: python -m dlbasics.train resume={trainer.default_root_dir}",
              file=sys.stderr, flush=True)


class FreezeBackbone(BaseFinetuning):
    """Transfer learning: train only the head, then (``unfreeze_at_epoch``) the whole network.

    The backbone is every parameter of ``net`` but its head's. Frozen, its parameters get no gradient
    and its BatchNorm layers stay in eval mode (the pre-trained statistics, not the new batches').
    Unlike Lightning's ``BackboneFinetuning``, no parameter group is added when it thaws: the
    LitModule's optimizer holds the frozen parameters from the start, in groups with their own
    learning rate (``finetune.backbone_lr_scale``), so every scheduler sees every group.
    """

    def __init__(self, unfreeze_at_epoch: int | None = None) -> None:
        super().__init__()
        self.unfreeze_at_epoch = unfreeze_at_epoch

    @staticmethod
    def backbone(pl_module: L.LightningModule) -> list[nn.Parameter]:
        return [p for n, p in pl_module.net.named_parameters() if not n.startswith("head.")]

    @staticmethod
    def _norms(pl_module: L.LightningModule, frozen: bool) -> None:
        for name, module in pl_module.net.named_modules():
            if isinstance(module, _BatchNorm) and not name.startswith("head"):
                module.track_running_stats = not frozen
                module.train(not frozen)

    def freeze_before_training(self, pl_module: L.LightningModule) -> None:
        params = [p for p in self.backbone(pl_module) if p.requires_grad]
        pl_module.thawable_params = {id(p) for p in params}  # the optimizer holds them anyway
        for p in params:
            p.requires_grad = False

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_fit_start(trainer, pl_module)
        if self.unfreeze_at_epoch is not None and trainer.current_epoch >= self.unfreeze_at_epoch:
            self._thaw(pl_module)  # resumed after the backbone thawed
        else:
            self._norms(pl_module, frozen=True)

    def finetune_function(self, pl_module: L.LightningModule, epoch: int,
                          optimizer: torch.optim.Optimizer) -> None:
        if epoch == self.unfreeze_at_epoch:
            self._thaw(pl_module)

    def _thaw(self, pl_module: L.LightningModule) -> None:
        thawable = getattr(pl_module, "thawable_params", set())
        for p in self.backbone(pl_module):
            p.requires_grad = p.requires_grad or id(p) in thawable
        self._norms(pl_module, frozen=False)


class ThrottledProgressBar(RichProgressBar):
    """Lightning's rich progress bar, updated and drawn at most ``refresh_rate`` times a second.

    Lightning's bar updates its task and its metrics column after every batch and redraws up to
    100 times a second from a thread that takes the interpreter lock from training: about 2 ms
    per step, more than a whole step of a small network (``scripts/bench_overhead.py``). Here a
    batch's update (train, validation, test) is held back when the last one is less than
    ``1 / refresh_rate`` s old, except a loop's last batch (or the last of ``max_steps``); held
    counts are written when a loop ends or validation interrupts training, so the bar ends on
    its true count. Rich's updates set the count (``completed=``), so nothing is lost by skipping.
    Predictions are not throttled.
    """

    clock = staticmethod(time.monotonic)

    def __init__(self, refresh_rate: int = 10, leave: bool = False, **kwargs: Any) -> None:
        super().__init__(refresh_rate=refresh_rate, leave=leave, **kwargs)
        self._next_update = 0.0
        self._held: dict[Any, int] = {}  # task id -> the count not written yet

    def _due(self, task: Any, batch_idx: int, total: int | float, last: bool = False) -> bool:
        """Whether this batch updates the bar now; if not, its count is held for ``_flush``."""
        now = self.clock()
        if now >= self._next_update or last or batch_idx + 1 >= total:  # total: inf if unknown
            self._next_update = now + 1 / self.refresh_rate
            self._held.pop(task, None)
            return True
        self._held[task] = batch_idx + 1
        return False

    def _flush(self) -> None:
        for task, count in self._held.items():
            self._update(task, count)
        self._held.clear()

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule,
                           outputs: Any, batch: Any, batch_idx: int) -> None:
        if self.is_disabled:
            return
        last = 0 < trainer.max_steps <= trainer.global_step  # the optimizer step just taken
        if self._due(self.train_progress_bar_id, batch_idx, trainer.num_training_batches, last):
            super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)

    def on_validation_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule,
                                outputs: Any, batch: Any, batch_idx: int,
                                dataloader_idx: int = 0) -> None:
        if self.is_disabled:
            return
        task = self.val_sanity_progress_bar_id if trainer.sanity_checking else self.val_progress_bar_id
        if self._due(task, batch_idx, self.total_val_batches_current_dataloader):
            super().on_validation_batch_end(trainer, pl_module, outputs, batch, batch_idx,
                                            dataloader_idx)

    def on_test_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule,
                          outputs: Any, batch: Any, batch_idx: int,
                          dataloader_idx: int = 0) -> None:
        if self.is_disabled:
            return
        if self._due(self.test_progress_bar_id, batch_idx,
                     self.total_test_batches_current_dataloader):
            super().on_test_batch_end(trainer, pl_module, outputs, batch, batch_idx,
                                      dataloader_idx)

    # where a loop ends (the sanity check's too: it ends with on_validation_epoch_end) or
    # training pauses for validation: write what was held back
    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._flush()
        super().on_validation_start(trainer, pl_module)

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._flush()
        super().on_validation_epoch_end(trainer, pl_module)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._flush()
        super().on_train_epoch_end(trainer, pl_module)

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._flush()
        super().on_test_end(trainer, pl_module)

"""Callbacks Lightning does not ship: a guard against non-finite numbers, random numbers that
depend on the position in training only (exact resume), what to do after Ctrl-C, and the frozen
backbone of transfer learning (the run-folder plots are ``dlbasics.plots.RunPlots``)."""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import BaseFinetuning
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

    def on_before_optimizer_step(self, trainer: L.Trainer, pl_module: L.LightningModule,
                                 optimizer: torch.optim.Optimizer) -> None:
        grads = [p.grad for p in pl_module.parameters() if p.grad is not None]
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


class SeededSteps(L.Callback):
    """Seed torch's random numbers from ``(seed, rank, batch number)`` before every training
    batch is read, so augmentation and dropout depend on the position in training only and a
    resumed run draws exactly the numbers an uninterrupted one would (with ``num_workers=0``:
    worker processes keep their own generators)."""

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def _seed(self, trainer: L.Trainer) -> None:
        batch = trainer.fit_loop.epoch_loop.batch_progress.total.ready  # the next batch's number
        torch.manual_seed((self.seed * 1_000_003 + trainer.global_rank * 7919 + batch) % 2**63)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._seed(trainer)  # a run resumed mid-epoch starts its epoch without the next hook

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._seed(trainer)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule,
                           outputs: Any, batch: Any, batch_idx: int) -> None:
        self._seed(trainer)


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

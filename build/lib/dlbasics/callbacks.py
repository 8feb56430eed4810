"""Callbacks Lightning does not ship."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch

from dlbasics.errors import NonFiniteLossError


class FiniteLossGuard(L.Callback):
    """Stop at the first NaN/inf training loss, before it reaches a checkpoint.

    Raising (rather than ``trainer.should_stop``) skips the end-of-epoch checkpoint, so
    ``last.ckpt`` keeps the last good weights.
    """

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule,
                           outputs: Any, batch: Any, batch_idx: int) -> None:
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        if loss is not None and not torch.isfinite(loss).all():
            ckpt = getattr(trainer.checkpoint_callback, "last_model_path", "") or "none yet"
            raise NonFiniteLossError(
                f"the training loss became {loss.item()} at epoch {trainer.current_epoch}, "
                f"step {trainer.global_step}. Lower the learning rate (optimizer.lr=...) or clip "
                f"gradients (trainer.gradient_clip_val=1.0). Last good checkpoint: {ckpt}"
            )

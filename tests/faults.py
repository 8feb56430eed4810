"""Faults injected into real training runs by the tests (through a Hydra override such as
``+callbacks.kill._target_=tests.faults.KillAt``): a hard kill at a chosen point."""

from __future__ import annotations

import os
import signal
from typing import Any

import lightning as L


class KillAt(L.Callback):
    """SIGKILL this process (no clean-up, as the OOM killer or a pulled plug would):

    ``where=batch``: at the end of optimizer step ``step``, before its checkpoint is written;
    ``where=after_checkpoint``: as step ``step + 1`` starts, right after step ``step``'s
    checkpoint was written; ``where=validation``: at the first validation batch once
    ``global_step >= step``.
    """

    def __init__(self, step: int, where: str = "batch") -> None:
        self.step, self.where = step, where

    @staticmethod
    def _kill() -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    def on_train_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        if self.where == "batch" and trainer.global_step == self.step:
            self._kill()

    def on_train_batch_start(self, trainer: L.Trainer, *args: Any) -> None:
        if self.where == "after_checkpoint" and trainer.global_step == self.step:
            self._kill()

    def on_validation_batch_start(self, trainer: L.Trainer, *args: Any) -> None:
        if self.where == "validation" and not trainer.sanity_checking and \
                trainer.global_step >= self.step:
            self._kill()

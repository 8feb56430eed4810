"""The shared LightningModule: loss, torchmetrics, optimizer and scheduler from config, L1/L2.

Every network trains through ``LitModule`` (classification and regression); language modelling
and seq2seq subclass it (``LitLanguageModel``, ``LitSeq2Seq``) and override ``forward_batch`` and
``build_metrics``. Checkpoints carry what rebuilds the run (``dlbasics.checkpoint``).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from typing import Any

import lightning as L
import torch
import torchmetrics
from torch import nn
from torch.nn import functional as F
from torch.optim.lr_scheduler import CosineAnnealingLR, OneCycleLR

from dlbasics.checkpoint import run_payload
from dlbasics.spec import DataSpec

log = logging.getLogger(__name__)
OptimizerFactory = Callable[..., torch.optim.Optimizer]
SchedulerFactory = Callable[..., torch.optim.lr_scheduler.LRScheduler]


class LitModule(L.LightningModule):
    def __init__(
        self,
        net: nn.Module,
        spec: DataSpec,
        optimizer: OptimizerFactory,
        scheduler: SchedulerFactory | None = None,
        scheduler_interval: str = "step",
        l1: float = 0.0,
        label_smoothing: float = 0.0,
    ) -> None:
        """
        Args:
            optimizer: a partial ``torch.optim`` class (Hydra ``_partial_: true``) taking params;
                its ``weight_decay`` (L2) applies to weight matrices only, not biases or norms.
            scheduler: a partial LR scheduler taking the optimizer, or None; ``total_steps`` /
                ``T_max`` are filled from the trainer when the scheduler needs them.
            scheduler_interval: ``step`` (every batch) or ``epoch``.
            l1: coefficient of an explicit L1 penalty on weight matrices added to the training loss.
            label_smoothing: of the cross-entropy loss (classification, LM, seq2seq).
        """
        super().__init__()
        self.net = net
        self.spec = spec
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.scheduler_interval = scheduler_interval
        self.l1 = l1
        self.label_smoothing = label_smoothing
        self.run_config: dict[str, Any] | None = None  # the resolved config, saved in checkpoints
        # per stage, this epoch's (sum of loss x n, sum of n): n examples, or tokens
        self._loss_sums: dict[str, torch.Tensor] = {}
        # transfer learning: the learning rate of ``net`` minus its head, times optimizer.lr
        self.backbone_lr_scale = 1.0
        metrics = self.build_metrics()
        self.train_metrics = metrics.clone(prefix="train/")
        self.val_metrics = metrics.clone(prefix="val/")
        self.test_metrics = metrics.clone(prefix="test/")
        # the test split's confusion matrix (rows: true class), read by the run-folder plots
        self.test_confusion = (torchmetrics.classification.MulticlassConfusionMatrix(spec.num_classes)
                               if spec.task == "classification" else None)
        if spec.target_std is not None:
            self.register_buffer("target_mean", torch.tensor(spec.target_mean), persistent=False)
            self.register_buffer("target_std", torch.tensor(spec.target_std), persistent=False)

    # ---- what subclasses override -------------------------------------------------------------
    def build_metrics(self) -> torchmetrics.MetricCollection:
        if self.spec.task == "classification":
            n = self.spec.num_classes
            return torchmetrics.MetricCollection(
                {"acc": torchmetrics.classification.MulticlassAccuracy(n, average="micro")}
            )
        return torchmetrics.MetricCollection({
            "mse": torchmetrics.MeanSquaredError(),
            "mae": torchmetrics.MeanAbsoluteError(),
            "r2": torchmetrics.R2Score(),
        })

    def forward_batch(self, batch: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Return (loss, predictions for metrics, targets for metrics, batch size)."""
        x, y = batch
        out = self(x)
        if self.spec.task == "classification":
            loss = F.cross_entropy(out, y, label_smoothing=self.label_smoothing)
            return loss, out.detach(), y, torch.tensor(len(y))
        pred, target = self.original_units(out.detach()), self.original_units(y)  # for metrics
        return F.mse_loss(out, y), pred.flatten(), target.flatten(), torch.tensor(len(y))

    # ---- the shared loop ------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def _step(self, batch: Any, stage: str) -> torch.Tensor:
        loss, pred, target, n = self.forward_batch(batch)
        self._add_to_epoch_loss(stage, loss, n)
        if stage == "train":
            self._log_step_loss(loss)
        if pred is not None:  # None: nothing to score (seq2seq training)
            getattr(self, f"{stage}_metrics").update(pred, target)
            if stage == "test" and self.test_confusion is not None:
                self.test_confusion.update(pred.argmax(-1), target)
        return loss

    # Each self.log call costs Lightning up to a millisecond (it copies its records), as much as
    # a whole step of a small model. So nothing is logged per batch: each stage sums its loss
    # (weighted by examples or tokens) and updates its torchmetrics every batch, and logs
    # <stage>/loss and the metrics once, at the epoch's end. Training also logs the step loss
    # as train/loss_step on the steps the logger writes (trainer.log_every_n_steps). The
    # training sums and metrics go into checkpoints, so a run resumed mid-epoch ends with the
    # same epoch figures.
    def _add_to_epoch_loss(self, stage: str, loss: torch.Tensor, n: torch.Tensor) -> None:
        # in float32 whatever the precision: a half-precision sum loses the epoch's figure (and
        # float16 overflows past 65,504 tokens)
        loss = loss.detach().float()
        weight = n.to(device=loss.device, dtype=torch.float32)
        sums = self._loss_sums.get(stage)
        if sums is None:
            sums = self._loss_sums[stage] = torch.zeros(2, device=loss.device)
        sums += torch.stack([loss * weight, weight])

    def _log_step_loss(self, loss: torch.Tensor) -> None:
        trainer = self.trainer
        if trainer.fast_dev_run or (trainer.global_step + 1) % trainer.log_every_n_steps == 0:
            self.log("train/loss_step", loss, on_step=True, on_epoch=False, prog_bar=True)

    def _start_epoch(self, stage: str) -> None:
        self._loss_sums.pop(stage, None)
        getattr(self, f"{stage}_metrics").reset()

    def _log_epoch(self, stage: str) -> None:
        """Log ``<stage>/loss`` (the mean over every example or token of all processes) and the
        stage's metrics (torchmetrics gather their own states)."""
        sums = self._loss_sums.get(stage)
        if sums is not None:
            total, count = self.trainer.strategy.reduce(sums.clone(), reduce_op="sum")
            # the same value on every process now; sync_dist only keeps Lightning from warning
            self.log(f"{stage}/loss", total / count, prog_bar=True, sync_dist=True)
        metrics = getattr(self, f"{stage}_metrics")
        if any(m.update_called for m in metrics.values()):
            self.log_dict(metrics, prog_bar=stage != "train")

    def on_train_epoch_start(self) -> None:
        if self.trainer.fit_loop.epoch_loop.batch_progress.current.ready == 0:  # not resumed
            self._loss_sums.pop("train", None)                                   # mid-epoch

    def on_train_epoch_end(self) -> None:
        self._log_epoch("train")

    def on_validation_epoch_start(self) -> None:
        self._start_epoch("val")

    def on_validation_epoch_end(self) -> None:
        self._log_epoch("val")

    def on_test_epoch_start(self) -> None:
        self._start_epoch("test")
        if self.test_confusion is not None:
            self.test_confusion.reset()

    def on_test_epoch_end(self) -> None:
        self._log_epoch("test")

    def _epoch_state(self) -> dict[str, Any]:
        metrics = {name: {"state": {k: getattr(m, k) for k in m._defaults},
                          "updates": m._update_count}
                   for name, m in self.train_metrics.items()}
        return {"loss_sums": self._loss_sums.get("train"), "metrics": metrics}

    def _load_epoch_state(self, state: dict[str, Any]) -> None:
        if state["loss_sums"] is None:
            self._loss_sums.pop("train", None)
        else:
            self._loss_sums["train"] = state["loss_sums"]
        for name, saved in state["metrics"].items():
            metric = self.train_metrics[name]
            for k, v in saved["state"].items():
                setattr(metric, k, v)
            metric._update_count = saved["updates"]
            metric._computed = None

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        loss = self._step(batch, "train")
        if self.l1:
            loss = loss + self.l1 * sum(p.abs().sum() for p in self._decayed_params())
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._step(batch, "val")

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self._step(batch, "test")

    def predict_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> torch.Tensor:
        """Class probabilities (B, classes), or predicted values (B, targets) in the target's
        original units; a batch is the inputs alone or (inputs, targets)."""
        x = batch[0] if isinstance(batch, list | tuple) else batch
        out = self(x)
        if self.spec.task == "classification":
            return out.softmax(-1)
        return self.original_units(out)

    def original_units(self, y: torch.Tensor) -> torch.Tensor:
        """Regression values in the target's units (the data module may standardise targets)."""
        return y if self.spec.target_std is None else y * self.target_std + self.target_mean

    # ---- optimisation -----------------------------------------------------------------------------
    def _decayed_params(self) -> list[nn.Parameter]:
        return [p for p in self.parameters() if p.requires_grad and p.ndim >= 2]

    def _hidden_matrices(self) -> list[nn.Parameter]:
        """The 2-D weights of hidden layers: not embeddings, position tables or the head (nor a
        weight tied to one of them)."""
        from dlbasics.models.blocks import Positions

        head = getattr(self.net, "head", None)
        outer = {id(p) for m in self.modules() if isinstance(m, nn.Embedding | Positions)
                 for p in m.parameters()}
        if isinstance(head, nn.Module):
            outer |= {id(p) for p in head.parameters()}
        return [p for p in self.parameters()
                if p.requires_grad and p.ndim == 2 and id(p) not in outer]

    def _param_groups(self, wd: float) -> list[dict[str, Any]]:
        """Weight matrices decayed, the rest not; with ``backbone_lr_scale != 1`` the backbone
        (``net`` minus its head) gets its own groups, whose ``lr_scale`` multiplies the rate.
        Parameters frozen for fine-tuning (``callbacks.FreezeBackbone``) are in the groups too:
        without a gradient the optimizer skips them until they are unfrozen."""
        thawable = getattr(self, "thawable_params", set())
        trainable = [p for p in self.parameters() if p.requires_grad or id(p) in thawable]
        backbone = ({id(p) for n, p in self.net.named_parameters() if not n.startswith("head.")}
                    if self.backbone_lr_scale != 1.0 else set())
        groups = []
        for first, (scale, part) in enumerate((
                (1.0, [p for p in trainable if id(p) not in backbone]),
                (self.backbone_lr_scale, [p for p in trainable if id(p) in backbone]))):
            for decayed in (True, False):
                params = [p for p in part if (p.ndim >= 2) == decayed]
                if params or (decayed and first == 0):  # at least one group, never empty ones
                    groups.append({"params": params, "weight_decay": wd if decayed else 0.0,
                                   "lr_scale": scale})
        return groups

    def configure_optimizers(self) -> Any:
        optimizer, scheduler = self.build_optimizer(
            lambda: self._schedule_length(self.scheduler_interval))
        if scheduler is None:
            return optimizer
        return {"optimizer": optimizer,
                "lr_scheduler": {"scheduler": scheduler, "interval": self.scheduler_interval}}

    def build_optimizer(self, total: int | Callable[[], int]) -> tuple[
            torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler | None]:
        """The optimizer (groups of ``_param_groups``) and the scheduler, whose ``total_steps``
        / ``T_max`` is ``total`` (steps or epochs, per ``scheduler_interval``; a callable is asked
        only when a scheduler needs it) unless the config gives it. The one construction the
        Trainer and the plain-PyTorch reference loop (``dlbasics.plain``) both use."""
        given = getattr(self.optimizer_factory, "keywords", {})
        groups = self._param_groups(given.get("weight_decay", 0.0))
        cls = getattr(self.optimizer_factory, "func", self.optimizer_factory)
        if getattr(cls, "splits_hidden_matrices", False):  # e.g. Muon for hidden matrices only
            hidden = {id(p) for p in self._hidden_matrices()}
            split = []
            for group in groups:
                for muon in (True, False):
                    params = [p for p in group["params"] if (id(p) in hidden) == muon]
                    if params:
                        split.append({**group, "params": params, **({"muon": True} if muon else {})})
            groups = split
        if "lr" in given:
            for group in groups:
                group["lr"] = given["lr"] * group["lr_scale"]
        optimizer = self.optimizer_factory(groups)
        factory = self.scheduler_factory
        if factory is None:
            return optimizer, None
        params = inspect.signature(getattr(factory, "func", factory)).parameters
        given = getattr(factory, "keywords", {})
        needed = [k for k in ("total_steps", "T_max") if k in params and k not in given]
        length = total() if needed and callable(total) else total
        extra: dict[str, Any] = {k: length for k in needed}
        if isinstance(given.get("max_lr"), int | float):  # one-cycle: each group's own peak
            extra["max_lr"] = [given["max_lr"] * g["lr_scale"] for g in optimizer.param_groups]
        return optimizer, factory(optimizer, **extra)

    def on_train_start(self) -> None:
        # A resumed run's loader position: Lightning reads the loaders to count the steps the
        # scheduler needs before it restores its loops, and then skips restoring the loaders.
        fit_loop = self.trainer.fit_loop
        if fit_loop.restarting and fit_loop._combined_loader_states_to_load:
            fit_loop._load_combined_loader_states()
        self._stretch_schedule()

    def _stretch_schedule(self) -> None:
        """A run resumed with another budget (e.g. a larger ``trainer.max_epochs``) stretches
        its schedule to the new length: one-cycle's phases scale with it, cosine's period becomes
        the new length, and the learning rate follows the new curve from the current step."""
        for config in self.trainer.lr_scheduler_configs:
            sched, total = config.scheduler, self._schedule_length(config.interval)
            if isinstance(sched, OneCycleLR) and sched.total_steps != total:
                scale = total / sched.total_steps
                for phase in sched._schedule_phases:
                    phase["end_step"] = (phase["end_step"] + 1) * scale - 1
                log.info("learning-rate schedule stretched from %d to %d steps",
                         sched.total_steps, total)
                sched.total_steps = total
            elif isinstance(sched, CosineAnnealingLR) and sched.T_max != total:
                sched.T_max = total

    def _schedule_length(self, interval: str) -> int:
        return int(self.trainer.estimated_stepping_batches if interval == "step"
                   else self.trainer.max_epochs)

    # ---- checkpoints carry what rebuilds the run --------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        datamodule = getattr(self.trainer, "datamodule", None) if self._trainer else None
        data_state = datamodule.data_state() if hasattr(datamodule, "data_state") else {}
        checkpoint.update(run_payload(self.run_config, self.spec, data_state))
        checkpoint["dlbasics_training_epoch"] = self._epoch_state()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if "dlbasics_training_epoch" in checkpoint:
            self._load_epoch_state(checkpoint["dlbasics_training_epoch"])

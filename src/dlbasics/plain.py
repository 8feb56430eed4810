"""A recipe trained by a hand-written PyTorch loop, without Lightning: the reference that the
speedrun (``scripts/speedrun.py``) and the overhead benchmark (``scripts/bench_overhead.py``)
compare ``python -m dlbasics.train`` against.

It builds everything the way training does, from the same composed config: the data module
(``build_datamodule``: same splits, same training loader and order), the network and its
runtime options (``build_module``: same initialisation after ``L.seed_everything(seed)``),
the optimizer and scheduler (``LitModule.build_optimizer``), and it seeds torch before every
batch as ``SeededSteps`` does, so augmentation and dropout draw the same numbers. So "same
model, same data order, same schedule" holds by construction (``tests/test_speedrun.py``
checks that both give the same losses). What it leaves out is what the reference loops of
nanoGPT or airbench leave out: training metrics, logging, checkpoints, progress bar, the
non-finite guard. It validates when the Trainer would (every ``check_val_every_n_epoch``
epochs, or every ``val_check_interval`` steps when that is an integer), computing the loss
(and accuracy for classification) over the whole validation split.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import lightning as L
import torch
from omegaconf import DictConfig
from torch.nn import functional as F

from dlbasics.build import build_datamodule, build_module
from dlbasics.callbacks import reached, seed_generators, step_seed
from dlbasics.errors import UserError
from dlbasics.lit import LitModule


@dataclass
class Target:
    """Stop at the first validation where ``monitor`` reaches ``value``."""

    monitor: str
    value: float
    mode: str = "min"


@dataclass
class PlainRun:
    steps: int = 0
    seconds: float = 0.0  # from the first batch to the end of the stopping validation (or the end)
    validations: list[dict[str, float]] = field(default_factory=list)
    reached: dict[str, Any] | None = None
    test: dict[str, float] = field(default_factory=dict)


def loss_of(module: LitModule, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor,
                                                                          torch.Tensor]:
    """The training loss the LitModule computes (its cross-entropy / MSE, plus L1), written out;
    returns (loss, outputs)."""
    out = module.net(x)
    task = module.spec.task
    if task == "language_model":
        loss = F.cross_entropy(out.flatten(0, 1), y.flatten(), ignore_index=module.spec.pad_index,
                               label_smoothing=module.label_smoothing)
    elif task == "classification":
        loss = F.cross_entropy(out, y, label_smoothing=module.label_smoothing)
    elif task == "regression":
        loss = F.mse_loss(out, y)
    else:
        raise UserError(f"the plain loop trains classification, regression and language models, "
                        f"not {task}")
    if module.l1:
        loss = loss + module.l1 * sum(p.abs().sum() for p in module._decayed_params())
    return loss, out


@torch.inference_mode()
def evaluate(module: LitModule, loader: Any, autocast: Any) -> dict[str, float]:
    """Mean loss over every example (every token for a language model), and accuracy."""
    net, task = module.net, module.spec.task
    net.eval()
    total, count, correct = 0.0, 0, 0
    device = next(net.parameters()).device
    for x, y in loader:
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        with autocast():
            loss, out = loss_of(module, x, y)
        n = int((y != module.spec.pad_index).sum()) if task == "language_model" else len(y)
        total += float(loss) * n
        count += n
        if task == "classification":
            correct += int((out.argmax(-1) == y).sum())
    net.train()
    result = {"loss": total / count}
    if task == "classification":
        result["acc"] = correct / count
    return result


def schedule(cfg: DictConfig, batches_per_epoch: int) -> tuple[int, int]:
    """(epochs, optimizer steps) the Trainer would run for ``trainer.max_epochs/max_steps``."""
    epochs, max_steps = int(cfg.trainer.max_epochs), int(cfg.trainer.max_steps)
    if int(cfg.trainer.get("accumulate_grad_batches") or 1) != 1:
        raise UserError("the plain loop does not accumulate gradients: "
                        "trainer.accumulate_grad_batches must be 1")
    if epochs < 0 and max_steps < 0:
        raise UserError("the plain loop needs trainer.max_epochs or trainer.max_steps")
    steps = [n for n in (max_steps, epochs * batches_per_epoch if epochs >= 0 else -1) if n >= 0]
    total = min(steps)
    return -(-total // batches_per_epoch), total


def validation_points(cfg: DictConfig) -> Callable[[int, bool, int], bool]:
    """Whether the Trainer validates after global step ``step`` (``end``: the epoch's last batch)."""
    every = cfg.trainer.get("check_val_every_n_epoch")
    interval = cfg.trainer.get("val_check_interval")
    if interval is not None and (not isinstance(interval, int) or every is not None):
        raise UserError("the plain loop validates every check_val_every_n_epoch epochs, or every "
                        "val_check_interval steps (an integer, with check_val_every_n_epoch=null)")
    if interval is not None:
        return lambda step, end, epoch: step % interval == 0
    return lambda step, end, epoch: end and (epoch + 1) % every == 0


def run_device(cfg: DictConfig) -> torch.device:
    """The device the Trainer would pick for ``trainer.accelerator`` (one device)."""
    accelerator = str(cfg.trainer.get("accelerator", "auto"))
    if accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available():
        return torch.device("cuda")
    if accelerator in ("gpu", "cuda"):
        raise UserError("trainer.accelerator asks for a GPU and none is available")
    return torch.device("cpu")


def batches(loader: Any, seed: int, first: int, device: torch.device
            ) -> Iterator[tuple[int, Any]]:
    """The loader's batches, torch seeded before each one is read (as ``SeededSteps`` does)."""
    it, number = iter(loader), first
    while True:
        seed_generators(step_seed(seed, 0, number), device)
        try:
            batch = next(it)
        except StopIteration:
            return
        yield number, batch
        number += 1


def fit(cfg: DictConfig, target: Target | None = None, test: bool = True,
        on_batch: Callable[[int, Any], None] | None = None,
        on_loss: Callable[[int, float], None] | None = None) -> PlainRun:
    """Train the recipe ``cfg`` (a composed ``train`` config) by hand; see the module docstring.

    ``on_batch(number, batch)`` and ``on_loss(step, loss)`` let tests watch the data and losses.
    """
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule = build_datamodule(cfg)
    module = build_module(cfg, datamodule.spec)
    loader = datamodule.train_dataloader()
    epochs, total = schedule(cfg, len(loader))
    clip = cfg.trainer.get("gradient_clip_val")
    precision = str(cfg.trainer.get("precision"))
    if precision not in ("32-true", "32", "bf16-mixed"):
        raise UserError(f"the plain loop runs trainer.precision=32-true or bf16-mixed, "
                        f"not {precision}")
    device = run_device(cfg)
    module.to(device)
    autocast: Callable[[], Any] = (
        (lambda: torch.autocast(device.type, dtype=torch.bfloat16)) if precision == "bf16-mixed"
        else contextlib.nullcontext)
    interval = module.scheduler_interval
    optimizer, scheduler = module.build_optimizer(total if interval == "step" else epochs)
    validate_now = validation_points(cfg)
    val_loader = datamodule.val_dataloader()
    run, step, net = PlainRun(), 0, module.net
    net.train()
    start = time.perf_counter()
    for epoch in range(epochs):
        for i, (number, (x, y)) in enumerate(batches(loader, cfg.seed, step, device)):
            if on_batch is not None:
                on_batch(number, (x, y))
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            with autocast():
                loss, _ = loss_of(module, x, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if clip:
                torch.nn.utils.clip_grad_norm_(module.parameters(), clip)
            optimizer.step()
            if scheduler is not None and interval == "step":
                scheduler.step()
            step += 1
            if on_loss is not None:
                on_loss(step, loss.item())
            last = i + 1 == len(loader) or step == total
            if validate_now(step, last, epoch):
                scores = {f"val/{k}": v for k, v in evaluate(module, val_loader, autocast).items()}
                run.validations.append({"step": step, **scores,
                                        "seconds": time.perf_counter() - start})
                if target is not None and reached(scores[target.monitor], target.value,
                                                  target.mode):
                    run.reached = {"monitor": target.monitor, "target": target.value,
                                   "value": scores[target.monitor], "step": step,
                                   "epoch": epoch, "seconds": time.perf_counter() - start}
                    break
            if step == total:
                break
        if scheduler is not None and interval == "epoch":
            scheduler.step()
        if run.reached is not None or step == total:
            break
    run.steps, run.seconds = step, time.perf_counter() - start
    if test:
        run.test = {f"test/{k}": v for k, v in
                    evaluate(module, datamodule.test_dataloader(), autocast).items()}
    return run

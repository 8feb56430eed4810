"""The LitModule's epoch figures: each stage's loss is the mean over every example of the split
(a last, smaller batch weighs less), its metrics are over the whole split, and both are logged
once per epoch, not once per batch (each self.log costs Lightning about a millisecond)."""

from __future__ import annotations

import lightning as L
import pytest
import torch
from torch.nn import functional as F

from dlbasics.build import build_datamodule, build_module
from dlbasics.speedrun import compose_recipe


def _module_and_data(tmp_path, data: str, batch_size: int):
    cfg = compose_recipe(["model=mlp", f"data={data}", f"data.batch_size={batch_size}"], tmp_path)
    L.seed_everything(0, verbose=False)
    datamodule = build_datamodule(cfg)
    datamodule.setup("fit")
    return build_module(cfg, datamodule.spec), datamodule


def _trainer(**options) -> L.Trainer:
    return L.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False,
                     accelerator="cpu", devices=1, **options)


@pytest.mark.parametrize("data", ["digits", "diabetes"])
def test_validation_loss_and_metrics_are_over_every_example(tmp_path, data):
    module, datamodule = _module_and_data(tmp_path, data, batch_size=31)
    loader = datamodule.val_dataloader()
    sizes = [len(y) for _, y in loader]
    assert len(set(sizes)) > 1  # a last, smaller batch: a mean of batch means would be wrong
    logged = _trainer().validate(module, datamodule=datamodule, verbose=False)[0]

    module.eval()
    with torch.no_grad():
        outputs, targets = zip(*((module(x), y) for x, y in loader), strict=True)
    out, y = torch.cat(outputs), torch.cat(targets)
    if data == "digits":
        loss = F.cross_entropy(out, y, label_smoothing=module.label_smoothing)
        assert logged["val/acc"] == pytest.approx((out.argmax(-1) == y).float().mean().item())
    else:
        loss = F.mse_loss(out, y)
        error = module.original_units(out) - module.original_units(y)
        assert logged["val/mae"] == pytest.approx(error.abs().mean().item(), rel=1e-5)
    assert logged["val/loss"] == pytest.approx(loss.item(), rel=1e-5)


def test_a_second_validation_starts_from_zero(tmp_path):
    """The sums and metrics of one validation do not leak into the next."""
    module, datamodule = _module_and_data(tmp_path, "digits", batch_size=64)
    trainer = _trainer()
    first = trainer.validate(module, datamodule=datamodule, verbose=False)[0]
    again = trainer.validate(module, datamodule=datamodule, verbose=False)[0]
    assert again == pytest.approx(first, rel=1e-6)


@pytest.mark.parametrize("stage", ["validate", "test"])
def test_logging_is_once_per_epoch_not_per_batch(tmp_path, stage):
    calls = {}
    for batches in (1, 4):
        module, datamodule = _module_and_data(tmp_path / str(batches), "digits", batch_size=16)
        count: list[str] = []

        def counted(name, value, *args, _log=module.log, _count=count, **kwargs):
            _count.append(name)
            return _log(name, value, *args, **kwargs)

        module.log = counted
        trainer = _trainer(limit_val_batches=batches, limit_test_batches=batches)
        getattr(trainer, stage)(module, datamodule=datamodule, verbose=False)
        calls[batches] = sorted(count)
    prefix = "val" if stage == "validate" else "test"
    assert calls[1] == calls[4] == [f"{prefix}/acc", f"{prefix}/loss"]


def test_epoch_sums_stay_float32_under_half_precision(tmp_path):
    """bf16 losses (trainer.precision=bf16-true) summed in bf16 would stop counting past a few
    thousand examples; the sums are float32."""
    module, _ = _module_and_data(tmp_path, "digits", batch_size=64)
    for _ in range(2000):
        module._add_to_epoch_loss("val", torch.tensor(0.5, dtype=torch.bfloat16), torch.tensor(64))
    total, count = module._loss_sums["val"]
    assert module._loss_sums["val"].dtype == torch.float32
    assert (total.item(), count.item()) == (64_000.0, 128_000.0)

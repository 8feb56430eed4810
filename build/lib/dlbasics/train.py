"""Train a model on a dataset: ``python -m dlbasics.train model=cnn data=mnist5k trainer.max_epochs=3``.

A thin Hydra entry point: compose the config, build data -> spec -> network -> LitModule ->
trainer, fit, test the best checkpoint, and write ``metrics.json`` into the run folder.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import lightning as L
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from dlbasics.build import build_datamodule, build_module, build_trainer, check_pair, finetune_from
from dlbasics.checkpoint import KEY, read_checkpoint
from dlbasics.cli import entry_point, to_float_dict, write_json

log = logging.getLogger("dlbasics.train")


def train(cfg: DictConfig) -> dict[str, Any]:
    """Fit and test; returns the metrics written to ``<output_dir>/metrics.json``."""
    if HydraConfig.initialized():
        with open_dict(cfg):
            cfg.choices = dict(HydraConfig.get().runtime.choices)
    check_pair(cfg)
    resume = read_checkpoint(cfg.ckpt_path) if cfg.get("ckpt_path") else None
    trainer = build_trainer(cfg)  # before any data is read: a missing GPU is said at once
    L.seed_everything(cfg.seed, workers=True)

    datamodule = build_datamodule(cfg, resume[KEY].get("data_state") if resume else None)
    module = build_module(cfg, datamodule.spec)
    if cfg.finetune.get("ckpt_path"):
        ckpt = read_checkpoint(cfg.finetune.ckpt_path, option="finetune.ckpt_path")
        fresh = finetune_from(module, ckpt, cfg.finetune.freeze)
        log.info("fine-tuning from %s; trained from scratch: %s", cfg.finetune.ckpt_path, fresh)

    start = time.perf_counter()
    trainer.fit(module, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"), weights_only=True)
    fit_seconds = time.perf_counter() - start
    metrics = to_float_dict(trainer.callback_metrics)

    if cfg.get("test"):
        best = getattr(trainer.checkpoint_callback, "best_model_path", "") or None
        trainer.test(module, datamodule=datamodule, ckpt_path=best, weights_only=True)
        metrics.update(to_float_dict(trainer.callback_metrics))

    output_dir = Path(cfg.paths.output_dir)
    metrics.update(fit_seconds=round(fit_seconds, 2), epochs=trainer.current_epoch,
                   global_step=trainer.global_step, world_size=trainer.world_size)
    if trainer.is_global_zero:
        write_json(output_dir / "metrics.json", metrics)
        shown = {k: round(v, 4) for k, v in metrics.items() if k.startswith("test/")}
        print(f"test metrics: {shown}")
        print(f"run folder: {output_dir}")
    return metrics


@entry_point("train")
def main(cfg: DictConfig) -> float | None:
    metrics = train(cfg)
    metric = cfg.get("optimized_metric")
    return metrics.get(metric) if metric else None


if __name__ == "__main__":
    main()

"""Train a model on a dataset: ``python -m dlbasics.train model=cnn data=mnist5k trainer.max_epochs=3``.

A thin Hydra entry point: compose the config, build data -> spec -> network -> task -> trainer,
fit, test the best checkpoint, and write ``metrics.json`` into the run folder.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import hydra
import lightning as L
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig, open_dict

from dlbasics.build import build_task, build_trainer, check_pair, finetune_from
from dlbasics.runtime import (
    load_checkpoint,
    register_resolvers,
    to_float_dict,
    user_errors,
    write_metrics,
)

log = logging.getLogger("dlbasics.train")
register_resolvers()


def train(cfg: DictConfig) -> dict[str, Any]:
    """Fit and test; returns the metrics written to ``<output_dir>/metrics.json``."""
    if HydraConfig.initialized():
        with open_dict(cfg):
            cfg.choices = dict(HydraConfig.get().runtime.choices)
    check_pair(cfg)
    resume = cfg.get("ckpt_path")
    if resume:
        load_checkpoint(resume)  # a clear error now rather than a traceback from the trainer
    L.seed_everything(cfg.seed, workers=True)

    datamodule = instantiate(cfg.data)
    task = build_task(cfg, datamodule.spec)
    if cfg.finetune.get("ckpt_path"):
        fresh = finetune_from(task, load_checkpoint(cfg.finetune.ckpt_path), cfg.finetune.freeze)
        log.info("fine-tuning from %s; trained from scratch: %s", cfg.finetune.ckpt_path, fresh)

    trainer = build_trainer(cfg)
    start = time.perf_counter()
    trainer.fit(task, datamodule=datamodule, ckpt_path=resume)
    fit_seconds = time.perf_counter() - start
    metrics = to_float_dict(trainer.callback_metrics)

    if cfg.get("test"):
        best = getattr(trainer.checkpoint_callback, "best_model_path", "") or None
        trainer.test(task, datamodule=datamodule, ckpt_path=best, weights_only=False)
        metrics.update(to_float_dict(trainer.callback_metrics))

    output_dir = Path(cfg.paths.output_dir)
    metrics.update(fit_seconds=round(fit_seconds, 2), epochs=trainer.current_epoch,
                   global_step=trainer.global_step)
    if trainer.is_global_zero:
        write_metrics(output_dir, metrics)
        shown = {k: round(v, 4) for k, v in metrics.items() if k.startswith("test/")}
        print(f"test metrics: {shown}")
        print(f"run folder: {output_dir}")
    return metrics


@hydra.main(version_base="1.3", config_path="../../conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    with user_errors():
        metrics = train(cfg)
    metric = cfg.get("optimized_metric")
    return metrics.get(metric) if metric else None


if __name__ == "__main__":
    main()

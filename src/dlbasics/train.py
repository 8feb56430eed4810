"""Train a model on a dataset: ``python -m dlbasics.train model=cnn data=mnist5k trainer.max_epochs=3``.

A thin Hydra entry point: check the config, build data -> spec -> network -> LitModule ->
trainer, fit, test the best checkpoint of this run folder, and write ``metrics.json`` (always
valid JSON, with a ``status``) and ``run.json`` (how it ran) into the run folder.
``resume=<run folder>`` continues a run in its own folder from its newest checkpoint.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import lightning as L
from hydra.core.hydra_config import HydraConfig
from lightning.fabric.utilities.rank_zero import rank_zero_only
from omegaconf import DictConfig, OmegaConf, open_dict

from dlbasics.build import (
    build_datamodule,
    build_module,
    build_trainer,
    check_pair,
    finetune_callbacks,
    finetune_from,
)
from dlbasics.callbacks import StopAtTarget
from dlbasics.checkpoint import KEY, read_checkpoint
from dlbasics.cli import entry_point, print_config_tree, to_float_dict, write_json
from dlbasics.errors import NonFiniteError
from dlbasics.lit import LIT_MODULES
from dlbasics.run_folder import (
    best_checkpoint,
    check_command_line,
    check_fits,
    saved_choices,
    write_record,
)
from dlbasics.validation import init_hints, validate_config

log = logging.getLogger("dlbasics.train")


def module_hints() -> dict[str, dict[str, Any]]:
    """The declared types of the ``module.*`` options (null: the module's default)."""
    hints = {k: v for cls in set(LIT_MODULES.values()) for k, v in init_hints(cls).items()}
    return {"module": {k: v | None for k, v in hints.items()},
            "finetune": {"ckpt_path": str | None, "freeze": bool, "reset_head": bool}}


def train(cfg: DictConfig) -> dict[str, Any]:
    """Fit and test; returns the metrics written to ``<output_dir>/metrics.json``."""
    if HydraConfig.initialized():
        with open_dict(cfg):  # the config groups chosen (model=cnn, ...); a resumed run's own
            cfg.choices = (saved_choices(Path(cfg.resume)) if cfg.get("resume")
                           else dict(HydraConfig.get().runtime.choices))
    validate_config(cfg, module_hints())
    if cfg.get("print_config") and rank_zero_only.rank == 0:
        print_config_tree(cfg)
    check_pair(cfg)
    resume = read_checkpoint(cfg.ckpt_path) if cfg.get("ckpt_path") else None
    if resume:
        with open_dict(cfg):  # a resumed config has no choices of its own: the saved ones
            cfg.choices = cfg.choices or resume[KEY]["config"].get("choices") or {}
        check_fits(cfg.ckpt_path, resume[KEY]["config"], cfg)
    # before any data is read: a missing GPU or a bad finetune option is said at once
    trainer = build_trainer(cfg, extra_callbacks=tuple(finetune_callbacks(cfg)))
    L.seed_everything(cfg.seed, workers=True)

    datamodule = build_datamodule(cfg, resume[KEY].get("data_state") if resume else None)
    module = build_module(cfg, datamodule.spec)
    if cfg.finetune.get("ckpt_path"):
        ckpt = read_checkpoint(cfg.finetune.ckpt_path, option="finetune.ckpt_path")
        fresh = finetune_from(module, ckpt, bool(cfg.finetune.get("reset_head")))
        module.backbone_lr_scale = float(cfg.finetune.get("backbone_lr_scale", 1.0))
        log.info("fine-tuning from %s; trained from scratch: %s", cfg.finetune.ckpt_path, fresh)

    output_dir = Path(cfg.paths.output_dir)
    if trainer.is_global_zero:
        sizes = {s: len(getattr(datamodule, f"{s}_set")) for s in ("train", "val", "test")}
        write_record(output_dir, cfg, datamodule.spec, trainer, sizes)
    for logger in trainer.loggers:  # the whole resolved config, tags included
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
    start = time.perf_counter()
    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"),
                    weights_only=True)
    except NonFiniteError as err:
        if trainer.is_global_zero:
            write_json(output_dir / "metrics.json", {
                **to_float_dict(trainer.callback_metrics), "status": f"failed: {err}",
                "epochs": trainer.current_epoch, "global_step": trainer.global_step})
        raise
    fit_seconds = time.perf_counter() - start
    # epoch figures only: a step's loss (train/loss_step) or the learning rate (lr-*) is the
    # value of whichever step logged last, which a resumed run may not have reached again; both
    # stay in the CSV log
    metrics: dict[str, Any] = {k: v for k, v in to_float_dict(trainer.callback_metrics).items()
                               if not (k.endswith("_step") or k.startswith("lr-"))}
    stopper = trainer.early_stopping_callback
    status = next((c.stop_reason for c in trainer.callbacks if getattr(c, "stop_reason", None)),
                  "finished")  # e.g. a pruned trial
    if stopper is not None and stopper.stopped_epoch:
        status = (f"stopped early at epoch {stopper.stopped_epoch}: {stopper.monitor} did not "
                  f"improve for {stopper.patience} validations")
    for c in trainer.callbacks:  # a speedrun's target says why it stopped, whatever else did
        if isinstance(c, StopAtTarget) and c.result is not None:
            metrics["target_reached"] = c.result
            status = c.stop_reason

    if cfg.get("test"):  # val and test figures of one and the same checkpoint: the best
        best = best_checkpoint(trainer, output_dir)
        for stage in (trainer.validate, trainer.test):
            stage(module, datamodule=datamodule, ckpt_path=best, weights_only=True, verbose=False)
            metrics.update(to_float_dict(trainer.callback_metrics))

    if any(type(lg).__name__ == "WandbLogger" for lg in trainer.loggers):
        import wandb

        wandb.finish()  # a W&B run per training run, also for jobs of one multirun process
    metrics.update(fit_seconds=round(fit_seconds, 2), epochs=trainer.current_epoch,
                   global_step=trainer.global_step, world_size=trainer.world_size, status=status,
                   parameters=sum(p.numel() for p in module.net.parameters()))
    if trainer.is_global_zero:
        write_json(output_dir / "metrics.json", metrics)
        shown = {k: round(v, 4) for k, v in metrics.items() if k.startswith("test/")}
        print(f"test metrics: {shown}")
        print(f"run folder: {output_dir}")
    return metrics


@entry_point("train", prepare_argv=check_command_line)
def main(cfg: DictConfig) -> float | None:
    metrics = train(cfg)
    metric = cfg.get("optimized_metric")
    return metrics.get(metric) if metric else None


if __name__ == "__main__":
    main()

"""Evaluate a checkpoint on its dataset's test split: ``python -m dlbasics.eval ckpt_path=...``.

The checkpoint carries the run's resolved config, its DataSpec and the data module's state (e.g. a
vocabulary), so the model and data are rebuilt exactly as they were trained.
"""

from __future__ import annotations

from pathlib import Path

import hydra
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from dlbasics.build import build_task, build_trainer
from dlbasics.errors import UserError
from dlbasics.runtime import (
    load_checkpoint,
    register_resolvers,
    to_float_dict,
    user_errors,
    write_metrics,
)
from dlbasics.spec import DataSpec

register_resolvers()


def evaluate(cfg: DictConfig) -> dict[str, float]:
    if not cfg.get("ckpt_path"):
        raise UserError("give the checkpoint to evaluate: python -m dlbasics.eval ckpt_path=PATH")
    ckpt = load_checkpoint(cfg.ckpt_path)
    run = OmegaConf.create(ckpt["dlbasics"]["config"])
    if cfg.get("data"):  # e.g. data.data_dir=... when the files moved
        run.data = OmegaConf.merge(run.data, cfg.data)
    datamodule = instantiate(run.data)
    state = ckpt.get(type(datamodule).__qualname__)
    if state:
        datamodule.load_state_dict(state)
    spec = DataSpec.from_dict(ckpt["dlbasics"]["spec"])
    task = build_task(run, spec)
    eval_cfg = OmegaConf.merge(run, {"trainer": cfg.trainer, "logger": cfg.logger,
                                     "callbacks": cfg.callbacks, "paths": cfg.paths})
    trainer = build_trainer(eval_cfg)
    trainer.test(task, datamodule=datamodule, ckpt_path=cfg.ckpt_path, weights_only=False)
    metrics = to_float_dict(trainer.callback_metrics)
    if trainer.is_global_zero:
        write_metrics(Path(cfg.paths.output_dir), {**metrics, "ckpt_path": str(cfg.ckpt_path)})
        print(f"test metrics: { {k: round(v, 4) for k, v in metrics.items()} }")
        print(f"run folder: {cfg.paths.output_dir}")
    return metrics


@hydra.main(version_base="1.3", config_path="../../conf", config_name="eval")
def main(cfg: DictConfig) -> None:
    with user_errors():
        evaluate(cfg)


if __name__ == "__main__":
    main()

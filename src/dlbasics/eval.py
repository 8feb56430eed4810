"""Evaluate a checkpoint on its dataset's test split: ``python -m dlbasics.eval ckpt_path=...``.

The run is rebuilt from the checkpoint alone (``build.load_run``: its config, DataSpec, data
module state and weights), so model and data are exactly as they were trained.
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from dlbasics.build import build_trainer, load_run
from dlbasics.cli import entry_point, to_float_dict, write_json


def evaluate(cfg: DictConfig) -> dict[str, float]:
    run = load_run(cfg.ckpt_path, data=cfg.get("data"))
    trainer = build_trainer(OmegaConf.merge(run.config, {
        "trainer": cfg.trainer, "logger": cfg.logger, "callbacks": cfg.callbacks,
        "paths": cfg.paths}))
    trainer.test(run.module, datamodule=run.datamodule)
    metrics = to_float_dict(trainer.callback_metrics)
    if trainer.is_global_zero:
        write_json(Path(cfg.paths.output_dir) / "metrics.json",
                   {**metrics, "ckpt_path": str(cfg.ckpt_path)})
        print(f"test metrics: { {k: round(v, 4) for k, v in metrics.items()} }")
        print(f"run folder: {cfg.paths.output_dir}")
    return metrics


main = entry_point("eval", checkpoint_usage="to evaluate: python -m dlbasics.eval ckpt_path=PATH")(evaluate)


if __name__ == "__main__":
    main()

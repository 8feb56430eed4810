"""Compose a run from a config: data module -> spec -> network -> task -> trainer.

Shared by ``train``, ``eval`` and the generation CLIs so they rebuild a run the same way.
"""

from __future__ import annotations

import importlib
from typing import Any

import lightning as L
from hydra.utils import get_class, instantiate
from lightning.pytorch.callbacks import LearningRateMonitor
from omegaconf import DictConfig, OmegaConf

from dlbasics.errors import IncompatibleDataError, UserError
from dlbasics.registry import compatible_data, compatible_models
from dlbasics.spec import DataSpec

TASK_CLASSES = {
    "classification": "dlbasics.task:Task",
    "regression": "dlbasics.task:Task",
    "language_model": "dlbasics.tasks.language_model:LanguageModelTask",
    "seq2seq": "dlbasics.tasks.seq2seq:Seq2SeqTask",
}


def _name(cfg: DictConfig, group: str) -> str:
    choices = cfg.get("choices") or {}
    return choices.get(group) or cfg[group]["_target_"].rsplit(".", 1)[-1]


def check_pair(cfg: DictConfig) -> None:
    """Fail before reading any data when the model cannot consume the dataset."""
    model_cls = get_class(cfg.model._target_)
    data_cls = get_class(cfg.data._target_)
    if model_cls.accepts(data_cls.input_kind, data_cls.task):
        return
    model, data = _name(cfg, "model"), _name(cfg, "data")
    ok_data = ", ".join(compatible_data(cfg.model._target_)) or "none"
    ok_models = ", ".join(compatible_models(cfg.data._target_)) or "none"
    raise IncompatibleDataError(
        f"model={model} cannot train on data={data} ({data_cls.input_kind} inputs, "
        f"{data_cls.task}). model={model} works with data: {ok_data}; "
        f"data={data} works with model: {ok_models}."
    )


def task_class(spec: DataSpec) -> type[L.LightningModule]:
    module, name = TASK_CLASSES[spec.task].split(":")
    return getattr(importlib.import_module(module), name)


def build_task(cfg: DictConfig, spec: DataSpec) -> L.LightningModule:
    # spec is passed after instantiation: Hydra would turn a dataclass kwarg into a config
    model = instantiate(cfg.model, _partial_=True, _convert_="all")
    try:
        net = model(spec=spec)
    except (TypeError, ValueError) as err:  # a bad override such as model.depth=two
        raise UserError(f"could not build the model ({err}). Check the model.* overrides you "
                        f"gave, or print the composed config with `--cfg job`.") from None
    scheduler = instantiate(cfg.scheduler) if cfg.get("scheduler") else None
    task = task_class(spec)(
        net=net, spec=spec, optimizer=instantiate(cfg.optimizer), scheduler=scheduler,
        **OmegaConf.to_container(cfg.get("task") or {}, resolve=True),
    )
    task.run_config = OmegaConf.to_container(cfg, resolve=True)
    return task


def build_trainer(cfg: DictConfig, **overrides: Any) -> L.Trainer:
    callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c]
    loggers = [instantiate(c) for c in (cfg.get("logger") or {}).values() if c]
    if not loggers:  # nothing to log learning rates to (logger=none)
        callbacks = [c for c in callbacks if not isinstance(c, LearningRateMonitor)]
    return instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False, **overrides)


def finetune_from(task: L.LightningModule, ckpt: dict[str, Any], freeze: bool) -> list[str]:
    """Transfer learning: copy every matching tensor of ``net`` from a checkpoint.

    The head is kept fresh when its shape differs (another number of classes). Returns the
    names of the tensors that were not copied. ``freeze`` trains only the head.
    """
    own = task.net.state_dict()
    theirs = {k.removeprefix("net."): v for k, v in ckpt["state_dict"].items()
              if k.startswith("net.")}
    copied = {k: v for k, v in theirs.items() if k in own and own[k].shape == v.shape}
    if not copied:
        raise UserError("finetune.ckpt_path shares no weights with this model: use a checkpoint "
                        "of the same model config (model=... and its options).")
    task.net.load_state_dict(copied, strict=False)
    if freeze:
        for name, p in task.net.named_parameters():
            p.requires_grad = name.startswith("head.")
    return sorted(set(own) - set(copied))

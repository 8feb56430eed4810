"""Compose a run from a config (data module -> spec -> network -> LitModule -> Trainer), and
rebuild one from a checkpoint: ``load_run`` is the one way every entry point starts from a
checkpoint (eval, generate, translate, predict, explain).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

import lightning as L
import torch
from hydra.errors import InstantiationException
from hydra.utils import get_class, instantiate
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.fabric.utilities.rank_zero import rank_zero_only
from lightning.pytorch.accelerators import CPUAccelerator
from lightning.pytorch.callbacks import LearningRateMonitor
from omegaconf import DictConfig, OmegaConf, open_dict
from torch import nn

from dlbasics.callbacks import FreezeBackbone
from dlbasics.checkpoint import KEY, SafeCheckpointIO, read_checkpoint
from dlbasics.configs import RUNTIME_MODEL_KEYS, compatible_data, compatible_models
from dlbasics.data.base import DataModule
from dlbasics.errors import IncompatibleDataError, UserError
from dlbasics.lit import LIT_MODULES, LitModule
from dlbasics.spec import DataSpec


def choice(cfg: DictConfig, group: str) -> str:
    """The config file chosen for a group (``model=cnn`` -> "cnn"), else its class name."""
    choices = cfg.get("choices") or {}
    return choices.get(group) or cfg[group]["_target_"].rsplit(".", 1)[-1]


def check_pair(cfg: DictConfig) -> None:
    """Fail before reading any data when the model cannot consume the dataset."""
    model_cls = get_class(cfg.model._target_)
    data_cls = get_class(cfg.data._target_)
    if model_cls.accepts(data_cls.input_kind, data_cls.task):
        return
    model, data = choice(cfg, "model"), choice(cfg, "data")
    ok_data = ", ".join(compatible_data(cfg.model._target_)) or "none"
    ok_models = ", ".join(compatible_models(cfg.data._target_)) or "none"
    raise IncompatibleDataError(
        f"model={model} cannot train on data={data} ({data_cls.input_kind} inputs, "
        f"{data_cls.task}). model={model} works with data: {ok_data}; "
        f"data={data} works with model: {ok_models}."
    )


def build_datamodule(cfg: DictConfig, data_state: dict[str, Any] | None = None) -> DataModule:
    """Instantiate the data module, restore a saved state (vocabularies), download what is
    missing (rank 0; Lightning waits for it again inside ``fit``) and set it up."""
    datamodule = instantiate(cfg.data)
    if data_state:
        datamodule.load_data_state(data_state)
    if rank_zero_only.rank == 0:
        datamodule.prepare_data()
    datamodule.setup("fit")
    return datamodule


def _channels_last_inputs(module: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(a.contiguous(memory_format=torch.channels_last)
                 if isinstance(a, torch.Tensor) and a.dim() == 4 else a for a in args)


def apply_runtime_options(net: nn.Module, compile: bool = False, channels_last: bool = False) -> None:
    """``channels_last``: 4-D weights and inputs in the channels-last (NHWC) memory format, which
    convolution kernels prefer; a network without 4-D tensors is unchanged. ``compile``:
    ``torch.compile`` in place (``nn.Module.compile``: the state-dict keys stay the same, so
    checkpoints load either way); it compiles at the first call, inside the fit time."""
    if channels_last:
        net.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        net.register_forward_pre_hook(_channels_last_inputs)
    if compile:
        net.compile()


BUILT_ARGS = {"self", "net", "spec", "optimizer", "scheduler", "scheduler_interval", "options"}


def build_module(cfg: DictConfig, spec: DataSpec) -> LitModule:
    """network(spec) inside the LitModule of ``spec.task``, with the optimizer, the scheduler
    and the ``module.*`` options of the config."""
    model_cfg = cfg.model.copy()
    with open_dict(model_cfg):
        runtime = {k: model_cfg.pop(k, False) for k in RUNTIME_MODEL_KEYS}
    model = instantiate(model_cfg, _partial_=True, _convert_="all")
    try:
        # spec is passed after instantiation: Hydra would turn a dataclass kwarg into a config
        net = model(spec=spec)
    except (TypeError, ValueError) as err:  # a bad override such as model.depth=two
        raise UserError(f"could not build the model ({err}). Check the model.* overrides you "
                        f"gave, or print the composed config with `--cfg job`.") from None
    apply_runtime_options(net, **runtime)
    scheduler: dict[str, Any] = OmegaConf.to_container(cfg.scheduler, resolve=True)  # type: ignore[assignment]
    interval = scheduler.pop("interval", "step")
    cls = LIT_MODULES[spec.task]
    options = {k: v for k, v in (cfg.get("module") or {}).items() if v is not None}
    known = sorted({p for c in cls.__mro__ if issubclass(c, LitModule)
                    for p in inspect.signature(c.__init__).parameters} - BUILT_ARGS)
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise UserError(f"module.{unknown[0]} is not an option of {spec.task} models (theirs: "
                        f"{', '.join(known)}): set it to null or remove it.")
    try:
        module = cls(net=net, spec=spec, optimizer=instantiate(cfg.optimizer),
                     scheduler=instantiate(scheduler) if scheduler else None,
                     scheduler_interval=interval, **options)
    except ValueError as err:
        raise UserError(str(err)) from None
    module.run_config = OmegaConf.to_container(cfg, resolve=True)  # type: ignore[assignment]
    return module


def build_trainer(cfg: DictConfig, extra_callbacks: tuple[L.Callback, ...] = ()) -> L.Trainer:
    callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c]
    callbacks += list(extra_callbacks)
    loggers = [instantiate(c) for c in (cfg.get("logger") or {}).values() if c]
    if not loggers:  # nothing to log learning rates to (logger=none)
        callbacks = [c for c in callbacks if not isinstance(c, LearningRateMonitor)]
    try:
        trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False,
                              plugins=[SafeCheckpointIO()])
    except InstantiationException as err:
        if not isinstance(err.__cause__, MisconfigurationException):
            raise
        raise UserError(f"the trainer settings do not fit this machine ({err.__cause__}). "
                        f"Without a GPU use trainer=cpu, or trainer.accelerator=cpu with "
                        f"trainer=ddp.") from None
    if cfg.trainer.get("sync_batchnorm") and isinstance(trainer.accelerator, CPUAccelerator):
        raise UserError("trainer.sync_batchnorm=true needs GPUs (SyncBatchNorm runs on CUDA "
                        "only): set it to false on the CPU.")
    return trainer


@dataclass
class Run:
    """A trained run rebuilt from its checkpoint: the weights are loaded and in eval mode."""

    config: DictConfig  # the run's resolved config (with any data overrides given)
    spec: DataSpec
    datamodule: DataModule  # vocabularies restored; call ``setup`` to read the data
    module: LitModule
    checkpoint: dict[str, Any]


EXAMPLE_RUNS = {  # a command that trains a checkpoint of each task
    "classification": "python -m dlbasics.train experiment=mnist5k_cnn",
    "regression": "python -m dlbasics.train model=mlp data=diabetes",
    "language_model": "python -m dlbasics.train experiment=shakespeare_transformer",
    "seq2seq": "python -m dlbasics.train experiment=numbers_bahdanau",
}


def load_run(ckpt_path: str, data: DictConfig | dict[str, Any] | None = None,
             tasks: tuple[str, ...] | None = None) -> Run:
    """Rebuild config, spec, data module (with its saved state) and LitModule from a checkpoint.

    ``data`` overrides the saved data config (e.g. ``{"data_dir": ...}`` when the files moved);
    ``tasks``: the tasks the caller can handle (a UserError for a checkpoint of another one).
    """
    ckpt = read_checkpoint(ckpt_path)
    payload = ckpt[KEY]
    spec = DataSpec.from_dict(payload["spec"])
    if tasks and spec.task not in tasks:
        model = (payload["config"].get("choices") or {}).get("model", "?")
        raise UserError(f"ckpt_path={ckpt_path} is a {spec.task} checkpoint (model={model}), "
                        f"not a {' or '.join(t.replace('_', ' ') for t in tasks)} one: train one "
                        f"first, e.g. {EXAMPLE_RUNS[tasks[0]]}")
    config = OmegaConf.create(payload["config"])
    if data:
        config.data = OmegaConf.merge(config.data, data)
    datamodule = instantiate(config.data)
    datamodule.load_data_state(payload.get("data_state") or {})
    module = build_module(config, spec)
    try:
        module.load_state_dict(ckpt["state_dict"])
    except RuntimeError as err:
        raise UserError(f"ckpt_path={ckpt_path}: its weights do not fit the model its config "
                        f"describes ({str(err).splitlines()[0]})") from None
    return Run(config, spec, datamodule, module.eval(), ckpt)


def finetune_from(module: LitModule, ckpt: dict[str, Any], reset_head: bool = False) -> list[str]:
    """Transfer learning: copy every matching tensor of ``net`` from a checkpoint.

    The head is kept fresh when its shape differs (another number of classes) or ``reset_head``.
    Returns the names of the tensors that were not copied.
    """
    own = module.net.state_dict()
    theirs = {k.removeprefix("net."): v for k, v in ckpt["state_dict"].items()
              if k.startswith("net.") and not (reset_head and k.startswith("net.head."))}
    copied = {k: v for k, v in theirs.items() if k in own and own[k].shape == v.shape}
    if not copied:
        raise UserError("finetune.ckpt_path shares no weights with this model: use a checkpoint "
                        "of the same model config (model=... and its options).")
    module.net.load_state_dict(copied, strict=False)
    return sorted(set(own) - set(copied))


def finetune_callbacks(cfg: DictConfig) -> list[L.Callback]:
    """The ``finetune.*`` options as callbacks (checked before any data is read)."""
    options = cfg.get("finetune") or {}
    if not options.get("ckpt_path"):
        for key, idle in (("freeze", False), ("unfreeze_at_epoch", None),
                          ("backbone_lr_scale", 1.0), ("reset_head", False)):
            if options.get(key, idle) != idle:
                raise UserError(f"finetune.{key}={options[key]} applies when fine-tuning: give "
                                f"the pre-trained weights with finetune.ckpt_path=PATH")
        return []
    if options.get("unfreeze_at_epoch") is not None and not options.get("freeze"):
        raise UserError("finetune.unfreeze_at_epoch thaws a frozen backbone: add "
                        "finetune.freeze=true (or drop unfreeze_at_epoch to train it all along)")
    return [FreezeBackbone(options.get("unfreeze_at_epoch"))] if options.get("freeze") else []

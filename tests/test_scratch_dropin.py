"""The from-scratch layers and optimizers as drop-ins inside the real models, through the CLI config."""

from __future__ import annotations

import pytest

from dlbasics.build import build_datamodule, build_module
from dlbasics.configs import choices
from dlbasics.scratch import layers as scratch_layers
from dlbasics.train import train
from tests.test_models import torch_layers_with_a_scratch_twin


@pytest.mark.parametrize(("model", "data"), [("mlp", "digits"), ("cnn", "digits"),
                                             ("resnet", "digits"), ("cnn", "mnist1d"),
                                             ("rnn", "mnist1d"), ("transformer", "mnist1d")])
def test_scratch_impl_and_optimizer_train(model, data, make_cfg):
    cfg = make_cfg(f"model={model}", f"data={data}", "model.impl=scratch",
                   "optimizer=scratch_adamw", "trainer.max_steps=3", "trainer.max_epochs=1",
                   "trainer.limit_val_batches=1", "callbacks=none", "logger=none",
                   "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false")
    metrics = train(cfg)
    assert metrics["global_step"] == 3
    # the scratch layers really are in the network, and no torch layer that has a scratch twin
    net = build_module(cfg, build_datamodule(cfg).spec).net
    assert any(type(m).__module__.startswith("dlbasics.scratch") for m in net.modules())
    assert not torch_layers_with_a_scratch_twin(net)


def test_every_torch_optimizer_has_a_scratch_twin():
    # muon: speedrun tooling that pairs torch.optim.Muon with AdamW (dlbasics.optim), not one
    # of the classic algorithms the scratch package teaches
    torch_ones = {c for c in choices("optimizer") if not c.startswith("scratch_")} - {"muon"}
    assert {f"scratch_{c}" for c in torch_ones} <= set(choices("optimizer"))
    assert scratch_layers.Conv2d.__module__.startswith("dlbasics.scratch")

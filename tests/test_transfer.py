"""Transfer learning: a frozen backbone stays exactly as pre-trained (BatchNorm statistics
included) until ``finetune.unfreeze_at_epoch``, the backbone's learning rate is scaled, the head
is fresh when the classes differ; and the data options of the experiment (digits at 28x28 in
MNIST's margin, a stratified subset of N labelled images)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from dlbasics.build import build_module, finetune_from
from dlbasics.checkpoint import read_checkpoint
from dlbasics.data.images import Digits
from dlbasics.spec import DataSpec
from tests.clirun import FAST, call

SMALL_CNN = ["model=cnn", "data=digits", "model.channels=[4,8]", "model.hidden=16",
             *FAST, "logger=none", "test=false"]


def weights(ckpt: Path) -> dict[str, torch.Tensor]:
    return {k.removeprefix("net."): v for k, v in read_checkpoint(ckpt)["state_dict"].items()
            if k.startswith("net.")}


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("pretrained")
    code, _, err = call("dlbasics.train", *SMALL_CNN, "trainer.max_epochs=1",
                        f"hydra.run.dir={root}")
    assert code == 0, err[-2000:]
    return root / "checkpoints" / "last.ckpt"


def finetune(root: Path, pretrained: Path, *args: str) -> dict[str, torch.Tensor]:
    code, _, err = call("dlbasics.train", *SMALL_CNN, f"finetune.ckpt_path={pretrained}", *args,
                        f"hydra.run.dir={root}")
    assert code == 0, err[-2000:]
    return weights(root / "checkpoints" / "last.ckpt")


def changed(before: dict[str, torch.Tensor], after: dict[str, torch.Tensor]) -> set[str]:
    return {k for k in before if not torch.equal(before[k], after[k])}


def test_a_frozen_backbone_stays_pretrained_until_it_thaws(pretrained, tmp_path):
    before = weights(pretrained)
    head = {k for k in before if k.startswith("head.")}
    frozen = finetune(tmp_path / "frozen", pretrained, "finetune.freeze=true",
                      "trainer.max_epochs=2")
    assert changed(before, frozen) == head  # BatchNorm running statistics included
    thawed = finetune(tmp_path / "thawed", pretrained, "finetune.freeze=true",
                      "finetune.unfreeze_at_epoch=1", "trainer.max_epochs=2")
    assert changed(before, thawed) == set(before)  # every weight and BatchNorm statistic


def test_the_backbone_learns_at_a_scaled_rate(make_cfg):
    from dlbasics.data.images import Digits as DigitsModule

    cfg = make_cfg("model=mlp", "data=digits", "scheduler=none", "optimizer.lr=0.01")
    spec = DigitsModule().spec
    module = build_module(cfg, spec)
    module.backbone_lr_scale = 0.1
    groups = module.configure_optimizers().param_groups
    rates = {id(p): g["lr"] for g in groups for p in g["params"]}
    for name, p in module.named_parameters():
        assert rates[id(p)] == pytest.approx(0.01 if name.startswith("net.head.") else 0.001)
    assert sum(len(g["params"]) for g in groups) == len(list(module.parameters()))


def test_one_cycle_peaks_at_each_groups_own_rate(pretrained, tmp_path):
    code, _, err = call("dlbasics.train", *SMALL_CNN, f"finetune.ckpt_path={pretrained}",
                        "finetune.backbone_lr_scale=0.1", "trainer.max_epochs=1",
                        "logger=csv", f"hydra.run.dir={tmp_path}")
    assert code == 0, err[-2000:]
    import csv

    with open(tmp_path / "csv" / "metrics.csv") as f:
        rows = [r for r in csv.DictReader(f) if r.get("lr-AdamW/pg1")]
    head, backbone = float(rows[0]["lr-AdamW/pg1"]), float(rows[0]["lr-AdamW/pg3"])
    assert backbone == pytest.approx(0.1 * head)


def test_the_head_is_fresh_when_the_classes_differ(pretrained, make_cfg):
    cfg = make_cfg(*SMALL_CNN[:4])
    three = DataSpec("classification", "image", (1, 8, 8), num_classes=3)
    module = build_module(cfg, three)
    fresh = finetune_from(module, read_checkpoint(pretrained))
    assert fresh == ["head.bias", "head.weight"]
    ten = build_module(cfg, Digits().spec)
    assert finetune_from(ten, read_checkpoint(pretrained)) == []
    assert finetune_from(ten, read_checkpoint(pretrained), reset_head=True) == ["head.bias",
                                                                                "head.weight"]


def test_digits_at_mnist_size_and_a_labelled_subset(tmp_path):
    full = Digits(data_dir=str(tmp_path))
    full.setup()
    subsets = []
    for seed in (0, 1):
        dm = Digits(data_dir=str(tmp_path), image_size=28, image_margin=4, train_size=50,
                    seed=seed)
        dm.setup()
        assert dm.spec.input_shape == (1, 28, 28)
        images, labels = dm.train_set.images, dm.train_set.labels
        assert images.shape == (50, 1, 28, 28) and np.bincount(labels.numpy()).tolist() == [5] * 10
        assert images[..., :4, :].max() == 0 and images[..., 4:24, 4:24].max() > 200  # the frame
        assert len(dm.val_set) == len(full.val_set) if seed == 0 else True
        assert len(dm.test_set) == len(full.test_set) == 360
        pixels = images.float() / 255
        assert dm.mean[0] == pytest.approx(pixels.mean().item(), abs=1e-4)
        assert dm.input_state()["margin"] == 4 and dm.input_state()["shape"] == [1, 28, 28]
        subsets.append(set(map(tuple, images.flatten(1).tolist())))
    assert subsets[0] != subsets[1]  # another seed, another subset

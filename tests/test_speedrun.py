"""Speedruns (``scripts/speedrun.py``): the run stops at the first validation that reaches the
target, the plain-PyTorch loop and ``python -m dlbasics.train`` train on the same data in the same
order with the same losses, and ``model.compile`` / ``model.channels_last`` work on the CPU."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import lightning as L
import pytest
import torch

from dlbasics import plain
from dlbasics.build import build_datamodule, build_module
from dlbasics.callbacks import StepTimes, StopAtTarget, ThrottledProgressBar
from dlbasics.configs import PROJECT_ROOT
from dlbasics.readme import block
from dlbasics.speedrun import SPEEDRUNS, compose_recipe, summarise
from dlbasics.train import train
from tests.clirun import load_script

SEEN: list[tuple[str, int, str, float]] = []  # (side, batch number, batch digest, loss)
QUIET = ["callbacks.progress_bar=null", "trainer.enable_progress_bar=false",
         "trainer.enable_model_summary=false"]
# tiny budgets: 2 epochs of 6 batches each
LM = ["experiment=shakespeare_transformer", "data.samples_per_epoch=72", "trainer.max_steps=12",
      "trainer.max_epochs=2", "model.n_layer=1", "model.n_embd=32", "model.n_head=2",
      "data.block_size=16", "data.eval_batch_size=512"]
# 384 training digits: 6 batches of 64
IMAGES = ["experiment=mnist5k_cnn", "trainer.max_epochs=2", "data.val_fraction=0.904",
          "data.batch_size=64", "model.channels=[8,16]", "model.hidden=16"]


def digest(batch: Any) -> str:
    return hashlib.sha1(b"".join(t.contiguous().numpy().tobytes() for t in batch)).hexdigest()


class Recorder(L.Callback):
    """Records every training batch and loss of a Lightning run into ``SEEN``."""

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        number = trainer.fit_loop.epoch_loop.batch_progress.total.ready - 1
        SEEN.append(("lightning", number, digest(batch), float(outputs["loss"])))


def both_sides(overrides: list[str], tmp_path: Path) -> tuple[list, list]:
    SEEN.clear()
    cfg = compose_recipe([*overrides, *QUIET, "+callbacks.recorder._target_=tests.test_speedrun"
                          ".Recorder", "test=false"], tmp_path / "lightning")
    train(cfg)
    light = list(SEEN)
    cfg = compose_recipe(overrides, tmp_path / "plain")
    plain_seen: list = []
    losses: dict[int, float] = {}
    run = plain.fit(cfg, test=False, on_batch=lambda n, b: plain_seen.append((n, digest(b))),
                    on_loss=lambda step, loss: losses.__setitem__(step, loss))
    mine = [("plain", n, d, losses[i + 1]) for i, (n, d) in enumerate(plain_seen)]
    assert run.steps == len(mine)
    return light, mine


@pytest.mark.parametrize("recipe", [LM, IMAGES], ids=["chars", "augmented-images"])
def test_plain_loop_and_lightning_see_the_same_batches_and_losses(recipe, tmp_path):
    """Same windows / augmented images in the same order over two epochs, and the same loss at
    every step: the same initialisation, optimizer, schedule and dropout/augmentation draws."""
    light, mine = both_sides(recipe, tmp_path)
    assert len(light) == len(mine) == 12
    assert [r[1:3] for r in light] == [r[1:3] for r in mine]
    assert len({r[2] for r in light}) == 12  # 12 different batches, not one repeated
    torch.testing.assert_close([r[3] for r in light], [r[3] for r in mine], rtol=1e-4, atol=1e-5)


def test_speedrun_stops_at_the_first_validation_that_reaches_the_target(tmp_path):
    """A target the 3rd of 6 validations reaches (taken from a run without one): both sides
    stop right there, and metrics.json records the step and time."""
    common = [*LM, "trainer.max_steps=36", "trainer.max_epochs=6"]
    free = plain.fit(compose_recipe(common, tmp_path / "free"), test=False)
    losses = [v["val/loss"] for v in free.validations]
    assert len(losses) == 6 and losses[2] < min(losses[:2])
    target = (losses[2] + min(losses[:2])) / 2  # reached at the 3rd validation, not before
    stopped = plain.fit(compose_recipe(common, tmp_path / "p"), plain.Target("val/loss", target))
    assert stopped.reached is not None and stopped.reached["step"] == 18 == stopped.steps
    assert stopped.reached["value"] == pytest.approx(losses[2], rel=1e-6)

    out = tmp_path / "lightning"
    cfg = compose_recipe([*common, *QUIET, f"callbacks.stop_at_target.target={target}"], out)
    metrics = train(cfg)
    hit = metrics["target_reached"]
    assert hit["step"] == 18 and metrics["global_step"] == 18, metrics
    assert hit["value"] == pytest.approx(losses[2], rel=1e-4) and hit["value"] <= target
    assert 0 < hit["seconds"] <= metrics["fit_seconds"]
    assert "reached the target val/loss <= " in metrics["status"]
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["target_reached"]["step"] == 18
    # the per-epoch metrics still reach the CSV log
    csv = (out / "csv" / "metrics.csv").read_text().splitlines()
    assert "val/loss" in csv[0] and sum(",18," in line or line.startswith("2,") for line in csv)


def test_a_target_not_reached_runs_the_whole_budget(tmp_path):
    cfg = compose_recipe([*LM, *QUIET, "callbacks.stop_at_target.target=0.01"], tmp_path)
    metrics = train(cfg)
    assert "target_reached" not in metrics and metrics["global_step"] == 12
    assert metrics["status"] == "finished"


def test_stop_at_target_checks_its_mode():
    with pytest.raises(ValueError, match="'min' or 'max'"):
        StopAtTarget(mode="lowest")
    assert StopAtTarget().target is None  # the default callback only watches


# compile: slow, a fresh venv's inductor compiles its C++ kernels first (~1 min on 2 cores)
@pytest.mark.parametrize("option", [pytest.param("model.compile=true", marks=pytest.mark.slow),
                                    "model.channels_last=true"])
def test_runtime_options_train_on_cpu_and_keep_the_outputs(option, tmp_path):
    """compile (torch.compile, inductor on the CPU) and channels-last give the outputs of the
    plain network, keep the state-dict keys (checkpoints load either way), and train."""
    base = compose_recipe(IMAGES, tmp_path / "a")
    other = compose_recipe([*IMAGES, option], tmp_path / "b")
    dm = build_datamodule(base)
    torch.manual_seed(0)
    net = build_module(base, dm.spec).net.eval()
    torch.manual_seed(0)
    changed = build_module(other, dm.spec).net.eval()
    assert list(net.state_dict()) == list(changed.state_dict())
    x = torch.randn(5, 1, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(changed(x), net(x), rtol=1e-4, atol=1e-4)
    if option == "model.channels_last=true":
        assert changed.features[0].weight.is_contiguous(memory_format=torch.channels_last)
    metrics = train(compose_recipe([*IMAGES, *QUIET, option, "trainer.max_epochs=1"],
                                   tmp_path / "run"))
    assert metrics["global_step"] == 6 and 0 <= metrics["test/acc"] <= 1


def test_runtime_options_are_validated(tmp_path):
    from dlbasics.errors import UserError
    from dlbasics.validation import validate_config

    with pytest.raises(UserError, match="model.compile='yes': must be true or false"):
        validate_config(compose_recipe([*IMAGES, "model.compile=yes"], tmp_path))


def test_summary_gives_median_range_and_ratio():
    runs = [{"side": s, "seed": i, "reached": True, "seconds": t, "step": 10 * i, "samples": i,
             "test": {"test/acc": 0.99}} for i, (s, t) in
            enumerate([("lightning", 2.0), ("plain", 1.0), ("lightning", 4.0), ("plain", 2.0),
                       ("lightning", 3.0), ("plain", 1.5)])]
    summary = summarise(runs, "test/acc")
    assert summary["lightning"]["seconds"] == {"median": 3.0, "min": 2.0, "max": 4.0, "n": 3}
    assert summary["ratio"] == 2.0
    assert set(SPEEDRUNS) == {"shakespeare", "mnist5k", "mnist1d"}


def test_batch_augmentation_shifts_whole_pixels_and_leaves_eval_splits_alone(tmp_path):
    """Shifts only: every augmented image is its original moved by whole pixels (zeros coming
    in), as torchvision's pad-and-crop; validation images are not augmented."""
    from dlbasics.data.images import Augment, Digits

    torch.manual_seed(0)
    x = torch.rand(40, 1, 8, 8)
    out = Augment(crop_padding=2)(x)
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    for image, original in zip(out, padded):
        errors = [(image - original[:, 2 - dy:10 - dy, 2 - dx:10 - dx]).abs().max()
                  for dy in range(-2, 3) for dx in range(-2, 3)]
        assert min(errors) < 1e-5
    dm = Digits(data_dir=str(tmp_path), rotation=10, crop_padding=1)
    dm.setup()
    a, b = dm.train_set.__getitems__([0, 1, 2]), dm.train_set.__getitems__([0, 1, 2])
    assert not torch.equal(a[0][0], b[0][0])
    assert torch.equal(dm.val_set[3][0], dm.val_set.__getitems__([3])[0][0])


def test_muon_trains_hidden_matrices_and_resumes(tmp_path):
    """optimizer=muon: Muon steps the hidden matrices only, one scheduler drives both halves,
    and the state round-trips through a checkpoint's state dict."""
    cfg = compose_recipe([*LM, "optimizer=muon"], tmp_path)
    dm = build_datamodule(cfg)
    module = build_module(cfg, dm.spec)
    optimizer, scheduler = module.build_optimizer(12)
    muon = {id(p) for g in optimizer.param_groups if g.get("muon") for p in g["params"]}
    names = {n for n, p in module.named_parameters() if id(p) in muon}
    assert names and all(n.startswith("net.blocks.") and n.endswith("weight") for n in names)
    assert not any("wte" in n or "positions" in n or "ln" in n for n in names)
    losses = []
    x, y = next(iter(dm.train_dataloader()))
    for _ in range(6):
        loss, _ = plain.loss_of(module, x, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    assert optimizer.muon.param_groups[0]["lr"] == optimizer.param_groups[0]["lr"]
    state = optimizer.state_dict()
    fresh, _ = module.build_optimizer(12)
    fresh.load_state_dict(state)
    assert fresh.muon.param_groups[0] is fresh.param_groups[0]
    assert all(torch.equal(fresh.muon.state[p]["momentum_buffer"],
                           optimizer.muon.state[p]["momentum_buffer"])
               for p in optimizer.muon.state)


def test_readme_speedrun_table_is_generated_from_results():
    """The README's speedrun block is ``table(results/speedrun.json)``: no figure typed by hand."""
    results = json.loads((PROJECT_ROOT / "results" / "speedrun.json").read_text())
    readme = (PROJECT_ROOT / "README.md").read_text()
    assert block(readme, "speedrun").strip() == load_script("speedrun").table(results).strip()
    assert all(entry.get("command") for entry in results["targets"].values()
               if entry["variants"].get("recipe"))


def test_options_are_compared_with_the_first_variant_even_when_it_misses_the_target():
    def variant(seconds, reached):
        light = {"reached": reached, "test": {"median": 0.98, "min": 0.97, "max": 0.99, "n": 3}}
        if seconds:
            light["seconds"] = {"median": seconds, "min": seconds, "max": seconds, "n": 1}
        return {"overrides": [], "runs": [], "summary": {"lightning": light}}

    group = {"command": "python scripts/speedrun.py mnist5k --variant base= ...",
             "environment": {"date": "2026-11-30"},
             "variants": {"base": variant(None, "0/3"), "compile": variant(40.0, "1/3")}}
    results = {"targets": {"mnist5k": {"variants": {}, "options": [group]}}}
    text = load_script("speedrun").table(results)
    rows = [line for line in text.splitlines() if line.startswith("| mnist5k |")]
    assert len(rows) == 2 and all(row.endswith("| - |") for row in rows)  # no reference time
    assert "mnist5k options: `python scripts/speedrun.py mnist5k --variant base= ...`" in text
    assert "mnist5k: `" not in text  # no recipe row measured, none named


def _fit_boring(bar: L.Callback, *callbacks: L.Callback, **options: Any) -> None:
    from lightning.pytorch.demos.boring_classes import BoringModel

    options = {"max_epochs": 1, "limit_train_batches": 9, "limit_val_batches": 4,
               "num_sanity_val_steps": 0, **options}
    L.Trainer(callbacks=[bar, *callbacks], logger=False, enable_checkpointing=False,
              enable_model_summary=False, **options).fit(BoringModel())


@pytest.mark.parametrize(("options", "train_seen", "val_seen"), [
    ({}, [0, 8], [3]),
    ({"max_steps": 7}, [0, 6], []),  # stops before the epoch's validation
    ({"max_epochs": -1, "max_steps": 16}, [0, 8, 6], [3]),  # 2 epochs, the second cut short
])
def test_throttled_progress_bar_skips_updates_but_not_a_loops_last(options, train_seen, val_seen,
                                                                   monkeypatch):
    from lightning.pytorch.callbacks import RichProgressBar

    seen: dict[str, list[int]] = {"train": [], "val": []}
    monkeypatch.setattr(RichProgressBar, "on_train_batch_end",
                        lambda self, *a: seen["train"].append(a[-1]))
    monkeypatch.setattr(RichProgressBar, "on_validation_batch_end",
                        lambda self, *a: seen["val"].append(a[4]))
    bar = ThrottledProgressBar(refresh_rate=10)
    bar.clock = lambda: 1.0  # time stands still: only the first and the last batch are due
    _fit_boring(bar, **options)
    assert seen == {"train": train_seen, "val": val_seen}
    bar.clock = iter(range(100, 10_000, 100)).__next__  # every batch 100 s after the last one
    seen = {"train": [], "val": []}
    _fit_boring(bar, limit_train_batches=5, limit_val_batches=2)
    assert seen == {"train": [0, 1, 2, 3, 4], "val": [0, 1]}


def test_throttled_progress_bar_writes_held_counts_when_a_loop_pauses_or_ends():
    class Spy(L.Callback):  # runs after the bar's hooks: reads what the bar shows
        def __init__(self) -> None:
            self.shown: list[tuple[str, float]] = []

        def _read(self, name: str, task: Any) -> None:
            self.shown.append((name, bar.progress.tasks[task].completed))

        def on_validation_start(self, trainer: L.Trainer, *_: Any) -> None:
            self._read("train at validation", bar.train_progress_bar_id)

        def on_validation_epoch_end(self, trainer: L.Trainer, *_: Any) -> None:
            self._read("val", bar.val_progress_bar_id)

        def on_train_epoch_end(self, trainer: L.Trainer, *_: Any) -> None:
            self._read("train", bar.train_progress_bar_id)

    bar, spy = ThrottledProgressBar(refresh_rate=10), Spy()
    bar.clock = lambda: 1.0
    # validation after 5 of 9 batches (4 held back), the epoch's end (no validation: 9 % 5)
    _fit_boring(bar, spy, val_check_interval=5)
    assert spy.shown == [("train at validation", 5), ("val", 4), ("train", 9)]


@pytest.mark.parametrize("bar", [ThrottledProgressBar(refresh_rate=0), "disabled"])
def test_a_disabled_throttled_progress_bar_does_nothing(bar):
    if bar == "disabled":  # as on every rank but 0
        bar = ThrottledProgressBar()
        bar.disable()
    _fit_boring(bar, num_sanity_val_steps=2)
    assert bar.progress is None


def test_step_times_records_the_interval_between_every_two_steps(tmp_path):
    _fit_boring(StepTimes(), default_root_dir=tmp_path)
    intervals = json.loads((tmp_path / "step_times.json").read_text())["intervals"]
    assert len(intervals) == 8 and all(i > 0 for i in intervals)  # 9 steps


@pytest.mark.slow
def test_overhead_benchmark_times_lightning_the_bare_trainer_and_the_plain_loop():
    import re
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, str(PROJECT_ROOT / "scripts" / "bench_overhead.py"),
                           "--recipes", "mlp", "--repeats", "1", "--no-save",
                           "--set", "trainer.max_epochs=2"],
                          capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    whole = re.search(r"^mlp, whole fit: Lightning ([\d.]+) s, bare Trainer ([\d.]+) s, plain "
                      r"([\d.]+) s \(medians of 1\); ratio ([\d.]+)x median, .*; bare Trainer "
                      r"([\d.]+)x median", proc.stdout, re.M)
    step = re.search(r"^mlp, per step \(median interval between steps\): Lightning ([\d.]+) ms, "
                     r"bare Trainer ([\d.]+) ms, plain ([\d.]+) ms; ratio ([\d.]+)x median, .*; "
                     r"bare Trainer ([\d.]+)x median", proc.stdout, re.M)
    assert whole and step, proc.stdout
    for line in (whole, step):
        light, bare, plain_s, ratio, bare_ratio = map(float, line.groups())
        assert min(light, bare, plain_s) > 0
        for side, side_ratio in ((light, ratio), (bare, bare_ratio)):  # one round: side / plain
            assert ((side - 0.005) / (plain_s + 0.005) <= side_ratio
                    <= (side + 0.005) / (plain_s - 0.005))

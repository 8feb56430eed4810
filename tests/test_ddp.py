"""Data-parallel training on the CPU: two processes (gloo), a text and a pairs data module (the
README's own DDP command, ``tests/test_readme.py``, runs the image one). Each rank reads its own
share of every batch (the length-bucketed batch sampler included); rank 0 alone writes results."""

from __future__ import annotations

import json

import pytest

from tests.clirun import FAST, metrics_files, run

CASES = {
    "text": ["model=rnn", "data=rt_sentiment"],
    "pairs": ["model=seq2seq", "data=numbers", "data.n_train=200", "data.n_val=50",
              "data.n_test=50"],
}


# text is the case that failed (a batch sampler under DDP); the others run with the slow tests
@pytest.mark.parametrize("kind", [k if k == "text" else pytest.param(k, marks=pytest.mark.slow)
                                  for k in CASES])
def test_two_process_cpu_ddp(kind, tmp_path):
    proc = run("dlbasics.train", "trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2",
               *CASES[kind], "trainer.fast_dev_run=true", *FAST, log_dir=tmp_path)
    (metrics,) = metrics_files(tmp_path)  # written once, by rank 0
    m = json.loads(metrics.read_text())
    assert m["global_step"] == 1 and "test/loss" in m and m["world_size"] == 2
    assert proc.stdout.count("test metrics:") == 1

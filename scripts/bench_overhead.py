"""Lightning's overhead: the same CNN, data and number of steps trained by the Lightning Trainer
(through dlbasics.lit.LitModule) and by a hand-written PyTorch loop, side by side in one run.

    python scripts/bench_overhead.py [--epochs 2] [--repeats 2]

Prints both times and the ratio (target: Lightning <= 1.10x the plain loop). Both sides do the same
work per step: data loading, forward, loss, backward, AdamW, one-cycle schedule and the running
torchmetrics accuracy that LitModule logs; validation is off on both sides.
"""

from __future__ import annotations

import argparse
import statistics
import time

import lightning as L
import torch
import torchmetrics
from torch.nn import functional as F

from dlbasics.data.images import MNIST5k
from dlbasics.lit import LitModule
from dlbasics.models.cnn import CNN


def make(seed: int):
    torch.manual_seed(seed)
    dm = MNIST5k(data_dir="data", batch_size=64, crop_padding=2, rotation=10, seed=seed)
    dm.setup()
    net = CNN(dm.spec, channels=(32, 64), convs_per_block=2, batch_norm=True, dropout=0.25)
    return dm, net


def plain_loop(epochs: int, seed: int) -> float:
    dm, net = make(seed)
    opt = torch.optim.AdamW(net.parameters(), lr=3e-3, weight_decay=1e-2)
    loader = dm.train_dataloader()
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=epochs * len(loader))
    acc = torchmetrics.classification.MulticlassAccuracy(10, average="micro")
    start = time.perf_counter()
    net.train()
    for _ in range(epochs):
        for x, y in loader:
            out = net(x)
            loss = F.cross_entropy(out, y)
            acc.update(out.detach(), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        acc.compute(), acc.reset()
    return time.perf_counter() - start


def lightning_loop(epochs: int, seed: int) -> float:
    dm, net = make(seed)
    opt = torch.optim.AdamW
    from functools import partial

    sched = partial(torch.optim.lr_scheduler.OneCycleLR, max_lr=3e-3)
    task = LitModule(net, dm.spec, partial(opt, lr=3e-3, weight_decay=1e-2), sched)
    trainer = L.Trainer(max_epochs=epochs, accelerator="cpu", devices=1, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, limit_val_batches=0, num_sanity_val_steps=0)
    start = time.perf_counter()
    trainer.fit(task, train_dataloaders=dm.train_dataloader())
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    plain, light = [], []
    for r in range(args.repeats):  # alternate so both see the same machine load
        plain.append(plain_loop(args.epochs, r))
        light.append(lightning_loop(args.epochs, r))
    p, lt = min(plain), min(light)
    print(f"plain PyTorch loop: {p:.2f} s (best of {args.repeats}: {[round(t, 2) for t in plain]})")
    print(f"Lightning Trainer:  {lt:.2f} s (best of {args.repeats}: {[round(t, 2) for t in light]})")
    print(f"ratio Lightning / plain: {lt / p:.3f}x best-of, "
          f"{statistics.median(light) / statistics.median(plain):.3f}x median (target <= 1.10x)")


if __name__ == "__main__":
    main()

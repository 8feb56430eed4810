"""Explain a classifier's predictions:
``python -m dlbasics.explain ckpt_path=... method=integrated_gradients n=16``.

The run is rebuilt from the checkpoint (``build.load_run``); the examples are ``n`` test examples
(seeded) or a user's own inputs (``input=``/``text=``, converted as ``predict`` converts them).
The predicted class of each is explained with ``method`` (``dlbasics.attribution``), drawn in
the run folder (``attributions.png`` for images and signals; ``attributions.html``, ``.tsv`` and
``.json`` for text), and checked: the deletion curve against random orders and the
model-randomisation correlation go to ``sanity.json`` and ``deletion.png``.
"""

from __future__ import annotations

import csv
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig

from dlbasics import plots
from dlbasics.attribution import (
    Inputs,
    attribute,
    check_method,
    deletion_check,
    image_baseline,
    randomisation_check,
)
from dlbasics.build import load_run
from dlbasics.cli import entry_point, write_json
from dlbasics.examples import Examples, read_examples

UNITS = {"image": "pixels", "signal": "steps", "tokens": "tokens"}


def batch_inputs(run: Any, examples: Examples) -> Inputs:
    """The examples as one batch, with the baseline of their kind."""
    kind, dm = run.spec.input_kind, run.datamodule
    if kind == "tokens":
        x = dm.collate_fn([(t, torch.tensor(0)) for t in examples.inputs])[0]
        pad = int(run.spec.pad_index)
        return Inputs(kind, x, torch.full_like(x, pad), pad)
    x = torch.stack(examples.inputs)
    if kind == "image":
        return Inputs(kind, x, image_baseline(x, dm.mean, dm.std))
    return Inputs(kind, x, torch.zeros_like(x))


def explain(cfg: DictConfig) -> dict[str, Any]:
    run = load_run(cfg.ckpt_path, tasks=("classification",))
    net, spec = run.module.net, run.spec
    check_method(str(cfg.method), spec.input_kind, net)  # before any data is read
    examples = read_examples(run, cfg.get("input"), cfg.get("text"), bool(cfg.get("invert")),
                             n=int(cfg.n), seed=int(cfg.seed))
    for note in examples.notes:
        print(f"note: {note}")
    inputs = batch_inputs(run, examples)
    with torch.no_grad():
        probs = net(inputs.x).softmax(-1)
    target = probs.argmax(-1)
    scores = attribute(net, inputs, target, str(cfg.method), int(cfg.steps))

    folder = Path(cfg.paths.output_dir)
    names = spec.class_names or tuple(str(i) for i in range(spec.num_outputs))
    captions, correct = [], []
    for i in range(len(examples)):
        p, k = float(probs[i, target[i]]), int(target[i])
        truth = names[examples.labels[i]] if examples.labels is not None else None
        captions.append(f"{examples.names[i]}: {names[k]} ({p:.2f})"
                        + (f", true {truth}" if truth is not None else ""))
        correct.append(None if truth is None else truth == names[k])
    title = f"{cfg.method} - {type(net).__name__} - {examples.source}"
    written = draw(spec.input_kind, examples, scores, captions, correct, folder, title)

    report: dict[str, Any] = {"method": str(cfg.method), "ckpt_path": str(cfg.ckpt_path),
                              "examples": len(examples), "source": examples.source,
                              "files": [str(p) for p in written]}
    if cfg.sanity:
        report.update(sanity_checks(run, inputs, target, scores, cfg, folder))
    write_json(folder / ("sanity.json" if cfg.sanity else "explain.json"), report)
    print_report(report, folder)
    return report


def draw(kind: str, examples: Examples, scores: torch.Tensor, captions: list[str],
         correct: list[bool | None], folder: Path, title: str) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    if kind in ("image", "signal"):
        np.savez_compressed(folder / "attributions.npz", scores=scores.numpy())
        grid = plots.image_grid if kind == "image" else plots.signal_grid
        return [grid(torch.stack(examples.shown), scores, captions, correct,
                     folder / "attributions.png", title)]
    rows = [{"input": examples.names[i], "caption": captions[i], "correct": correct[i],
             "tokens": tokens, "scores": [round(float(s), 6) for s in scores[i, : len(tokens)]]}
            for i, tokens in enumerate(examples.shown)]
    (folder / "attributions.json").write_text(json.dumps(rows, indent=1) + "\n")
    with open(folder / "attributions.tsv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, delimiter="\t")
        writer.writerow(["example", "position", "token", "score"])
        for i, row in enumerate(rows):
            writer.writerows([i, j, tok, s] for j, (tok, s) in enumerate(zip(row["tokens"], row["scores"])))
    return [plots.token_page(rows, folder / "attributions.html", title),
            folder / "attributions.tsv", folder / "attributions.json"]


def sanity_checks(run: Any, inputs: Inputs, target: torch.Tensor, scores: torch.Tensor,
                  cfg: DictConfig, folder: Path) -> dict[str, Any]:
    net = run.module.net
    deletion = deletion_check(net, inputs, target, scores, random_orders=int(cfg.random_orders),
                              seed=int(cfg.seed))
    randomised = randomisation_check(net, inputs, target, scores, str(cfg.method),
                                     seed=int(cfg.seed), steps=int(cfg.steps))
    plots.deletion_curves(deletion.fractions, {str(cfg.method): deletion.method_curve,
                                               "random order": deletion.random_curve},
                          folder / "deletion.png", UNITS[inputs.kind],
                          f"deletion check, {len(target)} examples")
    faster = sum(m < r for m, r in zip(deletion.method_auc_per_example,
                                       deletion.random_auc_per_example))
    return {
        "deletion": {"auc": deletion.method_auc, "random_auc": deletion.random_auc,
                     "examples_below_random": faster, "fractions": deletion.fractions,
                     "curve": deletion.method_curve, "random_curve": deletion.random_curve},
        "randomisation": asdict(randomised),  # spearman, spearman_abs, examples
    }


def print_report(report: dict[str, Any], folder: Path) -> None:
    print(f"{report['method']}: {report['examples']} examples from {report['source']}")
    if "deletion" in report:
        d, r = report["deletion"], report["randomisation"]
        print(f"deletion: area under the class-probability curve {d['auc']:.3f} (random order "
              f"{d['random_auc']:.3f}; lower on {d['examples_below_random']} of "
              f"{report['examples']} examples)")
        print(f"model randomisation: Spearman rank correlation with a re-initialised network "
              f"{r['spearman']:.3f} (of absolute values {r['spearman_abs']:.3f})")
    print(f"run folder: {folder}")


main = entry_point("explain", checkpoint_usage="of the classifier to explain: python -m dlbasics.explain "
                                               "ckpt_path=PATH method=integrated_gradients")(explain)


if __name__ == "__main__":
    main()

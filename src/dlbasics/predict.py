"""Predict with a trained classifier or regressor on a user's own inputs:
``python -m dlbasics.predict ckpt_path=... input=my_digits/`` (images), ``'text="..."'`` or
``input=lines.txt`` (text), ``input=rows.csv`` (features, signals); ``input=test`` (default) runs
the test split.

The run is rebuilt from the checkpoint (``build.load_run``), the inputs are converted as its data
module converted the test split (``dlbasics.examples``), and ``trainer.predict`` runs the
LitModule's ``predict_step``. Writes ``predictions.csv`` (input, predicted class and the
probability of every class, or the predicted values) in the run folder and prints a table.
"""

from __future__ import annotations

import csv
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import DataLoader

from dlbasics.build import build_trainer, load_run
from dlbasics.cli import entry_point
from dlbasics.errors import UserError
from dlbasics.examples import read_examples

OTHER_TASKS = {"language_model": "python -m dlbasics.generate ckpt_path=... prompt=\"...\"",
               "seq2seq": "python -m dlbasics.translate ckpt_path=... 'text=\"...\"'"}


def predict(cfg: DictConfig) -> list[dict[str, object]]:
    run = load_run(cfg.ckpt_path)
    if run.spec.task in OTHER_TASKS:
        raise UserError(f"ckpt_path={cfg.ckpt_path} is a {run.spec.task.replace('_', ' ')} "
                        f"checkpoint: predict takes classifiers and regressors; use "
                        f"{OTHER_TASKS[run.spec.task]}")
    examples = read_examples(run, cfg.get("input"), cfg.get("text"), bool(cfg.get("invert")))
    for note in examples.notes:
        print(f"note: {note}")
    loader = DataLoader(examples.dataset(), batch_size=int(cfg.batch_size),  # type: ignore[arg-type]
                        collate_fn=run.datamodule.collate_fn)
    trainer = build_trainer(OmegaConf.merge(run.config, {
        "trainer": cfg.trainer, "paths": cfg.paths, "callbacks": None, "logger": None}))
    outputs = torch.cat(trainer.predict(run.module, dataloaders=loader))  # type: ignore[arg-type]
    rows = prediction_rows(run.spec, examples, outputs)
    if trainer.is_global_zero:
        path = Path(cfg.paths.output_dir) / "predictions.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        print_table(rows, int(cfg.show))
        print(f"{len(rows)} predictions: {path}")
    return rows


def prediction_rows(spec, examples, outputs: torch.Tensor) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for i, out in enumerate(outputs.tolist()):
        row: dict[str, object] = {"input": examples.names[i]}
        if spec.task == "classification":
            names = spec.class_names or [str(k) for k in range(len(out))]
            best = max(range(len(out)), key=out.__getitem__)
            row["predicted"] = names[best]
            row["probability"] = round(out[best], 4)
            if examples.labels is not None:
                row["true"] = names[examples.labels[i]]
            row.update({f"p({name})": round(p, 4) for name, p in zip(names, out)})
        else:
            row.update({("predicted" if len(out) == 1 else f"predicted_{k}"): round(v, 4)
                        for k, v in enumerate(out)})
        rows.append(row)
    return rows


def print_table(rows: list[dict[str, object]], show: int) -> None:
    """The first ``show`` rows: input, prediction (and probability, true class when known)."""
    keys = [k for k in rows[0] if not k.startswith("p(")]
    shown = rows[:show]
    widths = {k: min(60, max(len(k), *(len(str(r[k])) for r in shown))) for k in keys}
    print("  ".join(k.ljust(widths[k]) for k in keys))
    for r in shown:
        print("  ".join(str(r[k])[: widths[k]].ljust(widths[k]) for k in keys))
    if len(rows) > show:
        print(f"... {len(rows) - show} more")


main = entry_point("predict", checkpoint_usage="to predict with: python -m dlbasics.predict "
                                               "ckpt_path=PATH input=FILE_OR_FOLDER")(predict)


if __name__ == "__main__":
    main()

"""Every picture dlbasics draws, headless (matplotlib's Agg backend): the run folder's learning
curves and test confusion matrix (``RunPlots``, a callback in ``conf/callbacks/plots.yaml``),
attribution grids for images and signals, the token page of a text model, deletion curves, and
the attention heat-map of ``translate``.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
import matplotlib
import matplotlib.ticker
import numpy as np
import torch

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the headless backend)

History = dict[str, dict[str, list[tuple[int, float]]]]  # metric -> split -> [(epoch, value)]


def _save(fig: Any, path: str | Path) -> Path:
    """The figure laid out tight, written to ``path`` and closed."""
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


# ---- the run folder ---------------------------------------------------------------------------
def learning_curves(history: History, path: str | Path, title: str = "") -> Path:
    """One panel per metric (loss first), train and val per epoch."""
    names = sorted(history, key=lambda n: (n != "loss", n))
    fig, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names), 3.2), squeeze=False)
    for ax, name in zip(axes[0], names):
        for split, style in (("train", "-o"), ("val", "-s")):
            points = history[name].get(split)
            if points:
                epochs, values = zip(*points)
                ax.plot(epochs, values, style, markersize=3, label=split)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        ax.set_title(name)
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def confusion_matrix(matrix: torch.Tensor | np.ndarray, class_names: Sequence[str],
                     path: str | Path, title: str = "test confusion matrix") -> Path:
    """Counts (rows: true class, columns: predicted), coloured by the share of each true class."""
    counts = np.asarray(matrix, dtype=np.int64)
    shares = counts / np.maximum(counts.sum(1, keepdims=True), 1)
    k = len(counts)
    size = max(4.0, 0.45 * k + 2)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    im = ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    if k <= 30:
        for i, j in np.argwhere(counts):
            ax.text(j, i, str(counts[i, j]), ha="center", va="center", fontsize=8,
                    color="white" if shares[i, j] > 0.5 else "black")
    labels = [str(c) for c in class_names]
    slanted = max(map(len, labels)) > 2  # longer names than "10" would overlap
    ax.set_xticks(range(k), labels, rotation=60 if slanted else 0, ha="right" if slanted else "center")
    ax.set_yticks(range(k), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    accuracy = np.trace(counts) / max(counts.sum(), 1)
    ax.set_title(f"{title} (accuracy {100 * accuracy:.1f}%, {counts.sum()} examples)")
    fig.colorbar(im, ax=ax, fraction=0.046, label="share of the true class")
    return _save(fig, path)


class RunPlots(L.Callback):
    """The run folder's pictures, drawn by rank 0: ``learning_curves.png`` at the end of fit
    (loss and every other logged metric per epoch, train vs val) and, for classifiers,
    ``confusion_matrix.png`` of the test split at the end of test."""

    def __init__(self, folder: str | None = None) -> None:
        self.folder = folder
        self.history: History = {}
        self._train_epoch: int | None = None  # an epoch whose training figures are not read yet

    def _where(self, trainer: L.Trainer) -> Path:
        return Path(self.folder or trainer.default_root_dir)

    def _record(self, trainer: L.Trainer, split: str, epoch: int | None = None) -> None:
        """The split's epoch values: ``<split>/<name>``, or ``<split>/<name>_epoch`` when a value
        is logged per step too (then ``<split>/<name>`` is the last step's, not the epoch's)."""
        metrics = trainer.callback_metrics
        for key, value in metrics.items():
            if not key.startswith(f"{split}/") or key.endswith("_step") or f"{key}_epoch" in metrics:
                continue
            name = key.split("/", 1)[1].removesuffix("_epoch")
            points = self.history.setdefault(name, {}).setdefault(split, [])
            epoch = trainer.current_epoch if epoch is None else epoch
            if points and points[-1][0] == epoch:
                points.pop()
            points.append((epoch, float(value)))

    # The module logs its epoch's training figures in its own on_train_epoch_end, which Lightning
    # calls after this callback's: they are read at the next epoch's start or at the end of fit.
    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._train_epoch = trainer.current_epoch

    def _record_train(self, trainer: L.Trainer) -> None:
        if self._train_epoch is not None:
            self._record(trainer, "train", self._train_epoch)
            self._train_epoch = None

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._record_train(trainer)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            self._record(trainer, "val")

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._record_train(trainer)
        if trainer.is_global_zero and self.history:
            learning_curves(self.history, self._where(trainer) / "learning_curves.png",
                            title=type(pl_module.net).__name__)

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        confusion = getattr(pl_module, "test_confusion", None)
        if confusion is None or not confusion.update_called:
            return
        matrix = confusion.compute().cpu()  # every rank: the counts are summed across processes
        confusion.reset()
        if trainer.is_global_zero:
            names = pl_module.spec.class_names or [str(i) for i in range(len(matrix))]
            confusion_matrix(matrix, names, self._where(trainer) / "confusion_matrix.png")


# ---- attributions -------------------------------------------------------------------------------
def _example_grid(n: int, captions: Sequence[str], correct: Sequence[bool | None], title: str,
                  panels: int, width: float, height: float, per_row: int = 4) -> tuple[Any, Any]:
    """A titled figure of ``n`` examples, ``per_row`` to a row, each ``panels`` axes (all off) of
    ``width`` x ``height`` inches, captioned over the first in green (a right prediction), red
    (wrong) or black (unknown): (figure, axes (examples, panels))."""
    rows = math.ceil(n / per_row)
    fig, axes = plt.subplots(rows, panels * per_row, figsize=(panels * per_row * width, rows * height),
                             squeeze=False)
    fig.suptitle(title, fontsize=10)
    for ax in axes.flat:
        ax.axis("off")
    axes = axes.reshape(-1, panels)
    for ax, caption, right in zip(axes[:n, 0], captions, correct):
        colour = {True: "darkgreen", False: "red", None: "black"}[right]
        ax.set_title(caption, fontsize=7, color=colour, loc="left")
    return fig, axes


def image_grid(images: torch.Tensor, attributions: torch.Tensor, captions: Sequence[str],
               correct: Sequence[bool | None], path: str | Path, title: str) -> Path:
    """Each example as two panels: the input, and the attribution over it (red: towards the
    predicted class, blue: against it; scaled per example). ``images`` (N, C, H, W) in [0, 1],
    ``attributions`` (N, H, W)."""
    fig, axes = _example_grid(len(images), captions, correct, title, 2, 1.6, 1.9)
    for i in range(len(images)):
        left, right = axes[i]
        shown = images[i].clamp(0, 1).permute(1, 2, 0).squeeze(-1).cpu().numpy()  # (H, W) or (H, W, 3)
        gray = shown if shown.ndim == 2 else shown.mean(-1)
        left.imshow(shown, cmap="gray" if shown.ndim == 2 else None, vmin=0, vmax=1)
        attribution = attributions[i].cpu().numpy()
        scale = np.abs(attribution).max() or 1.0
        right.imshow(gray, cmap="gray", vmin=0, vmax=1)
        strength = attribution / scale  # opaque where the attribution is large, clear elsewhere
        right.imshow(strength, cmap="bwr", vmin=-1, vmax=1,
                     alpha=np.clip(np.abs(strength) * 1.5, 0, 0.9))
    return _save(fig, path)


def signal_grid(signals: torch.Tensor, attributions: torch.Tensor, captions: Sequence[str],
                correct: Sequence[bool | None], path: str | Path, title: str) -> Path:
    """Each signal (channel 0) as a line over bars of its attribution per step (red: towards
    the predicted class, blue: against). ``signals`` (N, C, L), ``attributions`` (N, L)."""
    fig, axes = _example_grid(len(signals), captions, correct, title, 1, 3.0, 2.0)
    for i in range(len(signals)):
        ax = axes[i, 0]
        ax.axis("on")
        signal = signals[i, 0].cpu().numpy()
        attribution = attributions[i].cpu().numpy()
        scale = np.abs(attribution).max() or 1.0
        steps = np.arange(len(signal))
        low, high = signal.min(), signal.max()
        span = (high - low) or 1.0
        ax.bar(steps, attribution / scale * span / 2, bottom=(low + high) / 2, width=1.0,
               color=np.where(attribution >= 0, "tab:red", "tab:blue"), alpha=0.35)
        ax.plot(steps, signal, color="black", linewidth=1.2)
        ax.set_xticks([])
        ax.set_yticks([])
    return _save(fig, path)


def token_page(rows: Sequence[dict[str, Any]], path: str | Path, title: str) -> Path:
    """An HTML page: each text with its tokens coloured by their score (red: towards the
    predicted class, blue: against; scaled per text), hover for the number. Each row:
    ``tokens``, ``scores``, ``caption``, ``correct`` (True/False/None)."""
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title><style>",
        "body{font-family:sans-serif;max-width:60em;margin:2em auto;line-height:1.9}",
        ".t{padding:1px 3px;margin:0 1px;border-radius:3px}",
        ".c{font-size:80%;color:#333}.ok{color:#070}.bad{color:#b00}",
        ".row{border-bottom:1px solid #ddd;padding:.4em 0}",
        "</style></head><body>",
        f"<h2>{html.escape(title)}</h2>",
        "<p class='c'>Red: the token pushes towards the predicted class; blue: against it "
        "(each text scaled to its largest score; hover for the value).</p>",
    ]
    for row in rows:
        scores = np.asarray(row["scores"], dtype=float)
        scale = np.abs(scores).max() or 1.0
        spans = []
        for token, score in zip(row["tokens"], scores):
            a = min(1.0, abs(score) / scale)
            rgb = "220,40,40" if score >= 0 else "40,90,220"
            spans.append(f"<span class='t' style='background:rgba({rgb},{a:.2f})' "
                         f"title='{score:+.4f}'>{html.escape(token)}</span>")
        verdict = {True: "ok", False: "bad", None: ""}[row.get("correct")]
        parts.append(f"<div class='row'><div class='c {verdict}'>{html.escape(row['caption'])}"
                     f"</div>{''.join(spans)}</div>")
    parts.append("</body></html>")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(parts), encoding="utf-8")
    return path


def deletion_curves(fractions: Sequence[float], curves: dict[str, Sequence[float]],
                    path: str | Path, unit: str, title: str) -> Path:
    """Mean class probability as the top-attributed parts are removed, one line per ordering
    (the area under each is in the legend: lower means the ordering found what mattered)."""
    fig, ax = plt.subplots(figsize=(5, 3.4))
    for name, curve in curves.items():
        area = float(np.trapezoid(curve, fractions))
        ax.plot(fractions, curve, "-o", markersize=3, label=f"{name} (area {area:.3f})")
    ax.set_xlabel(f"fraction of {unit} removed (most attributed first)")
    ax.set_ylabel("probability of the predicted class")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=9)
    return _save(fig, path)


# ---- seq2seq ----------------------------------------------------------------------------------
def attention_heatmap(path: str | Path, source: list[str], output: list[str],
                      attention: torch.Tensor) -> Path:
    """Attention weights as an image: one row per output token, one column per source token."""
    fig, ax = plt.subplots(figsize=(1.0 + 0.45 * len(source), 1.0 + 0.4 * len(output)))
    im = ax.imshow(attention.cpu().numpy(), cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
    ax.set_xticks(range(len(source)), source, rotation=60, ha="right")
    ax.set_yticks(range(len(output)), output)
    ax.set_xlabel("source")
    ax.set_ylabel("output")
    fig.colorbar(im, ax=ax, fraction=0.04)
    return _save(fig, path)

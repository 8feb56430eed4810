"""The classical baseline beside every results row: fitted on a data module's own train split,
its one hyperparameter chosen on the validation split, scored once on the fixed test split.

- classification: the majority class, and logistic regression on the raw inputs (pixels,
  signals; standardised) or, for text, on TF-IDF word 1-2-grams;
- regression: ordinary least squares and ridge (R2 in the original units);
- language models: an interpolated character n-gram model (Witten-Bell), in nats per character;
- translation: a translation memory (the target of the most similar training source, TF-IDF
  cosine), scored by exact match.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.metrics import r2_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from dlbasics.data.base import DataModule
from dlbasics.data.vocab import word_tokenize


def _choose(fit: Callable[[float], Any], score: Callable[[Any], float], grid: Sequence[float]
            ) -> tuple[Any, float]:
    """The model of the grid value with the best validation score, and that value."""
    fitted = {v: fit(v) for v in grid}
    best = max(grid, key=lambda v: score(fitted[v]))
    return fitted[best], best


def _arrays(dataset: Any) -> tuple[np.ndarray, np.ndarray]:
    """(flattened float inputs, targets) of an image, signal or vector dataset."""
    if hasattr(dataset, "images"):  # uint8 images before augmentation and normalisation
        return dataset.images.flatten(1).float().numpy() / 255.0, dataset.labels.numpy()
    x, y = dataset.tensors
    return x.flatten(1).numpy(), y.numpy()


def classification(dm: DataModule) -> dict[str, float]:
    if dm.input_kind == "tokens":
        (xtr, ytr), (xva, yva), (xte, yte) = (dm.raw_splits()[s] for s in ("train", "val", "test"))

        def fit(c: float) -> Any:
            tfidf = TfidfVectorizer(tokenizer=word_tokenize, lowercase=False, token_pattern=None,
                                    ngram_range=(1, 2), sublinear_tf=True)
            return make_pipeline(tfidf, LogisticRegression(C=c, max_iter=2000)).fit(xtr, ytr)

        name, grid = "tfidf_logistic_regression", (1.0, 4.0, 16.0, 64.0)
    else:
        (xtr, ytr), (xva, yva), (xte, yte) = (_arrays(s) for s in (dm.train_set, dm.val_set,
                                                                   dm.test_set))

        def fit(c: float) -> Any:
            return make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=3000)).fit(
                xtr, ytr)

        name, grid = "logistic_regression", (0.01, 0.1, 1.0)
    model, _ = _choose(fit, lambda m: m.score(xva, yva), grid)
    majority = np.bincount(np.asarray(ytr)).argmax()
    return {"majority_class": float(np.mean(np.asarray(yte) == majority)),
            name: float(model.score(xte, yte))}


def regression(dm: DataModule) -> dict[str, float]:
    (xtr, ytr), (xva, yva), (xte, yte) = (_arrays(s) for s in (dm.train_set, dm.val_set,
                                                               dm.test_set))
    ridge, _ = _choose(lambda a: Ridge(alpha=a).fit(xtr, ytr),
                       lambda m: r2_score(yva, m.predict(xva)), np.logspace(-3, 3, 13).tolist())
    ols = LinearRegression().fit(xtr, ytr)
    return {"least_squares": float(r2_score(yte, ols.predict(xte))),  # R2 is unit-free
            "ridge": float(r2_score(yte, ridge.predict(xte)))}


class CharNGram:
    """An interpolated character n-gram model (Witten-Bell smoothing, Chen & Goodman 1998):
    P(c | h) = (count(h, c) + types(h) P(c | shorter h)) / (count(h) + types(h))."""

    def __init__(self, text: str, order: int, vocab_size: int) -> None:
        self.order, self.vocab_size = order, vocab_size
        self.counts: list[dict[str, Counter]] = [defaultdict(Counter) for _ in range(order)]
        for n in range(order):  # n characters of history
            table = self.counts[n]
            for i in range(n, len(text)):
                table[text[i - n:i]][text[i]] += 1
        self.totals = [{h: sum(c.values()) for h, c in t.items()} for t in self.counts]

    def prob(self, history: str, char: str) -> float:
        p = 1.0 / self.vocab_size
        for n in range(self.order):
            h = history[len(history) - n:] if n else ""
            counts = self.counts[n].get(h)
            if counts:
                types = len(counts)
                p = (counts[char] + types * p) / (self.totals[n][h] + types)
        return p

    def loss(self, text: str, context: str) -> float:
        """Mean negative log-likelihood (nats per character) of ``text`` after ``context``."""
        full = context + text
        start = len(context)
        return -sum(math.log(self.prob(full[max(0, i - self.order + 1):i], full[i]))
                    for i in range(start, len(full))) / len(text)


def language_model(dm: Any) -> dict[str, float]:
    text = dm.text()
    train_end, val_end, end = dm.split_bounds()
    train, val, test = text[:train_end], text[train_end:val_end], text[val_end:end]
    vocab_size = len(set(train)) + 1  # one more for characters the train split never shows
    model, order = _choose(lambda o: CharNGram(train, int(o), vocab_size),
                           lambda m: -m.loss(val, train[-8:]), (2, 3, 4, 5, 6))
    return {f"char_{order}gram": model.loss(test, val[-8:])}


def translation(dm: Any) -> dict[str, float]:
    pairs = dm.pairs()
    sources = [" ".join(s) for s, _ in pairs["train"]]
    tfidf = TfidfVectorizer(analyzer="word", ngram_range=(1, 2), token_pattern=r"\S+")
    memory = tfidf.fit_transform(sources)
    test_sources = tfidf.transform([" ".join(s) for s, _ in pairs["test"]])
    nearest = (test_sources @ memory.T).toarray().argmax(1)
    hits = [pairs["train"][j][1] == t for j, (_, t) in zip(nearest, pairs["test"])]
    return {"translation_memory": float(np.mean(hits))}


def baselines(dm: DataModule) -> dict[str, float]:
    """The baselines of a set-up data module's task, by name: their test-split figures."""
    return {"classification": classification, "regression": regression,
            "language_model": language_model, "seq2seq": translation}[dm.task](dm)

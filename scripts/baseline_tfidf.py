"""TF-IDF (word unigrams + bigrams) + logistic regression on the rt_sentiment splits.

The baseline the neural text classifiers must beat, fitted on exactly the data module's train
split (``dlbasics.data.text_datasets.RTSentiment``), its C chosen on the validation split, and
scored once on the fixed test split:

    python scripts/baseline_tfidf.py [--seed 42]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from dlbasics.data.text_datasets import RTSentiment
from dlbasics.data.vocab import word_tokenize


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=42, help="the run seed (train/val split); "
                        "the test split is fixed")
    parser.add_argument("--val-fraction", type=float, default=0.1)
    args = parser.parse_args()

    splits = RTSentiment(seed=args.seed, val_fraction=args.val_fraction).raw_splits()
    (x_train, y_train), (x_val, y_val), (x_test, y_test) = (
        splits["train"], splits["val"], splits["test"])

    def model(c: float):
        # the data module's own word tokenizer, so both see the same tokens
        tfidf = TfidfVectorizer(tokenizer=word_tokenize, lowercase=False, token_pattern=None,
                                ngram_range=(1, 2), min_df=1, sublinear_tf=True)
        return make_pipeline(tfidf, LogisticRegression(C=c, max_iter=2000))

    start = time.perf_counter()
    val_acc = {c: model(c).fit(x_train, y_train).score(x_val, y_val)
               for c in (1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0)}
    best_c = max(val_acc, key=val_acc.get)
    test_acc = model(best_c).fit(x_train, y_train).score(x_test, y_test)
    seconds = time.perf_counter() - start

    majority = np.bincount(y_train).argmax()
    print(f"rt_sentiment: train {len(y_train)}, val {len(y_val)}, test {len(y_test)} snippets")
    print("val accuracy by C: " + ", ".join(f"{c:g}: {a:.4f}" for c, a in val_acc.items()))
    print(f"TF-IDF (1-2 grams) + logistic regression, C={best_c:g}: test acc {test_acc:.4f} "
          f"({seconds:.1f} s)")
    print(f"majority class ({RTSentiment.class_names[majority]}): test acc "
          f"{np.mean(y_test == majority):.4f}")


if __name__ == "__main__":
    main()

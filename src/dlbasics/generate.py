"""Sample text from a language model: ``python -m dlbasics.generate ckpt_path=... prompt="ROMEO:"``.

The network and vocabulary are rebuilt from the checkpoint alone (``build.load_run``); characters
are written to stdout as they are sampled. A seeded ``torch.Generator`` drives the sampling, so
the same checkpoint, prompt, settings and seed always print the same text.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator

import torch
from omegaconf import DictConfig

from dlbasics.build import load_run
from dlbasics.cli import entry_point
from dlbasics.data.vocab import Vocab
from dlbasics.errors import UserError
from dlbasics.models.base import LanguageModel
from dlbasics.models.sampling import stream


def load_language_model(ckpt_path: str) -> tuple[LanguageModel, Vocab]:
    """(network in eval mode, its vocabulary) from a language-model checkpoint."""
    run = load_run(ckpt_path, tasks=("language_model",))
    return run.module.net, run.datamodule.require_vocab()


def sample_text(net: LanguageModel, vocab: Vocab, prompt: str, max_new_tokens: int,
                temperature: float, top_k: int | None, seed: int,
                use_cache: bool = True) -> Iterator[str]:
    """Yield the decoded characters one at a time as they are sampled (never <pad> or <unk>)."""
    if not prompt:
        raise UserError('prompt is empty: give at least one character, e.g. prompt="ROMEO:"')
    ids = vocab.encode(list(prompt))
    unknown = sorted({c for c, i in zip(prompt, ids) if i == vocab.unk_index})
    if unknown:
        print(f"warning: {unknown} are not in the vocabulary: read as <unk>", file=sys.stderr)
    generator = torch.Generator().manual_seed(seed)
    idx = torch.tensor([ids], dtype=torch.long)
    for token in stream(net, idx, max_new_tokens, temperature, top_k, generator, use_cache,
                        suppress=(vocab.pad_index, vocab.unk_index)):
        yield vocab.itos[int(token)]


def run_generate(cfg: DictConfig) -> str:
    net, vocab = load_language_model(cfg.ckpt_path)
    prompt = str(cfg.prompt)
    texts = []
    for i in range(cfg.samples):
        print("\n\n" + prompt if i else prompt, end="", flush=True)
        text = prompt
        for ch in sample_text(net, vocab, prompt, cfg.max_new_tokens, cfg.temperature,
                              cfg.top_k, cfg.seed + i, cfg.use_cache):
            print(ch, end="", flush=True)
            text += ch
        texts.append(text)
    print(flush=True)
    return "\n\n".join(texts)


main = entry_point("generate", checkpoint_usage="to sample from: python -m dlbasics.generate "
                                                "ckpt_path=PATH prompt=...")(run_generate)


if __name__ == "__main__":
    main()

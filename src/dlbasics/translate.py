"""Translate with a trained seq2seq checkpoint:
``python -m dlbasics.translate ckpt_path=... 'text="two hundred and thirty-four"' beam_size=5
heatmap=attention.png``.

Greedy decoding when ``beam_size=1``, beam search otherwise. The run is rebuilt from the checkpoint
alone (``build.load_run``: config, DataSpec, both vocabularies, weights), so the text is tokenised
and numericalised exactly as in training. ``heatmap=`` saves the attention weights of the translation
(output tokens x source tokens) as a PNG. Without ``text``, every line of stdin is translated.
"""

from __future__ import annotations

import sys
from typing import Any

import torch
from omegaconf import DictConfig

from dlbasics.build import load_run
from dlbasics.cli import entry_point
from dlbasics.data.vocab import EOS, detokenize
from dlbasics.errors import UserError
from dlbasics.plots import attention_heatmap


class Translator:
    """A checkpoint's network and data module, ready to translate sentences."""

    def __init__(self, ckpt_path: str) -> None:
        run = load_run(ckpt_path, tasks=("seq2seq",))
        self.datamodule = run.datamodule  # reads no data: it holds the two vocabularies
        self.net = run.module.net

    def __call__(self, text: str, beam_size: int = 1, length_penalty: float = 1.0,
                 max_len: int | None = None) -> dict[str, Any]:
        """-> {"translation", "source" tokens, "output" tokens (with <eos>), "attention" (T, S)}."""
        if beam_size < 1:
            raise UserError(f"beam_size must be >= 1, got {beam_size}")
        dm = self.datamodule
        src = dm.encode_source(text)
        with torch.no_grad():
            if beam_size == 1:
                tokens, attn = self.net.greedy_decode(src[None], max_len)
            else:
                tokens, attn = self.net.beam_search(src[None], beam_size, max_len, length_penalty)
        words = dm.decode_target(tokens[0])
        shown = words + [EOS] if len(words) < len(tokens[0]) else words
        return {
            "translation": detokenize(words),
            "source": dm.src_vocab.decode(src.tolist()),
            "output": shown,
            "attention": None if attn is None else attn[0, : len(shown)],
        }


def translate(cfg: DictConfig) -> list[str]:
    if cfg.get("text") is None and sys.stdin.isatty():
        raise UserError("give the sentence to translate: 'text=\"...\"' (or pipe lines in)")
    texts = ([str(cfg.text)] if cfg.get("text") is not None
             else [line.strip() for line in sys.stdin if line.strip()])
    translator = Translator(cfg.ckpt_path)
    dm = translator.datamodule
    out = []
    for i, text in enumerate(texts):
        result = translator(text, int(cfg.beam_size), float(cfg.length_penalty), cfg.max_len)
        oov = [w for w, id_ in zip(dm.src_vocab.tokenize(text), dm.encode_source(text).tolist())
               if id_ == dm.src_vocab.unk_index]
        if oov:
            print(f"note: words unknown to the model: {' '.join(oov)}", file=sys.stderr)
        print(result["translation"], flush=True)
        out.append(result["translation"])
        if i == 0 and cfg.get("heatmap"):
            if result["attention"] is None:
                raise UserError("this model has no attention (model.attention=none): no heat-map")
            path = attention_heatmap(cfg.heatmap, result["source"], result["output"],
                                result["attention"])
            print(f"attention heat-map: {path}", file=sys.stderr)
    return out


main = entry_point("translate", checkpoint_usage="of a seq2seq model: python -m dlbasics.translate "
                                                 "ckpt_path=PATH 'text=\"...\"'")(translate)


if __name__ == "__main__":
    main()

"""Sample text from a language model: ``python -m dlbasics.generate ckpt_path=... prompt="ROMEO:"``.

The network is rebuilt from the checkpoint alone (its run config, DataSpec and weights); characters
are written to stdout as they are sampled. A seeded ``torch.Generator`` drives the sampling, so
the same checkpoint, prompt, settings and seed always print the same text.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import hydra
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch import nn

from dlbasics.data.vocab import Vocab
from dlbasics.errors import UserError
from dlbasics.models.sampling import stream
from dlbasics.runtime import load_checkpoint, register_resolvers, user_errors
from dlbasics.spec import DataSpec

register_resolvers()


def load_language_model(ckpt_path: str) -> tuple[nn.Module, Vocab, dict[str, Any]]:
    """(network in eval mode, its vocabulary, the checkpoint's run config) from a checkpoint."""
    ckpt = load_checkpoint(ckpt_path)
    spec = DataSpec.from_dict(ckpt["dlbasics"]["spec"])
    run = ckpt["dlbasics"]["config"] or {}
    if spec.task != "language_model" or spec.vocab is None:
        model = (run.get("choices") or {}).get("model") or run.get("model", {}).get("_target_")
        raise UserError(f"ckpt_path={ckpt_path} is a {spec.task} checkpoint (model={model}), not a "
                        f"language model: train one first, e.g. python -m dlbasics.train "
                        f"experiment=shakespeare_transformer")
    net = instantiate(OmegaConf.create(run["model"]), _partial_=True, _convert_="all")(spec=spec)
    weights = {k.removeprefix("net."): v for k, v in ckpt["state_dict"].items()
               if k.startswith("net.")}
    net.load_state_dict(weights)
    return net.eval(), Vocab(spec.vocab), run


def sample_text(net: nn.Module, vocab: Vocab, prompt: str, max_new_tokens: int,
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
    if not cfg.get("ckpt_path"):
        raise UserError("give the checkpoint to sample from: python -m dlbasics.generate "
                        "ckpt_path=PATH prompt=...")
    if cfg.max_new_tokens < 0:
        raise UserError(f"max_new_tokens must be >= 0, got {cfg.max_new_tokens}")
    if cfg.temperature <= 0:
        raise UserError(f"temperature must be > 0 (use top_k=1 for greedy), got {cfg.temperature}")
    if cfg.top_k is not None and cfg.top_k < 1:
        raise UserError(f"top_k must be >= 1 or null, got {cfg.top_k}")
    net, vocab, _ = load_language_model(cfg.ckpt_path)
    prompt = str(cfg.prompt)
    texts = []
    for i in range(cfg.samples):
        if i:
            sys.stdout.write("\n\n")
        sys.stdout.write(prompt)
        sys.stdout.flush()
        text = prompt
        for ch in sample_text(net, vocab, prompt, cfg.max_new_tokens, cfg.temperature,
                              cfg.top_k, cfg.seed + i, cfg.use_cache):
            sys.stdout.write(ch)
            sys.stdout.flush()
            text += ch
        texts.append(text)
    sys.stdout.write("\n")
    sys.stdout.flush()
    return "\n\n".join(texts)


@hydra.main(version_base="1.3", config_path="../../conf", config_name="generate")
def main(cfg: DictConfig) -> None:
    with user_errors():
        run_generate(cfg)


if __name__ == "__main__":
    main()

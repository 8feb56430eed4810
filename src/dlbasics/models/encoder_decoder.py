"""The encoder-decoder interface (``EncoderDecoder``) and the decoding every encoder-decoder
shares: ``greedy_decode`` and ``beam_search`` return tokens and the attention weights of each
output token over the source.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.nn import functional as F
from torch.nn.utils.rnn import pad_sequence

from dlbasics.data.vocab import EOS, SOS, UNK
from dlbasics.models.base import Network
from dlbasics.spec import DataSpec

Memory = dict[str, Tensor]  # encoder results, batch first: "values" (B,S,D), "mask" (B,S), ...


class EncoderDecoder(Network):
    """Base of every encoder-decoder: the target vocabulary's specials and the decoding.

    Subclasses implement ``encode(src) -> (memory, state)``, ``decode_step(prefix, state, memory)
    -> (logits (B, V) of the next token, state, attention (B, S) or None)`` and
    ``forward(src, tgt_in, teacher_forcing) -> logits (B, T, V)``; ``reorder_state`` when the
    state is not an RNN's ``(layers, B, H)`` tensor (or a tuple of them).
    """

    input_kinds = frozenset({"tokens"})
    tasks = frozenset({"seq2seq"})

    def __init__(self, spec: DataSpec) -> None:
        super().__init__(spec)
        vocab = list(spec.tgt_vocab or ())
        if not {SOS, EOS} <= set(vocab):
            raise ValueError("a seq2seq spec needs a target vocabulary with <sos> and <eos>")
        self.src_pad = int(spec.pad_index)  # type: ignore[arg-type]
        self.tgt_pad = int(spec.tgt_pad_index if spec.tgt_pad_index is not None else 0)
        self.sos, self.eos = vocab.index(SOS), vocab.index(EOS)
        # never generated: padding, <sos>, and <unk> (a translation with "<unk>" is no translation)
        banned = torch.zeros(len(vocab), dtype=torch.bool)
        banned[[self.tgt_pad, self.sos] + ([vocab.index(UNK)] if UNK in vocab else [])] = True
        self.register_buffer("banned", banned, persistent=False)

    # ---- what subclasses implement --------------------------------------------------------------
    def encode(self, src: Tensor) -> tuple[Memory, Any]:
        raise NotImplementedError

    def decode_step(self, prefix: Tensor, state: Any, memory: Memory
                    ) -> tuple[Tensor, Any, Tensor | None]:
        raise NotImplementedError

    def reorder_state(self, state: Any, index: Tensor) -> Any:
        """Pick batch rows ``index`` of an RNN state (layers, B, H) or a tuple of them."""
        if state is None:
            return None
        if isinstance(state, tuple):
            return tuple(s.index_select(1, index) for s in state)
        return state.index_select(1, index)

    # ---- decoding -------------------------------------------------------------------------------
    def next_token(self, logits: Tensor) -> Tensor:
        """The most likely token that may be generated (not <pad>/<sos>/<unk>)."""
        return logits.masked_fill(self.banned, float("-inf")).argmax(-1)

    def max_decode_len(self, src: Tensor) -> int:
        return 2 * src.size(1) + 10

    @torch.no_grad()
    def greedy_decode(self, src: Tensor, max_len: int | None = None
                      ) -> tuple[Tensor, Tensor | None]:
        """Most likely next token at every step.

        Returns tokens (B, T) without <sos>, ending with <eos> (then <pad>), and attention weights
        (B, T, S) of each output token over the source (zero after <eos>), or None without
        attention.
        """
        max_len = max_len or self.max_decode_len(src)
        memory, state = self.encode(src)
        ys = torch.full((src.size(0), 1), self.sos, dtype=torch.long, device=src.device)
        done = torch.zeros(src.size(0), dtype=torch.bool, device=src.device)
        attns: list[Tensor] = []
        for _ in range(max_len):
            logits, state, attn = self.decode_step(ys, state, memory)
            nxt = self.next_token(logits).masked_fill(done, self.tgt_pad)
            if attn is not None:
                attns.append(attn.masked_fill(done[:, None], 0.0))
            ys = torch.cat([ys, nxt[:, None]], dim=1)
            done |= nxt == self.eos
            if done.all():
                break
        return ys[:, 1:], torch.stack(attns, dim=1) if attns else None

    @torch.no_grad()
    def beam_search(self, src: Tensor, beam_size: int = 5, max_len: int | None = None,
                    length_penalty: float = 1.0) -> tuple[Tensor, Tensor | None]:
        """Keep the ``beam_size`` most likely prefixes; returns what ``greedy_decode`` returns.

        Each step extends every live prefix by every token and keeps the ``beam_size`` best
        (by ``sum log p``). A hypothesis ends when its <eos> ranks among the top ``beam_size``
        candidates. The search stops at ``max_len``, or once ``beam_size`` have ended and the best
        ended one, by ``sum log p / length ** length_penalty``, beats every live prefix scored at
        its current length (stopping at the first ``beam_size`` ended ones instead can return a
        worse sentence than greedy's); the best ended one wins. With ``beam_size=1`` this is
        greedy decoding. Sentences are searched one at a time, their hypotheses batched.
        """
        max_len = max_len or self.max_decode_len(src)
        memory, state = self.encode(src)
        results: list[tuple[Tensor, Tensor | None]] = []
        for b in range(src.size(0)):
            one = torch.tensor([b], device=src.device)
            results.append(self._beam_one({k: v[one] for k, v in memory.items()},
                                          self.reorder_state(state, one), beam_size, max_len,
                                          length_penalty))
        tokens = pad_sequence([t for t, _ in results], batch_first=True, padding_value=self.tgt_pad)
        if results[0][1] is None:
            return tokens, None
        return tokens, pad_sequence([a for _, a in results], batch_first=True)  # 0 after <eos>

    def _beam_one(self, memory: Memory, state: Any, k: int, max_len: int, alpha: float
                  ) -> tuple[Tensor, Tensor | None]:
        device = self.banned.device
        ys = torch.full((1, 1), self.sos, dtype=torch.long, device=device)  # live prefixes
        scores = torch.zeros(1, device=device)  # their sum log p
        attn_hist: Tensor | None = None  # their attention (hyps, t, S)
        finished: list[tuple[float, Tensor, Tensor | None]] = []
        for _ in range(max_len):
            mem = {key: v.expand(len(ys), *v.shape[1:]) for key, v in memory.items()}
            logits, state, attn = self.decode_step(ys, state, mem)
            logp = F.log_softmax(logits, -1).masked_fill(self.banned, float("-inf"))
            cand = (scores.to(logp.dtype)[:, None] + logp).flatten()
            top_scores, top = cand.topk(min(2 * k, cand.numel()))
            vocab = logits.size(-1)
            keep: list[tuple[int, int]] = []
            for rank, (score, idx) in enumerate(zip(top_scores.tolist(), top.tolist())):
                parent, tok = divmod(idx, vocab)
                if score == float("-inf"):
                    break
                if tok == self.eos:
                    if rank < k:
                        hist = None if attn is None else self._hist(attn_hist, attn, [parent])[0]
                        seq = torch.cat([ys[parent, 1:], ys.new_tensor([tok])])
                        finished.append((score / len(seq) ** alpha, seq, hist))
                elif len(keep) < k:
                    keep.append((parent, tok))
            if not keep:
                ys = ys[:0]
                break
            parents, toks = torch.tensor(keep, device=device).unbind(1)
            scores = cand[parents * vocab + toks]
            ys = torch.cat([ys[parents], toks[:, None]], dim=1)
            state = self.reorder_state(state, parents)
            if attn is not None:
                attn_hist = self._hist(attn_hist, attn, parents.tolist())
            if len(finished) >= k and max(f[0] for f in finished) >= \
                    scores.max().item() / (ys.size(1) - 1) ** alpha:
                ys = ys[:0]
                break
        for i in range(len(ys)):  # max_len reached: unfinished hypotheses compete too
            hist = None if attn_hist is None else attn_hist[i]
            finished.append((scores[i].item() / (ys.size(1) - 1) ** alpha, ys[i, 1:], hist))
        _, seq, hist = max(finished, key=lambda f: f[0])
        return seq, hist

    @staticmethod
    def _hist(hist: Tensor | None, attn: Tensor, parents: list[int]) -> Tensor:
        """Attention history of the chosen parents, extended by this step's weights."""
        idx = torch.tensor(parents, device=attn.device)
        step = attn[idx][:, None]
        return step if hist is None else torch.cat([hist[idx], step], dim=1)

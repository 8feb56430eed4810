"""Seq2seq models, decoding, the task and the ``translate`` CLI.

Numerical checks run the networks in float64 (eval mode) with atol 1e-10 unless stated.
"""

from __future__ import annotations

import io
import sys

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import open_dict

from dlbasics.configs import CONF_DIR
from dlbasics.data.pairs import NumberWords
from dlbasics.errors import UserError
from dlbasics.lit.seq2seq import ExactMatch, LitSeq2Seq, sequence_metrics
from dlbasics.models.seq2seq import Seq2Seq
from dlbasics.models.seq2seq_transformer import TransformerSeq2Seq
from dlbasics.translate import Translator, translate
from tests.clirun import call

ATOL = 1e-10
RNNS = {
    "bahdanau-gru": dict(attention="bahdanau"),
    "luong-general-gru": dict(attention="luong"),
    "luong-dot-lstm-2layers": dict(attention="luong", luong_score="dot", cell="lstm",
                                   num_layers=2),
    "bahdanau-lstm-unidirectional": dict(attention="bahdanau", cell="lstm", bidirectional=False),
    "none-gru": dict(attention="none"),
}
ALL = [*RNNS, "transformer"]
WITH_ATTENTION = [m for m in ALL if not m.startswith("none")]


@pytest.fixture(scope="module")
def numbers() -> NumberWords:
    dm = NumberWords(n_train=300, n_val=40, n_test=40, batch_size=12, seed=0)
    dm.setup()
    return dm


def make_net(name: str, dm: NumberWords, impl: str = "torch"):
    torch.manual_seed(0)
    if name == "transformer":
        net = TransformerSeq2Seq(dm.spec, d_model=16, nhead=2, dim_feedforward=32,
                                 num_encoder_layers=2, num_decoder_layers=2, impl=impl)
    else:
        net = Seq2Seq(dm.spec, embed_dim=12, hidden=10, impl=impl, **RNNS[name])
    return net.double().eval()


def batch(dm: NumberWords, n: int = 12) -> tuple[torch.Tensor, torch.Tensor]:
    return dm.collate_fn([dm.val_set[i] for i in range(n)])


@pytest.mark.parametrize("name", ALL)
def test_beam_size_one_is_greedy(name, numbers):
    net = make_net(name, numbers)
    src, _ = batch(numbers)
    assert (src == 0).any()  # sentences of several lengths: padding is exercised
    tokens, attn = net.greedy_decode(src, max_len=12)
    beam, beam_attn = net.beam_search(src, beam_size=1, max_len=12)
    assert torch.equal(tokens, beam)
    if name.startswith("none"):
        assert attn is None and beam_attn is None
    else:
        torch.testing.assert_close(attn, beam_attn, atol=ATOL, rtol=0)


@pytest.mark.parametrize("name", WITH_ATTENTION)
def test_attention_sums_to_one_and_ignores_source_padding(name, numbers):
    net = make_net(name, numbers)
    src, _ = batch(numbers)
    lengths = (src != 0).sum(1)
    short = int(lengths.argmin())
    tokens, attn = net.greedy_decode(src, max_len=10)
    assert attn.shape == (len(src), tokens.size(1), src.size(1))
    live = torch.ones_like(tokens, dtype=torch.bool)  # steps up to and including <eos>
    live[:, 1:] = (tokens[:, :-1] != net.eos).cumprod(1).bool()
    torch.testing.assert_close(attn.sum(-1)[live], torch.ones(int(live.sum()), dtype=attn.dtype),
                               atol=ATOL, rtol=0)
    assert (attn[~live] == 0).all()
    pad = (src == 0)[:, None].expand_as(attn)
    assert (attn[pad] == 0).all()
    # the padded sentence decodes exactly as it does alone, without padding
    alone = src[short : short + 1, : int(lengths[short])]
    tokens1, attn1 = net.greedy_decode(alone, max_len=10)
    assert torch.equal(tokens1[0], tokens[short, : tokens1.size(1)])
    torch.testing.assert_close(attn1[0], attn[short, : tokens1.size(1), : alone.size(1)],
                               atol=ATOL, rtol=0)
    beam1, _ = net.beam_search(alone, beam_size=3, max_len=10)
    beam, _ = net.beam_search(src, beam_size=3, max_len=10)
    assert torch.equal(beam1[0], beam[short, : beam1.size(1)])


def _stepwise_logits(net, src: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
    """Decode one step at a time, always reading the gold prefix."""
    memory, state = net.encode(src)
    out = []
    for t in range(tgt_in.size(1)):
        logits, state, _ = net.decode_step(tgt_in[:, : t + 1], state, memory)
        out.append(logits)
    return torch.stack(out, 1)


@pytest.mark.parametrize("name", ALL)
def test_teacher_forcing_one_reads_the_gold_tokens(name, numbers):
    net = make_net(name, numbers)
    src, tgt = batch(numbers)
    tgt_in = tgt[:, :-1]
    logits = net(src, tgt_in, teacher_forcing=1.0)
    assert logits.shape == (*tgt_in.shape, numbers.spec.tgt_vocab_size)
    # the one-call paths (Luong, none, transformer) equal decoding step by step
    torch.testing.assert_close(logits, _stepwise_logits(net, src, tgt_in), atol=ATOL, rtol=0)
    # a changed gold token at position 3 changes the predictions from position 3 on, only
    changed = tgt_in.clone()
    changed[:, 3] = (changed[:, 3] + 1 - 4) % (numbers.spec.tgt_vocab_size - 4) + 4
    other = net(src, changed, teacher_forcing=1.0)
    torch.testing.assert_close(other[:, :3], logits[:, :3], atol=ATOL, rtol=0)
    assert (other[:, 3] - logits[:, 3]).abs().amax(-1).min() > 1e-6


@pytest.mark.parametrize("name", list(RNNS))
def test_teacher_forcing_zero_reads_its_own_predictions(name, numbers):
    net = make_net(name, numbers)
    src, tgt = batch(numbers)
    tgt_in = tgt[:, :-1]
    logits = net(src, tgt_in, teacher_forcing=0.0)
    noise = torch.randint(4, numbers.spec.tgt_vocab_size, tgt_in.shape)
    noise[:, 0] = tgt_in[:, 0]  # <sos>
    torch.testing.assert_close(net(src, noise, teacher_forcing=0.0), logits, atol=ATOL, rtol=0)
    # the free-running predictions are greedy decoding's (until <eos>)
    tokens, _ = net.greedy_decode(src, max_len=tgt_in.size(1))
    pred = net.next_token(logits)
    live = tokens != net.tgt_pad
    assert torch.equal(pred[:, : tokens.size(1)][live], tokens[live])


def test_transformer_scheduled_sampling(numbers):
    """teacher_forcing=0: each position reads the first (gold-fed) pass's previous prediction."""
    net = make_net("transformer", numbers)
    src, tgt = batch(numbers)
    tgt_in = tgt[:, :-1]
    memory, _ = net.encode(src)
    first = net.next_token(net._decode(tgt_in, memory)[0])
    fed = torch.cat([tgt_in[:, :1], first[:, :-1]], 1)
    fed = torch.where(tgt_in == net.tgt_pad, tgt_in, fed)
    torch.testing.assert_close(net(src, tgt_in, teacher_forcing=0.0),
                               net._decode(fed, memory)[0], atol=ATOL, rtol=0)


@pytest.mark.parametrize("name", ["bahdanau-lstm-unidirectional", "luong-dot-lstm-2layers",
                                  "none-gru", "transformer"])
def test_scratch_layers_give_the_same_model(name, numbers):
    """impl=scratch (dlbasics.scratch.layers, lengths= instead of packing) with the same weights."""
    net = make_net(name, numbers)
    scratch = make_net(name, numbers, impl="scratch")
    scratch.load_state_dict(net.state_dict())
    src, tgt = batch(numbers)
    torch.testing.assert_close(scratch(src, tgt[:, :-1]), net(src, tgt[:, :-1]), atol=ATOL,
                               rtol=0)
    tokens, attn = net.greedy_decode(src, max_len=8)
    tokens_s, attn_s = scratch.greedy_decode(src, max_len=8)
    assert torch.equal(tokens_s, tokens)
    if attn is not None:
        torch.testing.assert_close(attn_s, attn, atol=ATOL, rtol=0)


def test_generation_never_emits_pad_sos_or_unk(numbers):
    net = make_net("bahdanau-gru", numbers)
    with torch.no_grad():  # make the banned tokens the most likely ones
        net.head.bias[:3] = 1e3
    src, _ = batch(numbers)
    for tokens in (net.greedy_decode(src, max_len=6)[0], net.beam_search(src, 2, max_len=6)[0]):
        assert (tokens[:, 0] != 0).all() and not torch.isin(tokens, torch.tensor([1, 2])).any()


def test_task_loss_ignores_target_padding_and_metrics(numbers):
    net = make_net("luong-general-gru", numbers)
    task = LitSeq2Seq(net, numbers.spec, optimizer=torch.optim.Adam).double().eval()
    src, tgt = batch(numbers)
    loss = task.forward_batch((src, tgt))[0]
    padded = torch.cat([tgt, torch.zeros(len(tgt), 3, dtype=torch.long)], 1)
    torch.testing.assert_close(task.forward_batch((src, padded))[0], loss, atol=ATOL, rtol=0)
    # mean over the real target tokens (<eos> included), one sentence at a time
    total, count = 0.0, 0
    for i in range(len(src)):
        s = src[i : i + 1, : int((src[i] != 0).sum())]
        t = tgt[i : i + 1, : int((tgt[i] != 0).sum())]
        logp = net(s, t[:, :-1]).log_softmax(-1)
        total -= logp.gather(-1, t[:, 1:, None]).sum().item()
        count += t.size(1) - 1
    assert loss.item() == pytest.approx(total / count, abs=1e-9)
    assert task.to_text(tgt[:1])[0] == " ".join(numbers.decode_target(tgt[0]))

    em = ExactMatch()
    em.update(["a b", "a c", "d"], [["a b"], ["a b"], ["x", "d"]])
    assert em.compute().item() == pytest.approx(2 / 3)
    metrics = sequence_metrics()
    metrics.update(["deux cent trente - quatre"], [["deux cent trente - quatre"]])
    assert {k: v.item() for k, v in metrics.compute().items()} == {"exact_match": 1.0,
                                                                   "bleu": 1.0}


# ---- a tiny trained checkpoint: the vocabulary's round trip, eval and translate --------------


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from dlbasics.train import train

    out = tmp_path_factory.mktemp("seq2seq_run")
    overrides = [
        "model=seq2seq", "data=numbers", "optimizer=adam", "optimizer.lr=0.01",
        "data.n_train=400", "data.n_val=40", "data.n_test=40", "data.batch_size=32",
        "model.hidden=32", "model.embed_dim=32", "trainer.max_epochs=4",
        "callbacks.progress_bar=null", "callbacks.lr_monitor=null", "logger=none",
        "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false",
        "module.test_beam_size=2",
    ]
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    with open_dict(cfg):
        cfg.paths.output_dir = str(out / "run")
    metrics = train(cfg)
    best = sorted((out / "run" / "checkpoints").glob("epoch*.ckpt"))
    assert len(best) == 1
    return best[0], metrics, out


def test_checkpoint_carries_the_vocabularies(trained, tmp_path):
    from dlbasics.checkpoint import read_checkpoint
    from dlbasics.eval import evaluate

    ckpt_path, metrics, _ = trained
    ckpt = read_checkpoint(ckpt_path)
    state = ckpt["dlbasics"]["data_state"]["vocabs"]
    assert state["source"]["itos"][:4] == ["<pad>", "<unk>", "<sos>", "<eos>"]
    assert tuple(state["target"]["itos"]) == tuple(ckpt["dlbasics"]["spec"]["tgt_vocab"])
    assert {"test/exact_match", "test/bleu", "test/beam_exact_match", "test/beam_bleu"} <= set(
        metrics)
    # eval rebuilds data and model from the checkpoint and scores the same test set alike
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("eval", overrides=[f"ckpt_path={ckpt_path}", "logger=none",
                                         "trainer.enable_progress_bar=false"])
    with open_dict(cfg):
        cfg.paths.output_dir = str(tmp_path / "eval")
    again = evaluate(cfg)
    for key in ("test/exact_match", "test/bleu", "test/loss"):
        assert again[key] == pytest.approx(metrics[key], abs=1e-6)


def test_beam_search_finds_likelier_sentences_than_greedy(trained):
    """On the trained model's test sentences: beam search (length_penalty=0: plain sum of log
    probabilities) returns a sentence at least as likely as greedy's, and its score is the model's
    teacher-forced log-probability of that sentence."""
    ckpt_path, _, _ = trained
    translator = Translator(str(ckpt_path))
    net, dm = translator.net, translator.datamodule
    dm.setup()
    src, _ = dm.collate_fn([dm.test_set[i] for i in range(20)])

    def logprob(tokens: torch.Tensor) -> torch.Tensor:
        tgt = torch.cat([torch.full((len(tokens), 1), net.sos), tokens], 1)
        logp = net(src, tgt[:, :-1]).log_softmax(-1)
        real = tgt[:, 1:] != net.tgt_pad
        return (logp.gather(-1, tgt[:, 1:, None])[..., 0] * real).sum(1)

    with torch.no_grad():
        greedy = logprob(net.greedy_decode(src)[0])
        beam = logprob(net.beam_search(src, beam_size=4, length_penalty=0.0)[0])
    assert (beam >= greedy - 1e-5).all()  # float32 sums of ~20 log-probabilities


def test_translate_cli_end_to_end(trained, tmp_path):
    ckpt_path, _, _ = trained
    text = "seven hundred and one thousand, two hundred and thirty-four"
    png = tmp_path / "attention.png"
    code, out, err = call("dlbasics.translate", f"ckpt_path={ckpt_path}", f'text="{text}"',
                          "beam_size=3", f"heatmap={png}", f"paths.log_dir={tmp_path / 'logs'}")
    assert code == 0, err
    printed = out.strip().splitlines()[-1]
    expected = Translator(str(ckpt_path))(text, beam_size=3)
    assert printed == expected["translation"] and printed
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    import matplotlib.image

    assert matplotlib.image.imread(png).ndim == 3
    attn = expected["attention"]
    assert attn.shape == (len(expected["output"]), len(expected["source"]))
    torch.testing.assert_close(attn.sum(-1), torch.ones(len(attn)), atol=1e-5, rtol=0)


def test_translate_greedy_stdin_and_user_errors(trained, tmp_path, monkeypatch):
    ckpt_path, _, _ = trained
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("translate", overrides=[f"ckpt_path={ckpt_path}", 'text="forty-two"'])
        piped = compose("translate", overrides=[f"ckpt_path={ckpt_path}"])
        missing = compose("translate", overrides=[f"ckpt_path={tmp_path / 'no.ckpt'}",
                                                  "text=one"])
    translator = Translator(str(ckpt_path))
    assert translate(cfg) == [translator("forty-two")["translation"]]
    monkeypatch.setattr(sys, "stdin", io.StringIO("forty-two\n\nseven hundred thousand\n"))
    assert translate(piped) == [translator(t)["translation"]
                                for t in ("forty-two", "seven hundred thousand")]
    with pytest.raises(UserError, match="does not exist"):
        translate(missing)
    with pytest.raises(UserError, match="beam_size"):
        Translator(str(ckpt_path))("one", beam_size=0)


@pytest.mark.slow
def test_attention_translates_the_held_out_numbers(make_cfg):
    """The recipe behind the README number: >= 95% exact match on 700,000-799,999 (a few
    minutes on a CPU)."""
    from dlbasics.train import train

    cfg = make_cfg("experiment=numbers_bahdanau", "callbacks.progress_bar=null", "logger=none",
                   "callbacks.lr_monitor=null", "trainer.enable_progress_bar=false")
    metrics = train(cfg)
    assert metrics["test/exact_match"] >= 0.95
    assert metrics["test/beam_exact_match"] >= 0.95

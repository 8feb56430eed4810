"""Language models: causality, weight tying, KV cache, sampling, metrics, checkpoints, the CLI.

Numerical comparisons run in float64 (tolerance 1e-10 unless stated); inputs are real Tiny
Shakespeare characters encoded with the vocabulary of its train split.
"""

from __future__ import annotations

import math

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import open_dict

from dlbasics.configs import CONF_DIR
from dlbasics.data.chars import CharCorpus
from dlbasics.errors import UserError
from dlbasics.lit import LitLanguageModel
from dlbasics.models.lm_lstm import LMLSTM
from dlbasics.models.lm_transformer import LMTransformer
from dlbasics.models.sampling import generate, sample_next
from dlbasics.spec import DataSpec
from tests.clirun import call
from tests.ondisk.chars import write_shakespeare

ATOL = 1e-10
BLOCK = 24


@pytest.fixture(scope="module")
def shakespeare() -> CharCorpus:
    dm = CharCorpus(corpus="shakespeare", data_dir="/nonexistent", download=False,
                    block_size=BLOCK, batch_size=4)
    dm.setup()
    return dm


@pytest.fixture(scope="module")
def spec(shakespeare) -> DataSpec:
    return shakespeare.spec


def text_ids(dm: CharCorpus, text: str) -> torch.Tensor:
    return torch.tensor([dm.vocab.encode(list(text))])


def models(spec: DataSpec) -> list[torch.nn.Module]:
    torch.manual_seed(0)
    return [LMTransformer(spec, n_layer=2, n_head=2, n_embd=32).double().eval(),
            LMLSTM(spec, n_embd=32, hidden=32, num_layers=2).double().eval()]


def test_output_at_t_ignores_later_tokens(shakespeare, spec):
    a = text_ids(shakespeare, "ROMEO:\nBut soft, what li")
    b = text_ids(shakespeare, "ROMEO:\nBut soft, WHAT LI")
    t = 17  # the first position that differs
    assert torch.equal(a[:, :t], b[:, :t]) and a[0, t] != b[0, t]
    for net in models(spec):
        la, lb = net(a), net(b)
        assert la.shape == (1, a.size(1), spec.vocab_size)
        torch.testing.assert_close(la[:, :t], lb[:, :t], rtol=0, atol=ATOL)
        assert (la[:, t:] - lb[:, t:]).abs().amax(-1).min() > 1e-6  # later outputs do change


def test_head_is_tied_to_the_embedding(spec):
    transformer, lstm = models(spec)
    for net in (transformer, lstm):
        assert net.head.weight is net.wte.weight
        n_unique = sum(p.numel() for p in net.parameters())
        n_modules = sum(p.numel() for m in net.modules() for p in m.parameters(recurse=False))
        assert n_modules - n_unique == net.wte.weight.numel()  # counted once, shared twice
    untied = LMLSTM(spec, n_embd=32, hidden=32, tie_weights=False)
    assert untied.head.weight is not untied.wte.weight
    with pytest.raises(UserError, match="hidden == model.n_embd"):
        LMLSTM(spec, n_embd=32, hidden=64)


def test_step_with_cache_equals_full_forward(shakespeare, spec):
    idx = text_ids(shakespeare, "JULIET:\nO Romeo, Romeo!")
    for net in models(spec):
        full = net(idx)
        logits, state = net.step(idx[:, :5])  # a prompt, then a chunk, then one token at a time
        chunk, state = net.step(idx[:, 5:9], state)
        singles = []
        for t in range(9, idx.size(1)):
            out, state = net.step(idx[:, t : t + 1], state)
            singles.append(out)
        torch.testing.assert_close(torch.cat([logits, chunk, *singles], 1), full,
                                   rtol=0, atol=ATOL)


def test_cached_generation_equals_uncached(shakespeare, spec):
    prompt = text_ids(shakespeare, "KING HENRY:\n")
    for net in models(spec):
        runs = [generate(net, prompt, 2 * BLOCK, temperature=1.0, top_k=None,
                         generator=torch.Generator().manual_seed(5), use_cache=cache)
                for cache in (True, False)]
        assert runs[0].shape == (1, prompt.size(1) + 2 * BLOCK)  # the window slides: > BLOCK
        assert torch.equal(runs[0], runs[1])


def test_generation_is_deterministic_under_a_seed(shakespeare, spec):
    prompt = text_ids(shakespeare, "First Citizen:\n")
    for net in models(spec):
        def sample(seed: int, net=net) -> torch.Tensor:
            return generate(net, prompt, 40, temperature=1.0, top_k=None,
                            generator=torch.Generator().manual_seed(seed))

        first = sample(1)
        assert torch.equal(first, sample(1))
        assert not torch.equal(first, sample(2))
        assert torch.equal(first[:, : prompt.size(1)], prompt)


def test_top_k_restricts_samples():
    logits = torch.randn(500, 67, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    g = torch.Generator().manual_seed(1)
    top3 = logits.topk(3, dim=-1).indices
    drawn = sample_next(logits, top_k=3, generator=g)
    assert (drawn == top3).any(-1).all()
    assert (drawn != logits.argmax(-1, keepdim=True)).any()  # not just greedy
    assert not (sample_next(logits, generator=g) == top3).any(-1).all()  # unrestricted: others
    assert torch.equal(sample_next(logits, top_k=1, generator=g), logits.argmax(-1, keepdim=True))
    cold = sample_next(logits, temperature=1e-6, generator=g)  # temperature -> 0: greedy
    top2 = logits.topk(2, dim=-1).values
    clear = top2[:, 0] - top2[:, 1] > 1e-4  # rows whose two best logits are not (near) tied
    assert clear.sum() > 450
    assert torch.equal(cold[clear], logits.argmax(-1, keepdim=True)[clear])
    never = sample_next(logits, top_k=1, generator=g, suppress=tuple(range(1, 67)))
    assert (never == 0).all()


def test_bpc_is_loss_over_ln2(shakespeare, spec):
    torch.manual_seed(0)
    net = LMTransformer(spec, n_layer=1, n_head=2, n_embd=16)
    task = LitLanguageModel(net=net, spec=spec,
                             optimizer=lambda p: torch.optim.SGD(p, lr=0.1)).double()
    task.val_metrics.set_dtype(torch.float64)
    batches = [next(iter(shakespeare.val_dataloader())), next(iter(shakespeare.test_dataloader()))]
    total, count = 0.0, 0
    for batch in batches:
        loss, logits, target, n = task.forward_batch(batch)
        task.val_metrics.update(logits, target)
        total, count = total + loss.item() * int(n), count + int(n)
    metrics = task.val_metrics.compute()
    mean_loss = total / count
    assert math.isclose(metrics["val/bpc"].item(), mean_loss / math.log(2), rel_tol=1e-12)
    assert math.isclose(metrics["val/ppl"].item(), math.exp(mean_loss), rel_tol=1e-12)
    assert 3.5 < mean_loss < 5.0  # an untrained model: near ln(vocab size) = 4.2


# ---- a tiny real run: checkpoint, vocabulary round-trip, eval and the generate CLI -----------

@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> dict:
    """10 steps of a 1-layer Transformer on the first 20,000 characters of Tiny Shakespeare."""
    from dlbasics.train import train

    root = tmp_path_factory.mktemp("lm")
    write_shakespeare(root / "data")
    overrides = [
        "model=lm_transformer", "data=shakespeare", f"data.data_dir={root / 'data'}",
        "data.download=false", "data.block_size=32", "data.batch_size=8",
        "data.samples_per_epoch=80", "model.n_layer=1", "model.n_head=2", "model.n_embd=32",
        "trainer.max_steps=10", "trainer.max_epochs=1", "logger=none",
        "callbacks.progress_bar=null", "callbacks.lr_monitor=null",
        "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false",
    ]
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    with open_dict(cfg):
        cfg.paths.output_dir = str(root / "run")
    metrics = train(cfg)
    return {"root": root, "metrics": metrics, "ckpt": root / "run" / "checkpoints" / "last.ckpt"}


def test_training_logs_bpc_and_checkpoint_carries_the_vocabulary(tiny_run):
    m = tiny_run["metrics"]
    assert m["global_step"] == 10
    for stage in ("val", "test"):  # token-weighted epoch means: exact identities
        assert math.isclose(m[f"{stage}/bpc"], m[f"{stage}/loss"] / math.log(2), rel_tol=1e-5)
        assert math.isclose(m[f"{stage}/ppl"], math.exp(m[f"{stage}/loss"]), rel_tol=1e-5)
    from dlbasics.checkpoint import read_checkpoint

    ckpt = read_checkpoint(tiny_run["ckpt"])
    vocab = ckpt["dlbasics"]["spec"]["vocab"]
    assert m["val/loss"] < math.log(len(vocab))  # 10 steps already beat the uniform guess
    assert ckpt["dlbasics"]["data_state"]["vocabs"]["tokens"]["itos"] == list(vocab)
    other = CharCorpus(corpus="pydoc", block_size=32)  # a text with another character set
    other.setup()
    assert list(other.spec.vocab) != list(vocab)
    other.load_data_state(ckpt["dlbasics"]["data_state"])
    assert list(other.spec.vocab) == list(vocab)


def test_eval_reproduces_the_test_loss_from_the_checkpoint(tiny_run, tmp_path):
    from dlbasics.eval import evaluate

    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("eval", overrides=[f"ckpt_path={tiny_run['ckpt']}", "logger=none",
                                         "trainer.enable_progress_bar=false",
                                         "trainer.enable_model_summary=false"])
    with open_dict(cfg):
        cfg.paths.output_dir = str(tmp_path)
    metrics = evaluate(cfg)
    assert math.isclose(metrics["test/loss"], tiny_run["metrics"]["test/loss"], rel_tol=1e-6)


def test_generate_cli_streams_seeded_text(tiny_run, tmp_path):
    from dlbasics.generate import load_language_model, sample_text

    code, stdout, err = call("dlbasics.generate", f"ckpt_path={tiny_run['ckpt']}",
                             'prompt="ROMEO: O"', "max_new_tokens=60", "temperature=0.9",
                             "top_k=10", "seed=3", f"hydra.run.dir={tmp_path}")
    assert code == 0, err
    net, vocab = load_language_model(str(tiny_run["ckpt"]))
    expected = "".join(sample_text(net, vocab, "ROMEO: O", 60, 0.9, 10, seed=3))
    assert stdout == "ROMEO: O" + expected + "\n"
    assert len(expected) == 60 and "<pad>" not in expected and "<unk>" not in expected
    assert expected != "".join(sample_text(net, vocab, "ROMEO: O", 60, 0.9, 10, seed=4))


def test_generate_refuses_a_classifier_checkpoint(tmp_path):
    from dlbasics.generate import run_generate

    spec = DataSpec(task="classification", input_kind="vector", input_shape=(4,), num_classes=3)
    ckpt = {"state_dict": {}, "dlbasics": {"config": {"choices": {"model": "mlp"}},
                                           "spec": spec.to_dict()}}
    torch.save(ckpt, tmp_path / "clf.ckpt")
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("generate", overrides=[f"ckpt_path={tmp_path / 'clf.ckpt'}"])
    with pytest.raises(UserError, match="classification checkpoint .*not a language model"):
        run_generate(cfg)


@pytest.mark.parametrize("cls", [LMTransformer, LMLSTM])
def test_scratch_layers_give_the_same_model(cls, shakespeare, spec):
    kwargs = {"n_embd": 32} | ({"n_layer": 2, "n_head": 2} if cls is LMTransformer
                               else {"hidden": 32})
    torch.manual_seed(0)
    ref = cls(spec, **kwargs).double().eval()
    scratch = cls(spec, impl="scratch", **kwargs).double().eval()
    scratch.load_state_dict(ref.state_dict())
    assert scratch.head.weight is scratch.wte.weight
    idx = text_ids(shakespeare, "GLOUCESTER:\nNow is the")
    torch.testing.assert_close(scratch(idx), ref(idx), rtol=0, atol=ATOL)


@pytest.mark.slow
@pytest.mark.parametrize(("experiment", "best_val_loss"),
                         [("shakespeare_transformer", 1.88), ("shakespeare_lstm", 1.88)])
def test_shakespeare_beats_nanogpt_cpu_baseline(experiment, best_val_loss, tmp_path):
    """The full 1,536,000-token runs (~6-15 min each on 2 busy CPU cores): nanoGPT's 1.88."""
    from dlbasics.train import train

    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("train", overrides=[f"experiment={experiment}", "logger=none",
                                          "callbacks.progress_bar=null",
                                          "callbacks.lr_monitor=null",
                                          "trainer.enable_progress_bar=false"])
    with open_dict(cfg):
        cfg.paths.output_dir = str(tmp_path)
    metrics = train(cfg)
    assert metrics["global_step"] == 2000
    assert metrics["val/loss"] < best_val_loss
    assert metrics["test/loss"] < best_val_loss + 0.1

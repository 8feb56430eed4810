"""Every registered network through the one interface (as timm's model tests walk its registry),
and ``impl=scratch`` purity: no torch layer that has a from-scratch twin is left in the model."""

from __future__ import annotations

import pytest
import torch
from hydra.utils import get_class
from omegaconf import OmegaConf
from torch import nn

import tests.seqdata as seqdata
from dlbasics.configs import CONF_DIR, choices, pairs, target_class
from dlbasics.data.vocab import EOS, SOS, Vocab, char_tokenize
from dlbasics.models.base import LanguageModel
from dlbasics.models.encoder_decoder import EncoderDecoder
from dlbasics.scratch import layers as scratch_layers
from dlbasics.spec import DataSpec

TWINS = tuple(getattr(nn, name) for name in scratch_layers.__all__)


def torch_layers_with_a_scratch_twin(net: nn.Module) -> list[str]:
    """Names of the modules of ``net`` that are torch layers with a twin in dlbasics.scratch."""
    return [f"{name}: {type(m).__name__}" for name, m in net.named_modules()
            if isinstance(m, TWINS) and not type(m).__module__.startswith("dlbasics.scratch")]


def spec_for(data: str) -> DataSpec:
    """A spec of the kind data config ``data`` gives, without reading the data."""
    cls = target_class("data", data)
    kind, task = cls.input_kind, cls.task
    if kind == "image":
        return DataSpec(task=task, input_kind=kind, input_shape=cls.shape,
                        num_classes=len(cls.class_names), class_names=cls.class_names)
    if kind == "vector":
        return DataSpec(task=task, input_kind=kind, input_shape=(10,), num_targets=1,
                        target_mean=(150.0,), target_std=(75.0,))
    if kind == "signal":
        return DataSpec(task=task, input_kind=kind, input_shape=(1, 40), num_classes=10)
    if task == "classification":
        return seqdata.token_spec(num_classes=len(cls.class_names))
    if task == "language_model":
        v = Vocab.build([char_tokenize(" ".join(seqdata.SENTENCES))], tokenizer="char")
        return DataSpec(task=task, input_kind=kind, input_shape=(16,), vocab_size=len(v),
                        pad_index=0, vocab=tuple(v.itos))
    src = Vocab.build([s.lower().split() for s in seqdata.SENTENCES], specials=(SOS, EOS))
    tgt = Vocab.build([s.upper().split() for s in seqdata.SENTENCES], specials=(SOS, EOS))
    return DataSpec(task=task, input_kind=kind, input_shape=(0,), vocab_size=len(src),
                    pad_index=0, vocab=tuple(src.itos), tgt_vocab_size=len(tgt),
                    tgt_pad_index=0, tgt_vocab=tuple(tgt.itos))


def build(model: str, spec: DataSpec, **overrides) -> nn.Module:
    cfg = OmegaConf.to_container(OmegaConf.load(CONF_DIR / "model" / f"{model}.yaml"))
    cls = get_class(cfg.pop("_target_"))
    return cls(spec=spec, **{**cfg, **overrides})


def inputs(spec: DataSpec, batch: int = 3) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    if spec.input_kind == "tokens":
        return torch.randint(2, spec.vocab_size, (batch, 7), generator=g)
    return torch.randn(batch, *spec.input_shape, generator=g)


def target_in(spec: DataSpec, batch: int = 3) -> torch.Tensor:
    sos = spec.tgt_vocab.index(SOS)
    body = torch.randint(4, spec.tgt_vocab_size, (batch, 5), generator=torch.Generator().manual_seed(1))
    return torch.cat([torch.full((batch, 1), sos), body], dim=1)


# one case per (model, kind of data) that composes: the registry walked as timm walks its own
CASES = sorted({(m, (target_class("data", d).input_kind, target_class("data", d).task)): d
                for m, d in pairs()}.items())
IDS = [f"{m}-{kind}-{task}" for (m, (kind, task)), _ in CASES]


def test_every_model_config_has_a_case():
    assert {m for (m, _), _ in CASES} == set(choices("model"))


@pytest.mark.parametrize(("key", "data"), CASES, ids=IDS)
def test_interface(key, data):
    model, _ = key
    spec = spec_for(data)
    torch.manual_seed(0)
    net = build(model, spec).eval()
    if isinstance(net, EncoderDecoder):
        src, tgt = inputs(spec), target_in(spec)
        out = net(src, tgt)
        assert out.shape == (3, tgt.shape[1], spec.tgt_vocab_size)
        tokens, _ = net.greedy_decode(src, max_len=4)
        assert tokens.shape[0] == 3 and tokens.shape[1] <= 4
        loss = out.logsumexp(-1).mean()
    elif isinstance(net, LanguageModel):
        idx = inputs(spec)
        out = net(idx)
        assert out.shape == (3, idx.shape[1], spec.vocab_size)
        torch.testing.assert_close(net.forward_head(net.forward_features(idx)), out)
        logits, state = net.step(idx[:, :4])
        more, _ = net.step(idx[:, 4:], state)  # the cache continues where the prompt stopped
        torch.testing.assert_close(torch.cat([logits, more], 1), out, atol=1e-5, rtol=1e-5)
        loss = out.logsumexp(-1).mean()
    else:
        x = inputs(spec)
        out = net(x)
        assert out.shape == (3, spec.num_outputs)
        torch.testing.assert_close(net.forward_head(net.forward_features(x)), out)
        loss = out.square().mean()
    net.train()
    loss.backward()
    dead = [n for n, p in net.named_parameters() if p.requires_grad and p.grad is None]
    assert not dead, f"parameters without a gradient: {dead}"


@pytest.mark.parametrize(("key", "data"), CASES, ids=IDS)
def test_reset_head(key, data):
    model, _ = key
    spec = spec_for(data)
    net = build(model, spec).eval()
    tied = any(p is net.head.weight for n, p in net.named_parameters(remove_duplicate=False)
               if not n.startswith("head."))
    if tied:  # replacing a tied head would silently untie it: refused
        with pytest.raises(ValueError, match="weight tying"):
            net.reset_head(5)
        assert net.head.weight is net.wte.weight
        return
    before = {n: p.clone() for n, p in net.named_parameters() if not n.startswith("head.")}
    old_head = type(net.head)
    net.reset_head(5)
    assert type(net.head) is old_head and net.head.out_features == 5
    assert all(torch.equal(p, before[n]) for n, p in net.named_parameters() if n in before)
    if isinstance(net, EncoderDecoder):
        assert net(inputs(spec), target_in(spec)).shape[-1] == 5
    elif isinstance(net, LanguageModel):
        assert net(inputs(spec)).shape[-1] == 5
    else:
        assert net(inputs(spec)).shape == (3, 5)


def test_untied_language_model_head_can_be_reset():
    spec = spec_for("shakespeare")
    net = build("lm_lstm", spec, tie_weights=False)
    net.reset_head(7)
    assert net(inputs(spec)).shape[-1] == 7


@pytest.mark.parametrize(("key", "data"), CASES, ids=IDS)
def test_impl_scratch_leaves_no_torch_twin(key, data):
    model, _ = key
    spec = spec_for(data)
    assert torch_layers_with_a_scratch_twin(build(model, spec))  # the torch build has some
    net = build(model, spec, impl="scratch")
    assert not torch_layers_with_a_scratch_twin(net)


def test_the_twin_list_covers_the_scratch_library():
    assert {nn.Linear, nn.Conv2d, nn.Conv1d, nn.MaxPool2d, nn.AvgPool1d, nn.Dropout, nn.LSTM,
            nn.GRU, nn.RNN, nn.MultiheadAttention} <= set(TWINS)

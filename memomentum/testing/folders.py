"""A folder of images with one sub-folder per class (``train/<class>/``, ``test/<class>/``, or flat),
as :mod:`memomentum.data.folders` reads it."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..base.errors import InputError
from .images import check_size, class_image, save_image


def write_image_folder(
    root: str | os.PathLike,
    *,
    classes: Sequence[str] = ("cat", "dog", "fox"),
    per_class: int = 10,
    test_per_class: int = 0,
    size: tuple[int, int] = (40, 32),
    fmt: str = "jpg",
    seed: int = 0,
    layout: str = "split",
) -> dict:
    """Write a folder of images with one sub-folder per class.

    Args:
        root: the directory to write (created if needed).
        classes: the class folders' names (label ``i`` is the ``i``-th name in sorted
            order, as the reader numbers them).
        per_class: training images per class, named ``0000.<fmt>``, ``0001.<fmt>``, ...
        test_per_class: test images per class (``layout="split"`` only).
        size: (width, height).
        fmt: ``"jpg"`` or ``"png"``.
        seed: seeds the images.
        layout: ``"split"``: ``root/train/<class>/`` and, with ``test_per_class``,
            ``root/test/<class>/``; ``"flat"``: ``root/<class>/`` (no test set).

    Returns:
        A dict with ``root``, ``train_dir``, ``test_dir`` (None without a test set),
        ``class_names`` (sorted), ``n_train`` and ``n_test``.
    """
    if fmt not in ("jpg", "png"):
        raise InputError(f"fmt must be 'jpg' or 'png', got {fmt!r}")
    if layout not in ("split", "flat"):
        raise InputError(f"layout must be 'split' or 'flat', got {layout!r}")
    if layout == "flat" and test_per_class:
        raise InputError("a flat image folder has no test set: give test_per_class=0 or layout='split'")
    size = check_size(size)
    names = sorted(classes)
    rng = np.random.default_rng(seed)
    root = Path(root)
    train_dir = root / "train" if layout == "split" else root
    test_dir = root / "test" if test_per_class else None
    for label, name in enumerate(names):
        for i in range(per_class):
            save_image(class_image(label, len(names), size, rng), train_dir / name / f"{i:04d}.{fmt}", fmt)
        if test_dir is not None:  # None without test images
            for i in range(test_per_class):
                save_image(class_image(label, len(names), size, rng), test_dir / name / f"{i:04d}.{fmt}", fmt)
    return {
        "root": root,
        "train_dir": train_dir,
        "test_dir": test_dir,
        "class_names": tuple(names),
        "n_train": per_class * len(names),
        "n_test": test_per_class * len(names),
    }

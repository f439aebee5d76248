"""A miniature Clothing1M (real JPEGs, the official annotation files) in the release's layout,
as :mod:`memomentum.data.clothing1m` reads it."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..base.errors import InputError
from ..data.clothing1m import (
    ANNOTATIONS,
    CATEGORY_NAMES,
    CLEAN_KV,
    CLEAN_TEST,
    CLEAN_TRAIN,
    CLEAN_VAL,
    CLOTHING1M_CLASSES,
    NOISY_KV,
    NOISY_TRAIN,
    NUM_CLASSES,
)
from .images import check_size, class_image, flip_labels, save_image, write_lines

LAYOUTS = ("root", "annotations")


def image_key(index: int) -> str:
    """The key of image ``index``, in the release's form ``images/<d>/<dd>/<name>.jpg``
    (a 10-digit name, as long as the real ones, whose last digits pick the folders)."""
    name = f"{1_000_000_000 + index * 7919:010d}"
    return f"images/{name[-3]}/{name[-2:]}/{name}.jpg"


def write_annotations(
    ann: Path,
    *,
    noisy_kv: Sequence[str],
    clean_kv: Sequence[str],
    noisy_train: Sequence[str],
    clean_train: Sequence[str],
    val: Sequence[str],
    test: Sequence[str],
) -> None:
    write_lines(ann / CATEGORY_NAMES, CLOTHING1M_CLASSES)
    write_lines(ann / NOISY_KV, noisy_kv)
    write_lines(ann / CLEAN_KV, clean_kv)
    write_lines(ann / NOISY_TRAIN, noisy_train)
    write_lines(ann / CLEAN_TRAIN, clean_train)
    write_lines(ann / CLEAN_VAL, val)
    write_lines(ann / CLEAN_TEST, test)


def write_clothing1m(
    root: str | os.PathLike,
    *,
    per_class: int = 20,
    size: tuple[int, int] = (48, 40),
    noise: float = 0.3,
    n_clean_noisy: int = 20,
    n_val_per_class: int = 4,
    n_test_per_class: int = 4,
    seed: int = 0,
    layout: str = "root",
) -> dict:
    """Write a miniature Clothing1M in the official release's layout.

    What is written under ``root`` (see :mod:`memomentum.data.clothing1m`):

    * the noisy training set: ``per_class`` images of each of the 14 classes (in a
      shuffled order), listed in ``noisy_train_key_list.txt``; their labels in
      ``noisy_label_kv.txt`` are flipped to a uniformly drawn other class with
      probability ``noise``;
    * ``n_clean_noisy`` of those training images (drawn at random) also get their true
      label in ``clean_label_kv.txt`` and form ``clean_train_key_list.txt``;
    * ``n_val_per_class`` and ``n_test_per_class`` further images per class, listed in
      ``clean_val_key_list.txt`` and ``clean_test_key_list.txt`` with their true labels
      in ``clean_label_kv.txt``. As in the real release, ``noisy_label_kv.txt`` holds
      (noisy) labels for them too, so it has more lines than the training key list;
    * ``category_names_eng.txt`` with :data:`CLOTHING1M_CLASSES`.

    Args:
        root: the directory to write (created if needed).
        per_class: noisy training images per class.
        size: (width, height) of the images.
        noise: probability that a noisy label differs from the true one.
        n_clean_noisy: training images that also have a clean label (at most all of them).
        n_val_per_class, n_test_per_class: clean validation and test images per class.
        seed: seeds everything (images, order, noise).
        layout: ``"root"`` puts the annotation files in ``root``, ``"annotations"`` in
            ``root/annotations``.

    Returns:
        A dict with ``root`` (Path), ``annotations`` (the directory of the annotation
        files), ``n_train``, ``n_clean_train`` (= ``n_clean_noisy``), ``n_val``,
        ``n_test``, ``n_noisy_kv`` (lines of ``noisy_label_kv.txt``), ``n_clean_kv``,
        ``train_keys`` (list, the order of ``noisy_train_key_list.txt``),
        ``true_labels`` and ``noisy_labels`` (int64 arrays aligned with ``train_keys``),
        ``clean_noisy_index`` (int64 array: positions in ``train_keys`` of the images
        with a clean label), ``val_labels`` and ``test_labels`` (int64 arrays in the
        order of their key lists).
    """
    size = _check_miniature_arguments(
        layout,
        noise,
        size,
        per_class=per_class,
        n_clean_noisy=n_clean_noisy,
        n_val_per_class=n_val_per_class,
        n_test_per_class=n_test_per_class,
    )
    rng = np.random.default_rng(seed)
    root = Path(root)
    ann = root / ANNOTATIONS if layout == "annotations" else root
    sets = _draw_miniature_sets(rng, per_class, noise, n_clean_noisy, n_val_per_class, n_test_per_class)
    n_noisy_kv, n_clean_kv = _write_miniature_files(root, ann, sets, size, noise, rng)
    return {
        "root": root,
        "annotations": ann,
        "n_train": len(sets.train_keys),
        "n_clean_train": len(sets.clean_index),
        "n_val": len(sets.val_keys),
        "n_test": len(sets.test_keys),
        "n_noisy_kv": n_noisy_kv,
        "n_clean_kv": n_clean_kv,
        "train_keys": sets.train_keys,
        "true_labels": sets.true,
        "noisy_labels": sets.noisy,
        "clean_noisy_index": sets.clean_index,
        "val_labels": sets.val_true,
        "test_labels": sets.test_true,
    }


def _check_miniature_arguments(
    layout: str,
    noise: float,
    size: Sequence[int],
    *,
    per_class: int,
    n_clean_noisy: int,
    n_val_per_class: int,
    n_test_per_class: int,
) -> tuple[int, int]:
    """Refuse :func:`write_clothing1m`'s bad arguments; returns the checked size."""
    if layout not in LAYOUTS:
        raise InputError(f"layout must be one of {', '.join(map(repr, LAYOUTS))}, got {layout!r}")
    if not 0.0 <= noise < 1.0:
        raise InputError(f"noise must be in [0, 1), got {noise!r}")
    for name, value in (
        ("per_class", per_class),
        ("n_clean_noisy", n_clean_noisy),
        ("n_val_per_class", n_val_per_class),
        ("n_test_per_class", n_test_per_class),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InputError(f"{name} must be a non-negative integer, got {value!r}")
    if per_class < 1 or n_val_per_class < 1 or n_test_per_class < 1:
        raise InputError("per_class, n_val_per_class and n_test_per_class must each be at least 1")
    size = check_size(size)
    n_train = per_class * NUM_CLASSES
    if n_clean_noisy > n_train:
        raise InputError(f"n_clean_noisy ({n_clean_noisy}) exceeds the {n_train} training images")
    return size


@dataclass(frozen=True)
class _MiniatureSets:
    """The labels and keys of a miniature Clothing1M (see :func:`write_clothing1m`)."""

    true: np.ndarray  # the training images' true labels, in key order
    noisy: np.ndarray  # ... and their noisy labels
    val_true: np.ndarray
    test_true: np.ndarray
    train_keys: list[str]
    val_keys: list[str]
    test_keys: list[str]
    clean_index: np.ndarray  # positions in train_keys of the images with a clean label


def _draw_miniature_sets(
    rng: np.random.Generator,
    per_class: int,
    noise: float,
    n_clean_noisy: int,
    n_val_per_class: int,
    n_test_per_class: int,
) -> _MiniatureSets:
    """Draw the labels and the clean training subset. The draws from ``rng`` keep this
    order (then the images, then the held-out noisy labels), so a seed always writes the
    same data set."""
    k = NUM_CLASSES
    n_train = per_class * k
    true = rng.permutation(np.repeat(np.arange(k, dtype=np.int64), per_class))
    noisy = flip_labels(true, noise, k, rng)
    val_true = rng.permutation(np.repeat(np.arange(k, dtype=np.int64), n_val_per_class))
    test_true = rng.permutation(np.repeat(np.arange(k, dtype=np.int64), n_test_per_class))
    keys = [image_key(i) for i in range(n_train + len(val_true) + len(test_true))]
    train_keys, val_keys, test_keys = (
        keys[:n_train],
        keys[n_train : n_train + len(val_true)],
        keys[n_train + len(val_true) :],
    )
    clean_index = np.sort(rng.choice(n_train, n_clean_noisy, replace=False)).astype(np.int64)
    return _MiniatureSets(true, noisy, val_true, test_true, train_keys, val_keys, test_keys, clean_index)


def _write_miniature_files(
    root: Path, ann: Path, sets: _MiniatureSets, size: tuple[int, int], noise: float, rng: np.random.Generator
) -> tuple[int, int]:
    """Write the images, then the annotation files; returns the number of lines of
    ``noisy_label_kv.txt`` and of ``clean_label_kv.txt``."""
    k = NUM_CLASSES
    keys = sets.train_keys + sets.val_keys + sets.test_keys
    for key, label in zip(keys, np.concatenate([sets.true, sets.val_true, sets.test_true])):
        save_image(class_image(int(label), k, size, rng), root / key, "jpg")

    # As in the real release, the held-out images have noisy labels too.
    held_out = np.concatenate([sets.val_true, sets.test_true])
    held_out_noisy = flip_labels(held_out, noise, k, rng)
    noisy_kv = [f"{key} {y}" for key, y in zip(keys, np.concatenate([sets.noisy, held_out_noisy]))]
    clean_train = [sets.train_keys[i] for i in sets.clean_index]
    clean_kv = [f"{sets.train_keys[i]} {sets.true[i]}" for i in sets.clean_index] + [
        f"{key} {y}" for key, y in zip(sets.val_keys + sets.test_keys, held_out)
    ]
    write_annotations(
        ann,
        noisy_kv=noisy_kv,
        clean_kv=clean_kv,
        noisy_train=sets.train_keys,
        clean_train=clean_train,
        val=sets.val_keys,
        test=sets.test_keys,
    )
    return len(noisy_kv), len(clean_kv)

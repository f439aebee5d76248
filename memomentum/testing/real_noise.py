"""Miniatures of the other real-noise releases in their official layouts: ANIMAL-10N, Food-101N with
Food-101's test split, and WebVision 1.0's Google part and validation set (for mini-WebVision), as
:mod:`memomentum.data` reads them."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..base.errors import InputError
from ..data.animal10n import ANIMAL10N_CLASSES
from ..data.registry import ANIMAL10N, FOOD101N, WEBVISION
from .images import check_size, class_image, flip_labels, save_image, write_lines


def _check_counts(**counts: int) -> None:
    for name, value in counts.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InputError(f"{name} must be a positive integer, got {value!r}")


def _noisy_draw(rng: np.random.Generator, k: int, per_class: int, noise: float) -> tuple[np.ndarray, np.ndarray]:
    """True labels (``per_class`` of each of ``k`` classes, shuffled) and their noisy copy."""
    if not 0.0 <= noise < 1.0:
        raise InputError(f"noise must be in [0, 1), got {noise!r}")
    true = rng.permutation(np.repeat(np.arange(k, dtype=np.int64), per_class))
    return true, flip_labels(true, noise, k, rng)


def write_animal10n(
    root: str | os.PathLike,
    *,
    per_class: int = 12,
    test_per_class: int = 3,
    size: tuple[int, int] = (32, 32),
    noise: float = 0.08,
    seed: int = 0,
) -> dict:
    """Write a miniature ANIMAL-10N: ``root/training/<label>_<index>.jpg`` and
    ``root/testing/<label>_<index>.jpg`` (the release's 64 x 64 images are smaller here).

    A training image shows its true class and is named by its noisy label (``noise``:
    the share flipped to another class; the release's is about 8 %); test images are
    named by their true class. Indices count from 0 over each folder, five digits.

    Returns:
        A dict with ``root``, ``train_names`` and ``test_names`` (file names, sorted as
        the reader lists them), ``true_labels`` and ``noisy_labels`` (aligned with
        ``train_names``), ``test_labels``, ``n_train`` and ``n_test``.
    """
    _check_counts(per_class=per_class, test_per_class=test_per_class)
    size = check_size(size)
    rng = np.random.default_rng(seed)
    k = len(ANIMAL10N_CLASSES)
    true, noisy = _noisy_draw(rng, k, per_class, noise)
    test = rng.permutation(np.repeat(np.arange(k, dtype=np.int64), test_per_class))
    root = Path(root)
    written = {}
    train_dir, test_dir = ANIMAL10N.file("train"), ANIMAL10N.file("test")
    for split, shown, named in ((train_dir, true, noisy), (test_dir, test, test)):
        names = [f"{label}_{i:05d}.jpg" for i, label in enumerate(named)]
        for name, label in zip(names, shown):
            save_image(class_image(int(label), k, size, rng), root / split / name, "jpg")
        order = np.argsort(names, kind="stable")
        written[split] = ([names[i] for i in order], shown[order], named[order])
    train_names, true_sorted, noisy_sorted = written[train_dir]
    test_names, test_sorted, _ = written[test_dir]
    return {
        "root": root,
        "train_names": train_names,
        "test_names": test_names,
        "true_labels": true_sorted,
        "noisy_labels": noisy_sorted,
        "test_labels": test_sorted,
        "n_train": len(train_names),
        "n_test": len(test_names),
    }


# The first classes of Food-101 (and Food-101N), in its classes.txt order.
FOOD101_FIRST_CLASSES = ("apple_pie", "baby_back_ribs", "baklava", "beef_carpaccio", "beef_tartare", "beet_salad")


def write_food101n(
    root: str | os.PathLike,
    *,
    classes: Sequence[str] = FOOD101_FIRST_CLASSES[:4],
    per_class: int = 12,
    test_per_class: int = 3,
    n_verified_train: int = 16,
    n_verified_val: int = 8,
    size: tuple[int, int] = (40, 30),
    noise: float = 0.3,
    food101: str = "inside",
    seed: int = 0,
) -> dict:
    """Write a miniature Food-101N release and Food-101's test split beside it.

    ``root/meta/classes.txt`` (header ``class_name``), ``imagelist.tsv`` (header
    ``class_name/key``, then ``<class>/<32 hex digits>.jpg``, sorted), ``verified_train.tsv``
    and ``verified_val.tsv`` (header ``class_name/key<TAB>verification_label``, then
    ``<key><TAB>1`` where the noisy label is the true class, else 0), the images under
    ``root/images/<noisy class>/``; Food-101's ``meta/test.txt`` (``<class>/<id>``),
    ``meta/classes.txt`` and ``images/<class>/<id>.jpg`` in ``root/food-101``
    (``food101="inside"``) or ``root/../food-101`` (``"beside"``).

    Returns:
        A dict with ``root``, ``food101`` (Food-101's folder), ``class_names``,
        ``train_keys`` (the order of ``imagelist.tsv``), ``true_labels`` and
        ``noisy_labels`` (aligned with it), ``verified`` (key -> 0/1, both files),
        ``verified_train`` and ``verified_val`` (their keys), ``test_keys``
        (``<class>/<id>``) and ``test_labels``.
    """
    _check_counts(
        per_class=per_class,
        test_per_class=test_per_class,
        n_verified_train=n_verified_train,
        n_verified_val=n_verified_val,
    )
    if food101 not in ("inside", "beside"):
        raise InputError(f"food101 must be 'inside' or 'beside', got {food101!r}")
    classes, size, rng, root = list(classes), check_size(size), np.random.default_rng(seed), Path(root)
    true, noisy = _noisy_draw(rng, len(classes), per_class, noise)
    if n_verified_train + n_verified_val > len(true):
        raise InputError(f"n_verified_train + n_verified_val exceeds the {len(true)} training images")
    keys = [f"{classes[y]}/{rng.bytes(16).hex()}.jpg" for y in noisy]
    order = np.argsort(keys, kind="stable")
    keys, true, noisy = [keys[i] for i in order], true[order], noisy[order]
    for key, label in zip(keys, true):
        save_image(class_image(int(label), len(classes), size, rng), root / FOOD101N.file("images") / key, "jpg")
    chosen = rng.choice(len(keys), n_verified_train + n_verified_val, replace=False)
    verified = {keys[i]: int(noisy[i] == true[i]) for i in chosen}
    v_train, v_val = [keys[i] for i in chosen[:n_verified_train]], [keys[i] for i in chosen[n_verified_train:]]
    meta = root / FOOD101N.file("meta")
    write_lines(meta / FOOD101N.file("classes"), ["class_name", *classes])
    write_lines(meta / FOOD101N.file("imagelist"), ["class_name/key", *keys])
    for name, part in ((FOOD101N.file("verified_train"), v_train), (FOOD101N.file("verified_val"), v_val)):
        write_lines(meta / name, ["class_name/key\tverification_label", *(f"{k}\t{verified[k]}" for k in part)])
    food = (root if food101 == "inside" else root.parent) / FOOD101N.file("food101")
    test_keys, test_labels = _write_food101_test(food, classes, test_per_class, size, rng)
    return {
        "root": root,
        "food101": food,
        "class_names": tuple(classes),
        "train_keys": keys,
        "true_labels": true,
        "noisy_labels": noisy,
        "verified": verified,
        "verified_train": v_train,
        "verified_val": v_val,
        "test_keys": test_keys,
        "test_labels": test_labels,
    }


def _write_food101_test(
    food: Path, classes: list[str], per_class: int, size: tuple[int, int], rng: np.random.Generator
) -> tuple[list[str], np.ndarray]:
    """Food-101's test split (``meta/test.txt``, sorted by class as the release's is) and
    ``meta/classes.txt``; returns the ``<class>/<id>`` keys and their labels."""
    labels = np.repeat(np.arange(len(classes), dtype=np.int64), per_class)
    keys = [f"{classes[y]}/{1_000_000 + 7 * i}" for i, y in enumerate(labels)]
    for key, label in zip(keys, labels):
        save_image(
            class_image(int(label), len(classes), size, rng), food / FOOD101N.file("images") / f"{key}.jpg", "jpg"
        )
    write_lines(food / FOOD101N.file("meta") / FOOD101N.file("classes"), classes)
    write_lines(food / FOOD101N.file("food101_test"), keys)
    return keys, labels


def write_webvision(
    root: str | os.PathLike,
    *,
    per_class: int = 3,
    val_per_class: int = 1,
    n_other: int = 10,
    imagenet_per_class: int = 0,
    size: tuple[int, int] = (32, 24),
    noise: float = 0.3,
    seed: int = 0,
) -> dict:
    """Write a miniature of WebVision 1.0's Google part and validation set, for mini-WebVision.

    ``root/info/train_filelist_google.txt`` (``google/q<query>/<n>.jpg LABEL``, sorted; the
    50 classes' images with noisy labels, then ``n_other`` of classes 50..999),
    ``root/info/val_filelist.txt`` (``val<n>.jpg LABEL``: ``val_per_class`` of each of
    the 50 classes and ``n_other`` others), ``root/info/synsets.txt`` (1,000 made-up
    WordNet ids and names), the images under ``root/google/`` and ``root/val_images_256/``;
    with ``imagenet_per_class``, ImageNet-style validation folders ``root/imagenet_val/<wnid>/``
    for the 50 classes and two more.

    Returns:
        A dict with ``root``, ``train_keys`` (the kept lines' paths, in order),
        ``true_labels`` and ``noisy_labels`` (aligned), ``val_keys`` and ``val_labels``
        (the kept validation lines), ``wnids`` (the 1,000 ids), ``n_train_lines``,
        ``n_val_lines`` and ``imagenet_val`` (the folder, or None).
    """
    _check_counts(per_class=per_class, val_per_class=val_per_class)
    size, rng, root, k = check_size(size), np.random.default_rng(seed), Path(root), WEBVISION.num_classes
    true, noisy = _noisy_draw(rng, k, per_class, noise)
    other = _other_labels(rng, k, n_other)
    wnids = [f"n{1_440_764 + 97 * i:08d}" for i in range(1000)]
    write_lines(root / WEBVISION.file("synsets"), [f"{w} class {i}, alias {i}" for i, w in enumerate(wnids)])
    train = sorted(
        zip(
            (f"google/q{2 * y + 1:04d}/{i:08d}.jpg" for i, y in enumerate(np.concatenate([noisy, other]))),
            np.concatenate([noisy, other]).tolist(),
            np.concatenate([true, other]).tolist(),
        )
    )
    for key, _, shown in train:
        save_image(class_image(int(shown) % k, k, size, rng), root / key, "jpg")
    write_lines(root / WEBVISION.file("train_list"), [f"{key} {y}" for key, y, _ in train])
    val_labels = np.concatenate(
        [np.repeat(np.arange(k, dtype=np.int64), val_per_class), _other_labels(rng, k, n_other)]
    )
    val = [(f"val{i:06d}.jpg", int(y)) for i, y in enumerate(rng.permutation(val_labels))]
    for key, y in val:
        save_image(class_image(y % k, k, size, rng), root / WEBVISION.file("val_images") / key, "jpg")
    write_lines(root / WEBVISION.file("val_list"), [f"{key} {y}" for key, y in val])
    imagenet = None
    if imagenet_per_class:
        imagenet = root / "imagenet_val"
        for c in range(k + 2):
            for j in range(imagenet_per_class):
                name = f"ILSVRC2012_val_{c * imagenet_per_class + j + 1:08d}.JPEG"
                save_image(class_image(c % k, k, size, rng), imagenet / wnids[c] / name, "jpg")
    kept = [(key, y, t) for key, y, t in train if y < k]
    return {
        "root": root,
        "train_keys": [t[0] for t in kept],
        "noisy_labels": np.array([t[1] for t in kept], dtype=np.int64),
        "true_labels": np.array([t[2] for t in kept], dtype=np.int64),
        "val_keys": [key for key, y in val if y < k],
        "val_labels": np.array([y for _, y in val if y < k], dtype=np.int64),
        "wnids": wnids,
        "n_train_lines": len(train),
        "n_val_lines": len(val),
        "imagenet_val": imagenet,
    }


def _other_labels(rng: np.random.Generator, k: int, n: int) -> np.ndarray:
    """``n`` labels of WebVision's other classes (``k``..999), the first ``k`` itself (the
    first label mini-WebVision leaves out)."""
    return np.concatenate([np.full(min(n, 1), k), rng.integers(k, 1000, max(n - 1, 0))]).astype(np.int64)

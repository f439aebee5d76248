"""Small, seeded stand-ins for the image-file sources, written in their exact on-disk
layouts: for tests, benchmarks and a full-scale rehearsal of Clothing1M.

* :func:`write_clothing1m`: a miniature Clothing1M (real JPEGs, official annotation files);
* :func:`write_image_folder`: a folder with one sub-folder per class;
* :func:`write_annotation_scale`: Clothing1M's annotation files at full size (a million
  keys) whose image files are hard links to a few hundred real JPEGs;
* :func:`write_animal10n`, :func:`write_food101n`, :func:`write_webvision`: miniatures of
  the other real-noise releases (ANIMAL-10N, Food-101N with Food-101's test split,
  WebVision 1.0's Google part and validation set), in their official layouts.

Images get a learnable pattern per class (a colour and a stripe orientation and period,
plus pixel noise and a random phase), so a small CNN separates the classes in a few
epochs. Everything is drawn from ``numpy.random.default_rng(seed)``. Writing JPEG and
PNG files needs Pillow (the readers do not).
"""

from __future__ import annotations

import colorsys
import os
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..base.atomic import atomic_file
from ..base.errors import InputError
from ..data.animal10n import ANIMAL10N_CLASSES
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
    read_label_kv,
)
from ..data.registry import ANIMAL10N, FOOD101N, WEBVISION

# Stripe orientations (row and column weights of the stripe phase) cycled over classes.
_ORIENTATIONS = ((1.0, 0.0), (0.0, 1.0), (1.0, 1.0), (1.0, -1.0))
LAYOUTS = ("root", "annotations")


# --------------------------------------------------------------------------- images


def _class_colours(k: int) -> np.ndarray:
    """(k, 3) float RGB colours on the 0..255 scale, evenly spaced hues, alternating
    between two brightness levels so neighbouring hues differ in brightness too."""
    rgb = [colorsys.hsv_to_rgb(c / k, 0.75, 0.95 if c % 2 == 0 else 0.6) for c in range(k)]
    return np.array(rgb, dtype=np.float64) * 255.0


def class_image(label: int, num_classes: int, size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """One (H, W, 3) uint8 image of class ``label``: the class colour modulated by
    stripes of the class's orientation and period, with a random phase, a random
    brightness and Gaussian pixel noise.

    Args:
        label: the class, 0..num_classes-1.
        num_classes: how many classes share the colour wheel.
        size: (width, height), as Pillow gives sizes.
        rng: the source of randomness.
    """
    width, height = size
    colour = _class_colours(num_classes)[label]
    dy, dx = _ORIENTATIONS[label % len(_ORIENTATIONS)]
    period = 6.0 + 2.0 * (label % 3)
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float64)
    phase = rng.uniform(0, 2 * np.pi)
    stripes = 0.5 + 0.5 * np.sin(2 * np.pi * (dy * rows + dx * cols) / period + phase)
    brightness = rng.uniform(0.8, 1.1)
    img = colour * (0.45 + 0.55 * stripes[..., None]) * brightness
    img += rng.normal(0.0, 12.0, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def _save(img: np.ndarray, path: Path, fmt: str) -> None:
    """Write ``img`` as JPEG (quality 90) or PNG."""
    from PIL import Image  # only the writers need Pillow

    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "png":
        Image.fromarray(img).save(path, format="PNG")
    else:
        Image.fromarray(img).save(path, format="JPEG", quality=90)


def _check_size(size: Sequence[int]) -> tuple[int, int]:
    if len(size) != 2 or any(isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 1 for s in size):
        raise InputError(f"size must be (width, height) with positive integers, got {size!r}")
    return int(size[0]), int(size[1])


def _flip(labels: np.ndarray, noise: float, num_classes: int, rng: np.random.Generator) -> np.ndarray:
    """Symmetric label noise: each label is replaced, with probability ``noise``, by a
    uniformly drawn *different* class."""
    flip = rng.random(len(labels)) < noise
    other = (labels + rng.integers(1, num_classes, len(labels))) % num_classes
    return np.where(flip, other, labels).astype(np.int64)


# --------------------------------------------------------------------------- Clothing1M


def _key(index: int) -> str:
    """The key of image ``index``, in the release's form ``images/<d>/<dd>/<name>.jpg``
    (a 10-digit name, as long as the real ones, whose last digits pick the folders)."""
    name = f"{1_000_000_000 + index * 7919:010d}"
    return f"images/{name[-3]}/{name[-2:]}/{name}.jpg"


def _write_lines(path: Path, lines: Sequence[str]) -> None:
    """Write ``lines`` (newline-terminated) in one go, atomically: a file interrupted
    halfway never looks complete."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path) as f:
        f.write("\n".join(lines))
        f.write("\n")


def _write_annotations(
    ann: Path,
    *,
    noisy_kv: Sequence[str],
    clean_kv: Sequence[str],
    noisy_train: Sequence[str],
    clean_train: Sequence[str],
    val: Sequence[str],
    test: Sequence[str],
) -> None:
    _write_lines(ann / CATEGORY_NAMES, CLOTHING1M_CLASSES)
    _write_lines(ann / NOISY_KV, noisy_kv)
    _write_lines(ann / CLEAN_KV, clean_kv)
    _write_lines(ann / NOISY_TRAIN, noisy_train)
    _write_lines(ann / CLEAN_TRAIN, clean_train)
    _write_lines(ann / CLEAN_VAL, val)
    _write_lines(ann / CLEAN_TEST, test)


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

    What is written under ``root`` (see :mod:`.clothing1m`):

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
    size = _check_size(size)
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
    noisy = _flip(true, noise, k, rng)
    val_true = rng.permutation(np.repeat(np.arange(k, dtype=np.int64), n_val_per_class))
    test_true = rng.permutation(np.repeat(np.arange(k, dtype=np.int64), n_test_per_class))
    keys = [_key(i) for i in range(n_train + len(val_true) + len(test_true))]
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
        _save(class_image(int(label), k, size, rng), root / key, "jpg")

    # As in the real release, the held-out images have noisy labels too.
    held_out = np.concatenate([sets.val_true, sets.test_true])
    held_out_noisy = _flip(held_out, noise, k, rng)
    noisy_kv = [f"{key} {y}" for key, y in zip(keys, np.concatenate([sets.noisy, held_out_noisy]))]
    clean_train = [sets.train_keys[i] for i in sets.clean_index]
    clean_kv = [f"{sets.train_keys[i]} {sets.true[i]}" for i in sets.clean_index] + [
        f"{key} {y}" for key, y in zip(sets.val_keys + sets.test_keys, held_out)
    ]
    _write_annotations(
        ann,
        noisy_kv=noisy_kv,
        clean_kv=clean_kv,
        noisy_train=sets.train_keys,
        clean_train=clean_train,
        val=sets.val_keys,
        test=sets.test_keys,
    )
    return len(noisy_kv), len(clean_kv)


def write_annotation_scale(
    root: str | os.PathLike,
    *,
    n_keys: int,
    images_from: str | os.PathLike,
    n_extra_kv: int | None = None,
    n_clean_train: int | None = None,
    n_val: int | None = None,
    n_test: int | None = None,
    noise: float = 0.38,
    seed: int = 0,
    link: bool = True,
    link_threads: int = 4,
) -> dict:
    """Write Clothing1M's annotation files at full size, with every image a hard link to
    one of a few hundred real JPEGs: a rehearsal of the real release's scale.

    The images linked to are those of ``images_from`` (a :func:`write_clothing1m`
    directory) that ``clean_label_kv.txt`` labels there, so every image's true label is
    known. Key ``i`` links to source image ``i mod n_sources``. The annotation files go
    in ``root``. Sizes default to the real release's proportions: for ``n_keys =
    1,000,000``, 37,497 extra noisy-kv lines (the validation and test images, then keys
    listed nowhere, whose files do not exist), 47,570 clean training keys (drawn from the
    noisy training keys, so they have clean labels), 14,313 validation and 10,526 test keys.

    It is resumable: links that already exist are kept (a rerun lists each folder instead
    of linking again), and each annotation file is written whole or not at all.

    Args:
        root: the directory to write (created if needed); must be on the same file system
            as ``images_from`` for hard links.
        n_keys: keys in ``noisy_train_key_list.txt``.
        images_from: a directory written by :func:`write_clothing1m`.
        n_extra_kv, n_clean_train, n_val, n_test: the sizes above (defaults scale with
            ``n_keys``).
        noise: probability that a noisy label differs from the true one (Clothing1M's
            estimated rate is about 38 %).
        seed: seeds the labels and the choice of clean training keys.
        link: False writes only the annotation files (for parsing benchmarks).
        link_threads: folders linked at once.

    Returns:
        A dict with ``root``, ``n_train``, ``n_clean_train``, ``n_val``, ``n_test``,
        ``n_noisy_kv``, ``n_clean_kv``, ``n_sources``, ``true_labels`` and
        ``noisy_labels`` (int64 arrays in the order of the training key list),
        ``link_seconds`` and ``write_seconds``.
    """
    n_extra_kv, n_clean_train, n_val, n_test = _annotation_scale_sizes(n_keys, n_extra_kv, n_clean_train, n_val, n_test)
    source = Path(images_from)
    src_keys, src_true = _labelled_sources(source)
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    drawn = _draw_scale_labels(
        np.random.default_rng(seed),
        src_true,
        noise,
        n_keys=n_keys,
        n_val=n_val,
        n_test=n_test,
        n_extra_kv=n_extra_kv,
        n_clean_train=n_clean_train,
    )

    start = time.perf_counter()
    if link:
        _link_all(root, drawn.keys, [os.fspath(source / k) for k in src_keys], threads=link_threads)
    link_seconds = time.perf_counter() - start

    start = time.perf_counter()
    n_noisy_kv, n_clean_kv = _write_scale_annotations(root, drawn, n_keys=n_keys, n_val=n_val)
    write_seconds = time.perf_counter() - start
    return {
        "root": root,
        "n_train": n_keys,
        "n_clean_train": n_clean_train,
        "n_val": n_val,
        "n_test": n_test,
        "n_noisy_kv": n_noisy_kv,
        "n_clean_kv": n_clean_kv,
        "n_sources": len(src_keys),
        "true_labels": drawn.true[:n_keys],
        "noisy_labels": drawn.noisy[:n_keys],
        "link_seconds": link_seconds,
        "write_seconds": write_seconds,
    }


def _annotation_scale_sizes(
    n_keys: int, n_extra_kv: int | None, n_clean_train: int | None, n_val: int | None, n_test: int | None
) -> tuple[int, int, int, int]:
    """:func:`write_annotation_scale`'s sizes, checked: those not given scale the real
    release's with ``n_keys`` (1,000,000 in the release)."""
    if isinstance(n_keys, bool) or not isinstance(n_keys, int) or n_keys < 1:
        raise InputError(f"n_keys must be a positive integer, got {n_keys!r}")
    scale = n_keys / 1_000_000
    n_extra_kv = round(37_497 * scale) if n_extra_kv is None else n_extra_kv
    n_clean_train = min(n_keys, max(1, round(47_570 * scale))) if n_clean_train is None else n_clean_train
    n_val = max(1, round(14_313 * scale)) if n_val is None else n_val
    n_test = max(1, round(10_526 * scale)) if n_test is None else n_test
    for name, value in (
        ("n_extra_kv", n_extra_kv),
        ("n_clean_train", n_clean_train),
        ("n_val", n_val),
        ("n_test", n_test),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InputError(f"{name} must be a non-negative integer, got {value!r}")
    if n_clean_train > n_keys:
        raise InputError(f"n_clean_train ({n_clean_train}) exceeds n_keys ({n_keys})")
    return n_extra_kv, n_clean_train, n_val, n_test


def _labelled_sources(source: Path) -> tuple[list[str], np.ndarray]:
    """The keys of the images of a :func:`write_clothing1m` directory that its
    ``clean_label_kv.txt`` labels (sorted), and their true labels: linking only to these
    makes every linked image's true label known."""
    src_dir = source / ANNOTATIONS if (source / ANNOTATIONS / CLEAN_KV).is_file() else source
    src_labels = read_label_kv(src_dir / CLEAN_KV)
    src_keys = sorted(src_labels)
    return src_keys, np.array([src_labels[k] for k in src_keys], dtype=np.int64)


@dataclass(frozen=True)
class _ScaleLabels:
    """The keys and labels of :func:`write_annotation_scale`'s release."""

    keys: list[str]  # the training keys, then the validation and test keys
    true: np.ndarray  # the true label of each of ``keys``
    noisy: np.ndarray  # ... and its noisy label
    kv_keys: list[str]  # the keys of noisy_label_kv.txt's lines
    kv_labels: list[int]  # ... and their labels
    clean_index: np.ndarray  # the training keys with a clean label (positions, sorted)


def _draw_scale_labels(
    rng: np.random.Generator,
    src_true: np.ndarray,
    noise: float,
    *,
    n_keys: int,
    n_val: int,
    n_test: int,
    n_extra_kv: int,
    n_clean_train: int,
) -> _ScaleLabels:
    """Key ``i``'s true label is its source image's (``i mod n_sources``); the draws from
    ``rng`` keep this order (noisy labels, filler labels, clean training keys), so a seed
    always writes the same files."""
    n_total = n_keys + n_val + n_test
    keys = [_key(i) for i in range(n_total)]
    true = src_true[np.arange(n_total) % len(src_true)]
    noisy = _flip(true, noise, NUM_CLASSES, rng)
    # The extra noisy-kv lines: the held-out images, then keys listed nowhere (no image).
    filler = max(0, n_extra_kv - n_val - n_test)
    kv_keys = keys[: n_keys + n_extra_kv] + [_key(n_total + j) for j in range(filler)]
    kv_labels = noisy[: n_keys + n_extra_kv].tolist() + rng.integers(0, NUM_CLASSES, filler).tolist()
    clean_index = np.sort(rng.choice(n_keys, n_clean_train, replace=False))
    return _ScaleLabels(keys, true, noisy, kv_keys, kv_labels, clean_index)


def _write_scale_annotations(root: Path, drawn: _ScaleLabels, *, n_keys: int, n_val: int) -> tuple[int, int]:
    """Write :func:`write_annotation_scale`'s annotation files into ``root``; returns the
    number of lines of ``noisy_label_kv.txt`` and of ``clean_label_kv.txt``."""
    keys = drawn.keys
    train_keys = keys[:n_keys]
    noisy_kv = [f"{k} {y}" for k, y in zip(drawn.kv_keys, drawn.kv_labels)]
    true_list = drawn.true.tolist()  # Python ints format faster than numpy scalars
    clean_train = [train_keys[i] for i in drawn.clean_index.tolist()]
    clean_kv = [f"{train_keys[i]} {true_list[i]}" for i in drawn.clean_index.tolist()] + [
        f"{keys[i]} {true_list[i]}" for i in range(n_keys, len(keys))
    ]
    _write_annotations(
        root,
        noisy_kv=noisy_kv,
        clean_kv=clean_kv,
        noisy_train=train_keys,
        clean_train=clean_train,
        val=keys[n_keys : n_keys + n_val],
        test=keys[n_keys + n_val :],
    )
    return len(noisy_kv), len(clean_kv)


def _link_all(root: Path, keys: Sequence[str], sources: Sequence[str], *, threads: int) -> None:
    """Hard-link ``root / keys[i]`` to ``sources[i % len(sources)]``, one folder per task.

    Each task lists its folder first and links only the names not there yet, so a resumed
    run costs a directory listing per folder instead of a failed ``os.link`` (and a Python
    exception) per existing file, which is many times slower.
    """
    base = os.fspath(root)
    by_dir: dict[str, list[tuple[str, str]]] = {}
    for i, key in enumerate(keys):
        head, tail = os.path.split(key)
        by_dir.setdefault(head, []).append((tail, sources[i % len(sources)]))

    def link_folder(head: str) -> None:
        folder = os.path.join(base, head)
        os.makedirs(folder, exist_ok=True)
        with os.scandir(folder) as it:
            present = {e.name for e in it}
        for tail, src in by_dir[head]:
            if tail not in present:
                os.link(src, os.path.join(folder, tail))

    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        for _ in pool.map(link_folder, sorted(by_dir)):
            pass


# --------------------------------------------------------------------------- image folders


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
    size = _check_size(size)
    names = sorted(classes)
    rng = np.random.default_rng(seed)
    root = Path(root)
    train_dir = root / "train" if layout == "split" else root
    test_dir = root / "test" if test_per_class else None
    for label, name in enumerate(names):
        for i in range(per_class):
            _save(class_image(label, len(names), size, rng), train_dir / name / f"{i:04d}.{fmt}", fmt)
        if test_dir is not None:  # None without test images
            for i in range(test_per_class):
                _save(class_image(label, len(names), size, rng), test_dir / name / f"{i:04d}.{fmt}", fmt)
    return {
        "root": root,
        "train_dir": train_dir,
        "test_dir": test_dir,
        "class_names": tuple(names),
        "n_train": per_class * len(names),
        "n_test": test_per_class * len(names),
    }


# --------------------------------------------------------------------------- other real-noise releases


def _check_counts(**counts: int) -> None:
    for name, value in counts.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InputError(f"{name} must be a positive integer, got {value!r}")


def _noisy_draw(rng: np.random.Generator, k: int, per_class: int, noise: float) -> tuple[np.ndarray, np.ndarray]:
    """True labels (``per_class`` of each of ``k`` classes, shuffled) and their noisy copy."""
    if not 0.0 <= noise < 1.0:
        raise InputError(f"noise must be in [0, 1), got {noise!r}")
    true = rng.permutation(np.repeat(np.arange(k, dtype=np.int64), per_class))
    return true, _flip(true, noise, k, rng)


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
    size = _check_size(size)
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
            _save(class_image(int(label), k, size, rng), root / split / name, "jpg")
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
    classes, size, rng, root = list(classes), _check_size(size), np.random.default_rng(seed), Path(root)
    true, noisy = _noisy_draw(rng, len(classes), per_class, noise)
    if n_verified_train + n_verified_val > len(true):
        raise InputError(f"n_verified_train + n_verified_val exceeds the {len(true)} training images")
    keys = [f"{classes[y]}/{rng.bytes(16).hex()}.jpg" for y in noisy]
    order = np.argsort(keys, kind="stable")
    keys, true, noisy = [keys[i] for i in order], true[order], noisy[order]
    for key, label in zip(keys, true):
        _save(class_image(int(label), len(classes), size, rng), root / FOOD101N.file("images") / key, "jpg")
    chosen = rng.choice(len(keys), n_verified_train + n_verified_val, replace=False)
    verified = {keys[i]: int(noisy[i] == true[i]) for i in chosen}
    v_train, v_val = [keys[i] for i in chosen[:n_verified_train]], [keys[i] for i in chosen[n_verified_train:]]
    meta = root / FOOD101N.file("meta")
    _write_lines(meta / FOOD101N.file("classes"), ["class_name", *classes])
    _write_lines(meta / FOOD101N.file("imagelist"), ["class_name/key", *keys])
    for name, part in ((FOOD101N.file("verified_train"), v_train), (FOOD101N.file("verified_val"), v_val)):
        _write_lines(meta / name, ["class_name/key\tverification_label", *(f"{k}\t{verified[k]}" for k in part)])
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
        _save(class_image(int(label), len(classes), size, rng), food / FOOD101N.file("images") / f"{key}.jpg", "jpg")
    _write_lines(food / FOOD101N.file("meta") / FOOD101N.file("classes"), classes)
    _write_lines(food / FOOD101N.file("food101_test"), keys)
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
    size, rng, root, k = _check_size(size), np.random.default_rng(seed), Path(root), WEBVISION.num_classes
    true, noisy = _noisy_draw(rng, k, per_class, noise)
    other = _other_labels(rng, k, n_other)
    wnids = [f"n{1_440_764 + 97 * i:08d}" for i in range(1000)]
    _write_lines(root / WEBVISION.file("synsets"), [f"{w} class {i}, alias {i}" for i, w in enumerate(wnids)])
    train = sorted(
        zip(
            (f"google/q{2 * y + 1:04d}/{i:08d}.jpg" for i, y in enumerate(np.concatenate([noisy, other]))),
            np.concatenate([noisy, other]).tolist(),
            np.concatenate([true, other]).tolist(),
        )
    )
    for key, _, shown in train:
        _save(class_image(int(shown) % k, k, size, rng), root / key, "jpg")
    _write_lines(root / WEBVISION.file("train_list"), [f"{key} {y}" for key, y, _ in train])
    val_labels = np.concatenate(
        [np.repeat(np.arange(k, dtype=np.int64), val_per_class), _other_labels(rng, k, n_other)]
    )
    val = [(f"val{i:06d}.jpg", int(y)) for i, y in enumerate(rng.permutation(val_labels))]
    for key, y in val:
        _save(class_image(y % k, k, size, rng), root / WEBVISION.file("val_images") / key, "jpg")
    _write_lines(root / WEBVISION.file("val_list"), [f"{key} {y}" for key, y in val])
    imagenet = None
    if imagenet_per_class:
        imagenet = root / "imagenet_val"
        for c in range(k + 2):
            for j in range(imagenet_per_class):
                name = f"ILSVRC2012_val_{c * imagenet_per_class + j + 1:08d}.JPEG"
                _save(class_image(c % k, k, size, rng), imagenet / wnids[c] / name, "jpg")
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

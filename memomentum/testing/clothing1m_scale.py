"""Clothing1M's annotation files at full size (a million keys) whose image files are hard links to a
few hundred real JPEGs: a rehearsal of the real release's scale."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..base.errors import InputError
from ..data.clothing1m import ANNOTATIONS, CLEAN_KV, NUM_CLASSES, read_label_kv
from .clothing1m import image_key, write_annotations
from .images import flip_labels


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
    keys = [image_key(i) for i in range(n_total)]
    true = src_true[np.arange(n_total) % len(src_true)]
    noisy = flip_labels(true, noise, NUM_CLASSES, rng)
    # The extra noisy-kv lines: the held-out images, then keys listed nowhere (no image).
    filler = max(0, n_extra_kv - n_val - n_test)
    kv_keys = keys[: n_keys + n_extra_kv] + [image_key(n_total + j) for j in range(filler)]
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
    write_annotations(
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

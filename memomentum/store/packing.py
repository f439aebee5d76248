"""Packing a store: image files decoded once, resized, and written to a few large shard files that
training then reads in whole batches ("pack once, read fast"; read back by :mod:`.reading`).

Why: opening a web JPEG with Pillow and resizing it costs about 5 ms (a 500 x 375 Clothing1M
image on one core), every epoch. Packed, the same image is a 256 x 256 JPEG that simplejpeg
decodes in under 1 ms, or a raw uint8 array that is only copied (figures and the choice of
the default format: ``docs/images.md``).

Every file is written to a temporary name, flushed and renamed into place, so an interrupted
pack leaves only whole shards behind, and the next call packs only the missing ones (the
files: :mod:`.layout`; one shard's work: :mod:`.shards`). Packing holds an exclusive lock on
``.lock`` in the store, so that two processes asked for the same store (several ranks of one
job) pack it once.
"""

from __future__ import annotations

import errno
import json
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ..base.atomic import atomic_file
from ..base.cores import available_cores
from ..base.errors import InputError
from .layout import (
    BAD_LIST,
    INDEX,
    JPEG_QUALITY,
    JPEG_SUBSAMPLING,
    LOCK,
    MANIFEST,
    SOURCES,
    STORE_FORMATS,
    STORE_VERSION,
    default_shard_size,
    store_key,
    store_name,
)
from .pixels import import_pillow, import_simplejpeg
from .reading import PackedImages
from .shards import Shard, run_shards, shard_is_done

# Undecodable files named in the error message (all of them go to undecodable.txt).
_SHOWN_BAD = 3


# --------------------------------------------------------------------------- small file helpers


def _save_npz(path: Path, **arrays) -> None:
    with atomic_file(path, "wb") as f:
        np.savez(f, **arrays)


@contextmanager
def _locked(directory: Path, *, what: str) -> Iterator[None]:
    """Hold an exclusive lock on the store while packing it (no-op where ``fcntl`` is
    missing). A second process asking for the same store waits, then finds it complete."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no cross-process lock
        yield
        return
    with open(directory / LOCK, "a+b") as f:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(
                f"waiting for another process that is packing the {what} into {directory}", file=sys.stderr, flush=True
            )
            fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


# --------------------------------------------------------------------------- sources


def _source_stats(paths: Sequence[str], *, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Every source file's size and ``st_mtime_ns`` (how a changed file is noticed)."""
    sizes = np.empty(len(paths), dtype=np.int64)
    mtimes = np.empty(len(paths), dtype=np.int64)
    missing = []
    for i, path in enumerate(paths):
        try:
            st = os.stat(path)
        except OSError as e:
            missing.append(f"{path} ({e.strerror or type(e).__name__})")
            continue
        sizes[i], mtimes[i] = st.st_size, st.st_mtime_ns
    if missing:
        shown = "; ".join(missing[:_SHOWN_BAD]) + ("; ..." if len(missing) > _SHOWN_BAD else "")
        raise InputError(f"{len(missing)} of the {len(paths)} {what} cannot be found or read: {shown}")
    return sizes, mtimes


def _write_index(
    directory: Path, shards: list[Shard], *, store_format: str, image_size: int, quality: int, key: str
) -> None:
    """Assemble the per-image index from the shards' ``.meta.npy`` files and write the
    index, the source stats and, last, the manifest."""
    metas = [np.load(s.meta_path) for s in shards]
    lengths = np.concatenate([m[:, 0] for m in metas])
    offsets = np.concatenate([np.cumsum(m[:, 0]) - m[:, 0] for m in metas])
    shard_of = np.concatenate([np.full(len(m), i, dtype=np.int32) for i, m in enumerate(metas)])
    _save_npz(directory / INDEX, shard=shard_of, offset=offsets.astype(np.int64), length=lengths.astype(np.int32))
    _save_npz(
        directory / SOURCES,
        size=np.concatenate([m[:, 1] for m in metas]),
        mtime_ns=np.concatenate([m[:, 2] for m in metas]),
    )
    manifest = {
        "version": STORE_VERSION,
        "format": store_format,
        "image_size": image_size,
        "count": len(lengths),
        "quality": quality if store_format == "jpeg" else None,
        "subsampling": JPEG_SUBSAMPLING if store_format == "jpeg" else None,
        "shards": [s.data_path.name for s in shards],
        "key": key,
    }
    with atomic_file(directory / MANIFEST, "wb") as f:
        f.write(json.dumps(manifest, indent=1).encode())


def _changed_sources(directory: Path, sizes: np.ndarray, mtimes: np.ndarray) -> np.ndarray | None:
    """Positions of the sources that differ from what a complete store was packed from
    (empty: the store can be used as it is); None when the store is not complete."""
    if not (directory / MANIFEST).is_file():
        return None
    try:
        with np.load(directory / SOURCES) as stored:
            old_sizes, old_mtimes = stored["size"], stored["mtime_ns"]
    except (OSError, KeyError, ValueError):
        return None
    if old_sizes.shape != sizes.shape:
        return None
    return np.flatnonzero((old_sizes != sizes) | (old_mtimes != mtimes))


def _remove_strays(directory: Path, keep: set[str]) -> None:
    """Delete what an earlier, interrupted or outdated pack left: temporary files and
    shards of another layout. The store directory is ours alone (named by its hash)."""
    for entry in directory.iterdir():
        if entry.name not in keep and entry.is_file():
            entry.unlink()


# --------------------------------------------------------------------------- packing


def pack_images(
    paths: Sequence[str],
    *,
    cache_dir: Path | str,
    image_size: int,
    store_format: str = "jpeg",
    quality: int = JPEG_QUALITY,
    workers: int | None = None,
    progress: bool = True,
    what: str = "images",
    shard_size: int | None = None,
) -> PackedImages:
    """Decode and resize image files once into a packed store, or reuse the store a
    previous call made from the same files.

    Args:
        paths: the image files (JPEG, PNG, anything Pillow opens), in the order the
            returned images have. Relative paths are made absolute.
        cache_dir: the directory that holds stores; this one goes into a sub-directory
            named from a hash of the ordered paths and the settings below.
        image_size: the side S every image is resized to (S x S, aspect ratio ignored).
        store_format: ``"jpeg"`` (re-encoded with simplejpeg at ``quality``; small, decoded
            when read) or ``"raw"`` (uint8 arrays, exact pixels, about 7 times the disk).
        quality: JPEG quality 1..100 (``"jpeg"`` only).
        workers: processes that pack shards in parallel; default every core this process
            may run on.
        progress: show a tqdm bar on stderr while packing.
        what: what the images are, for messages (``"clothing1m training images"``).
        shard_size: images per shard; default :func:`default_shard_size` (tests use tiny
            shards). Not part of the store's name: a different value re-packs an
            incomplete store's shards in the new layout.

    Returns:
        The store as a :class:`PackedImages` (N, S, S, 3).

    A complete store is reused when every source file still has the size and modification
    time it had when packed; otherwise the shards holding the changed files are packed
    again (one line on stderr says so). An interrupted pack keeps its finished shards and
    the next call packs the rest.

    Raises:
        InputError: bad settings, missing files, files that cannot be decoded (all of them
            are listed in ``undecodable.txt`` in the store), an unwritable cache directory,
            or Pillow / simplejpeg not installed.
    """
    store_format, quality, image_size = _check_settings(store_format, quality, image_size)
    paths = [p if os.path.isabs(p) else os.path.abspath(p) for p in map(os.fspath, paths)]
    if not paths:
        raise InputError(f"there are no {what} to pack")
    import_pillow()  # fail now, not in a worker
    if store_format == "jpeg":  # a raw store is written and read without it
        import_simplejpeg()
    key = store_key(paths, image_size=image_size, store_format=store_format, quality=quality)
    directory = Path(cache_dir).expanduser() / store_name(key, image_size=image_size, store_format=store_format)
    sizes, mtimes = _source_stats(paths, what=what)
    changed = _changed_sources(directory, sizes, mtimes)
    if changed is not None and changed.size == 0:
        return PackedImages.open(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with _locked(directory, what=what):
            _pack_locked(
                directory,
                paths,
                sizes,
                mtimes,
                key=key,
                image_size=image_size,
                store_format=store_format,
                quality=quality,
                workers=workers,
                progress=progress,
                what=what,
                shard_size=shard_size,
            )
    except OSError as e:
        hint = "free some space there or choose another" if e.errno == errno.ENOSPC else "choose a writable"
        raise InputError(
            f"cannot write the packed {what} in the cache directory {cache_dir} "
            f"({e.strerror or e}); {hint} directory with --cache-dir"
        ) from e
    return PackedImages.open(directory)


def _check_settings(store_format: str, quality: int, image_size: int) -> tuple[str, int, int]:
    if store_format not in STORE_FORMATS:
        raise InputError(f"unknown store format {store_format!r}; choose one of {', '.join(STORE_FORMATS)}")
    if isinstance(quality, bool) or not isinstance(quality, (int, np.integer)) or not 1 <= quality <= 100:
        raise InputError(f"JPEG quality must be an integer from 1 to 100, got {quality!r}")
    if isinstance(image_size, bool) or not isinstance(image_size, (int, np.integer)) or image_size < 1:
        raise InputError(f"image size must be a positive integer, got {image_size!r}")
    return store_format, int(quality), int(image_size)


def _pack_locked(
    directory: Path,
    paths: list[str],
    sizes: np.ndarray,
    mtimes: np.ndarray,
    *,
    key: str,
    image_size: int,
    store_format: str,
    quality: int,
    workers: int | None,
    progress: bool,
    what: str,
    shard_size: int | None,
) -> None:
    """The packing itself, under the store's lock (see :func:`pack_images`)."""
    changed = _changed_sources(directory, sizes, mtimes)  # again: another process may have packed it meanwhile
    if changed is not None and changed.size == 0:
        return
    (directory / MANIFEST).unlink(missing_ok=True)  # incomplete from here until the new manifest
    size = shard_size or default_shard_size(len(paths))
    shards = [
        Shard(
            directory,
            start,
            min(start + size, len(paths)),
            tuple(paths[start : start + size]),
            image_size,
            store_format,
            quality,
        )
        for start in range(0, len(paths), size)
    ]
    keep = {LOCK} | {s.data_path.name for s in shards} | {s.meta_path.name for s in shards}
    _remove_strays(directory, keep)
    todo = [s for s in shards if not shard_is_done(s, sizes, mtimes)]
    n_todo = sum(s.stop - s.start for s in todo)
    if changed is not None:
        print(
            f"{changed.size} of the {len(paths)} {what} changed since they were packed into {directory} "
            f"(first: {paths[changed[0]]}); re-packing the {len(todo)} of {len(shards)} shards that hold them",
            file=sys.stderr,
            flush=True,
        )
    elif len(todo) < len(shards):
        print(
            f"resuming the packing of {len(paths)} {what} into {directory}: {len(shards) - len(todo)} of "
            f"{len(shards)} shards were already done",
            file=sys.stderr,
            flush=True,
        )
    else:
        print(
            f"packing {len(paths)} {what} into {directory} (one time; later runs reuse it)", file=sys.stderr, flush=True
        )
    from tqdm.auto import tqdm

    workers = workers if workers is not None else available_cores()
    if workers < 1:
        raise InputError(f"workers must be at least 1, got {workers}")
    with tqdm(
        total=n_todo,
        desc=f"packing {what}",
        unit="img",
        disable=not progress,
        file=sys.stderr,
        dynamic_ncols=True,
        smoothing=0.1,
    ) as bar:
        bad = run_shards(todo, workers=workers, bar=bar)
    if bad:
        _report_undecodable(directory, paths, sorted(bad), what=what)
    _write_index(directory, shards, store_format=store_format, image_size=image_size, quality=quality, key=key)


def _report_undecodable(directory: Path, paths: list[str], bad: list[tuple[int, str]], *, what: str) -> None:
    listing = directory / BAD_LIST
    lines = "".join(f"{paths[i]}\t{reason}\n" for i, reason in bad)
    with atomic_file(listing, "wb") as f:
        f.write(lines.encode("utf-8", "surrogateescape"))
    shown = "; ".join(f"{paths[i]} ({reason})" for i, reason in bad[:_SHOWN_BAD])
    more = f"; ... (all {len(bad)} are listed in {listing})" if len(bad) > _SHOWN_BAD else ""
    raise InputError(
        f"{len(bad)} of the {len(paths)} {what} cannot be decoded as images: {shown}{more}; remove or replace them"
    )

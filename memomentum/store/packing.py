"""The packed image store: image files decoded once, resized, and written to a few large
shard files that training then reads in whole batches ("pack once, read fast").

Why: opening a web JPEG with Pillow and resizing it costs about 5 ms (a 500 x 375 Clothing1M
image on one core), every epoch. Packed, the same image is a 256 x 256 JPEG that simplejpeg
decodes in under 1 ms, or a raw uint8 array that is only copied (figures and the choice of
the default format: ``docs/images.md``).

Pixels are exactly what the Clothing1M protocol feeds its network: the file opened with
Pillow, ``.convert("RGB")``, then ``resize((S, S), BILINEAR)`` ignoring the aspect ratio,
which is what torchvision's ``default_loader`` and ``transforms.Resize((S, S))`` do with PIL
images. (``Image.draft``, which lets libjpeg decode at 1/2, 1/4 or 1/8 scale, is not used:
it changes the pixels, mean absolute difference 1.2 on a 1200 x 900 photo, and for typical
500 x 375 images it cannot reduce at all.) The "raw" format stores exactly those pixels;
"jpeg" re-encodes them with simplejpeg (4:4:4, ``quality``).

Layout of a store, a directory under the cache directory named from a hash of the ordered
source paths, the image size, the format and the quality (:func:`store_key`):

* ``shard-<start>-<stop>.jpegs``: images ``start .. stop-1`` as JPEG files one after the
  other, or ``shard-<start>-<stop>.raw``: the same images as one uint8
  (stop - start, S, S, 3) C-order array without a header (read with ``np.memmap``);
* ``shard-<start>-<stop>.meta.npy``: int64 (n, 3), each image's stored length in bytes and
  its source file's size and ``st_mtime_ns`` when it was decoded;
* once every shard is there: ``index.npz`` (per image: shard number, byte offset, byte
  length), ``sources.npz`` (every source's size and mtime_ns) and, written last,
  ``manifest.json``. A store is complete exactly when ``manifest.json`` exists.

Every file is written to a temporary name, flushed and renamed into place, so an interrupted
pack leaves only whole shards behind, and the next call packs only the missing ones. A shard's
data file is renamed last: its presence means the shard (with its ``.meta.npy``) is done.
Packing holds an exclusive lock on ``.lock`` in the store, so that two processes asked for the
same store (several ranks of one job) pack it once.

Decoding and encoding need Pillow and simplejpeg (``pip install "memomentum[images]"``); they
are imported when first needed, so the rest of the package works without them.
"""

from __future__ import annotations

import errno
import hashlib
import json
import math
import multiprocessing
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..base.atomic import atomic_file
from ..base.cores import available_cores
from ..base.errors import InputError

STORE_FORMATS = ("jpeg", "raw")
STORE_VERSION = 1
# 4:4:4 (no chroma subsampling) keeps the stored pixels close to the resized originals. On the
# benchmark's photo-like 256 x 256 images at quality 90: 4:4:4 23 KB, decoded in 0.78 ms, mean
# absolute difference 1.9 levels; 4:2:0 15 KB, 0.38 ms, 3.2 levels. 4:4:4 already decodes
# several times faster than a GPU trains (docs/images.md), so fidelity wins.
JPEG_SUBSAMPLING = "444"
# Images per shard. Each worker packs whole shards, so this is the work lost per worker when
# a pack is interrupted (4,096 x ~5 ms = ~20 s of one core) and the unit of load balancing;
# a million images make 245 shard files (each reader process maps the ones it touches).
# Small stores get smaller shards (at least 256 images) so that up to 64 workers have work.
SHARD_IMAGES = 4096
MIN_SHARD_IMAGES = 256
_BALANCE_SHARDS = 64
# Undecodable files named in the error message (all of them go to undecodable.txt).
_SHOWN_BAD = 3

_MANIFEST, _INDEX, _SOURCES, _LOCK, _BAD_LIST = "manifest.json", "index.npz", "sources.npz", ".lock", "undecodable.txt"
_EXTENSION = {"jpeg": ".jpegs", "raw": ".raw"}
_INSTALL_HINT = 'pip install "memomentum[images]"'


# --------------------------------------------------------------------------- optional libraries


def import_pillow():
    """``PIL.Image``, or an InputError saying how to install it."""
    try:
        from PIL import Image
    except ImportError:
        raise InputError(f"reading image files needs Pillow, which is not installed; run: {_INSTALL_HINT}") from None
    return Image


def import_simplejpeg():
    """The ``simplejpeg`` module, or an InputError saying how to install it."""
    try:
        import simplejpeg
    except ImportError:
        raise InputError(
            f"the packed image store needs simplejpeg, which is not installed; run: {_INSTALL_HINT}"
        ) from None
    return simplejpeg


# --------------------------------------------------------------------------- where stores live


def default_cache_dir(source_root: Path | str) -> Path:
    """Where packed stores go when the user names no ``--cache-dir``.

    ``<source_root>/.memomentum-cache`` when it can be written (or created), so that the
    store lives beside the data it was made from; otherwise ``$XDG_CACHE_HOME/memomentum``
    or ``~/.cache/memomentum`` (a dataset on a read-only or shared mount).
    """
    beside = Path(source_root).expanduser() / ".memomentum-cache"
    probe = beside if beside.exists() else beside.parent
    if probe.is_dir() and os.access(probe, os.W_OK | os.X_OK):
        return beside
    return Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache").expanduser() / "memomentum"


def store_key(paths: Sequence[str], *, image_size: int, store_format: str, quality: int) -> str:
    """The hex SHA-256 that names a store: the ordered source paths and every setting that
    changes the stored bytes (image size, format, JPEG quality and subsampling)."""
    h = hashlib.sha256()
    h.update(f"memomentum packed images v{STORE_VERSION}\0{store_format}\0{image_size}\0".encode())
    if store_format == "jpeg":
        h.update(f"{quality}\0{JPEG_SUBSAMPLING}\0".encode())
    h.update(f"{len(paths)}\0".encode())
    for start in range(0, len(paths), 10_000):  # in chunks: a million paths joined at once is ~100 MB
        h.update("\0".join(paths[start : start + 10_000]).encode("utf-8", "surrogateescape") + b"\0")
    return h.hexdigest()


def _store_name(key: str, *, image_size: int, store_format: str) -> str:
    return f"{store_format}{image_size}-{key[:20]}"


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
    with open(directory / _LOCK, "a+b") as f:
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


def decode_resized(path: str, image_size: int, Image) -> tuple[np.ndarray, os.stat_result]:
    """The file's pixels as the protocol sees them, uint8 (S, S, 3), and its stat at the
    time it was read: Pillow's ``open``, ``convert("RGB")`` (torchvision's
    ``default_loader``), then ``resize((S, S), BILINEAR)`` (torchvision's ``Resize((S, S))``
    on PIL images, which ignores the aspect ratio)."""
    with open(path, "rb") as f:
        st = os.fstat(f.fileno())
        with Image.open(f) as im:
            rgb = im.convert("RGB")
    return np.asarray(rgb.resize((image_size, image_size), Image.Resampling.BILINEAR)), st


def error_reason(e: BaseException) -> str:
    if type(e).__name__ == "UnidentifiedImageError":  # Pillow's text only repeats the file object
        return "not an image format Pillow reads"
    text = str(e).strip().splitlines()[0] if str(e).strip() else ""
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


# --------------------------------------------------------------------------- shards


def default_shard_size(n: int) -> int:
    """Images per shard for a store of ``n`` images (see :data:`SHARD_IMAGES`)."""
    return int(min(SHARD_IMAGES, max(MIN_SHARD_IMAGES, math.ceil(n / _BALANCE_SHARDS))))


@dataclass(frozen=True)
class _Shard:
    """One unit of packing work: images ``start .. stop-1`` (picklable, sent to workers)."""

    directory: Path
    start: int
    stop: int
    paths: tuple[str, ...]
    image_size: int
    store_format: str
    quality: int

    @property
    def data_path(self) -> Path:
        return self.directory / shard_file_name(self.start, self.stop, self.store_format)

    @property
    def meta_path(self) -> Path:
        return self.directory / f"shard-{self.start:09d}-{self.stop:09d}.meta.npy"


def shard_file_name(start: int, stop: int, store_format: str) -> str:
    return f"shard-{start:09d}-{stop:09d}{_EXTENSION[store_format]}"


def _pack_shard(shard: _Shard, report: Callable[[int], None] | None = None) -> list[tuple[int, str]]:
    """Decode, resize and store one shard's images; returns the undecodable ones as
    ``(image number, reason)`` (then nothing is kept, but the rest of the shard is still
    decoded so that one run names every bad file). Runs in a worker process."""
    Image = import_pillow()
    encode = import_simplejpeg().encode_jpeg if shard.store_format == "jpeg" else None
    meta = np.zeros((shard.stop - shard.start, 3), dtype=np.int64)
    bad: list[tuple[int, str]] = []
    try:
        with atomic_file(shard.data_path, "wb") as out:
            for i, path in enumerate(shard.paths):
                try:
                    pixels, st = decode_resized(path, shard.image_size, Image)
                except Exception as e:  # noqa: BLE001 -- decoders raise many types (OSError, ValueError, SyntaxError, ...)
                    bad.append((shard.start + i, error_reason(e)))
                else:
                    if not bad:  # once the shard is lost, only look for more bad files
                        blob = (
                            encode(pixels, quality=shard.quality, colorspace="RGB", colorsubsampling=JPEG_SUBSAMPLING)
                            if encode is not None
                            else pixels.tobytes()
                        )
                        out.write(blob)
                        meta[i] = (len(blob), st.st_size, st.st_mtime_ns)
                if report is not None:
                    report(1)
            if bad:
                raise _ShardLost
            with atomic_file(shard.meta_path, "wb") as f:  # before the data file: its presence marks the shard done
                np.save(f, meta)
    except _ShardLost:  # the shard's temporary data file is removed: nothing of it is kept
        return bad
    return []


class _ShardLost(Exception):
    """An image of the shard cannot be decoded: raised inside its write, to drop the file."""


_worker_counter = None  # a shared counter of images done, set in each pool worker


def _init_worker(counter) -> None:
    global _worker_counter
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the main process's to handle
    _worker_counter = counter


def _count(n: int) -> None:
    counter = _worker_counter
    assert counter is not None  # _init_worker set it in this worker
    with counter.get_lock():
        counter.value += n


def _pack_shard_in_worker(shard: _Shard) -> list[tuple[int, str]]:
    return _pack_shard(shard, report=_count)


def _shard_is_done(shard: _Shard, sizes: np.ndarray, mtimes: np.ndarray) -> bool:
    """A shard from an earlier (interrupted or outdated) pack is kept only if it is whole
    and every one of its sources is unchanged since it was packed."""
    if not (shard.data_path.is_file() and shard.meta_path.is_file()):
        return False
    try:
        meta = np.load(shard.meta_path)
    except (OSError, ValueError):
        return False
    n = shard.stop - shard.start
    return (
        meta.shape == (n, 3)
        and int(meta[:, 0].sum()) == shard.data_path.stat().st_size
        and np.array_equal(meta[:, 1], sizes[shard.start : shard.stop])
        and np.array_equal(meta[:, 2], mtimes[shard.start : shard.stop])
    )


def _run_shards(todo: list[_Shard], *, workers: int, bar) -> list[tuple[int, str]]:
    """Pack ``todo`` in this process (one worker) or in a pool of processes, advancing the
    progress bar as images are done; returns every undecodable image."""
    bad: list[tuple[int, str]] = []
    if workers <= 1 or len(todo) <= 1:
        for shard in todo:
            bad += _pack_shard(shard, report=bar.update)
        return bad
    # spawn: the workers need only Pillow and simplejpeg, and a fresh process is safe whatever
    # threads the caller has (torch's OpenMP pool, tqdm's monitor); its start-up (~0.3 s) is
    # nothing beside a pack. ProcessPoolExecutor rather than multiprocessing.Pool: a worker
    # that dies (killed for memory, or unable to start) fails the pack instead of hanging it.
    ctx = multiprocessing.get_context("spawn")
    counter = ctx.Value("q", 0)
    pool = ProcessPoolExecutor(min(workers, len(todo)), mp_context=ctx, initializer=_init_worker, initargs=(counter,))
    try:
        pending = {pool.submit(_pack_shard_in_worker, shard) for shard in todo}
        while pending:
            done, pending = wait(pending, timeout=0.25, return_when=FIRST_COMPLETED)
            for future in done:
                bad += future.result()
            if counter.value > bar.n:
                bar.update(counter.value - bar.n)
    except BrokenProcessPool as e:
        raise RuntimeError(
            f"a packing worker process stopped unexpectedly ({e}); if memory is short, "
            f"pack with fewer workers (--workers)"
        ) from None
    except BaseException:
        # Ctrl-C or an error: stop the workers now rather than after their current shard
        for process in list((getattr(pool, "_processes", None) or {}).values()):
            process.terminate()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    return bad


def _write_index(
    directory: Path, shards: list[_Shard], *, store_format: str, image_size: int, quality: int, key: str
) -> None:
    """Assemble the per-image index from the shards' ``.meta.npy`` files and write the
    index, the source stats and, last, the manifest."""
    metas = [np.load(s.meta_path) for s in shards]
    lengths = np.concatenate([m[:, 0] for m in metas])
    offsets = np.concatenate([np.cumsum(m[:, 0]) - m[:, 0] for m in metas])
    shard_of = np.concatenate([np.full(len(m), i, dtype=np.int32) for i, m in enumerate(metas)])
    _save_npz(directory / _INDEX, shard=shard_of, offset=offsets.astype(np.int64), length=lengths.astype(np.int32))
    _save_npz(
        directory / _SOURCES,
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
    with atomic_file(directory / _MANIFEST, "wb") as f:
        f.write(json.dumps(manifest, indent=1).encode())


def _changed_sources(directory: Path, sizes: np.ndarray, mtimes: np.ndarray) -> np.ndarray | None:
    """Positions of the sources that differ from what a complete store was packed from
    (empty: the store can be used as it is); None when the store is not complete."""
    if not (directory / _MANIFEST).is_file():
        return None
    try:
        with np.load(directory / _SOURCES) as stored:
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
    quality: int = 90,
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
    directory = Path(cache_dir).expanduser() / _store_name(key, image_size=image_size, store_format=store_format)
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
    (directory / _MANIFEST).unlink(missing_ok=True)  # incomplete from here until the new manifest
    size = shard_size or default_shard_size(len(paths))
    shards = [
        _Shard(
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
    keep = {_LOCK} | {s.data_path.name for s in shards} | {s.meta_path.name for s in shards}
    _remove_strays(directory, keep)
    todo = [s for s in shards if not _shard_is_done(s, sizes, mtimes)]
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
        bad = _run_shards(todo, workers=workers, bar=bar)
    if bad:
        _report_undecodable(directory, paths, sorted(bad), what=what)
    _write_index(directory, shards, store_format=store_format, image_size=image_size, quality=quality, key=key)


def _report_undecodable(directory: Path, paths: list[str], bad: list[tuple[int, str]], *, what: str) -> None:
    listing = directory / _BAD_LIST
    lines = "".join(f"{paths[i]}\t{reason}\n" for i, reason in bad)
    with atomic_file(listing, "wb") as f:
        f.write(lines.encode("utf-8", "surrogateescape"))
    shown = "; ".join(f"{paths[i]} ({reason})" for i, reason in bad[:_SHOWN_BAD])
    more = f"; ... (all {len(bad)} are listed in {listing})" if len(bad) > _SHOWN_BAD else ""
    raise InputError(
        f"{len(bad)} of the {len(paths)} {what} cannot be decoded as images: {shown}{more}; remove or replace them"
    )


# --------------------------------------------------------------------------- reading


class PackedImages:
    """A packed store seen as a uint8 (N, S, S, 3) array that is read from disk on demand.

    ``images[i]`` is one (S, S, 3) image; ``images[slice]``, ``images[int array]`` and
    ``images[bool mask]`` are (n, S, S, 3) arrays in the order asked; :meth:`read` decodes
    into a buffer the caller owns (a pinned or shared-memory tensor's ``numpy()`` view, say).
    Nothing decoded is kept: only the index (shard, offset and length per entry, 16 bytes
    each, so a million entries are 16 MB).

    Entries need not be distinct: :meth:`subset` and :meth:`from_index` make views whose
    index repeats, reorders or drops packed images (a million-entry rehearsal over a few
    hundred packed images is ``PackedImages.from_index(directory, rng.integers(0, 300,
    1_000_000))``).

    Pickling carries the directory and the index arrays only; each process maps the shard
    files it reads when it first needs them, so it can be handed to ``DataLoader`` worker
    processes.
    """

    def __init__(
        self,
        directory: Path | str,
        *,
        store_format: str,
        image_size: int,
        shard_files: Sequence[str],
        shard: np.ndarray,
        offset: np.ndarray,
        length: np.ndarray,
    ):
        self.directory = Path(directory)
        self.store_format = store_format
        self.image_size = int(image_size)
        self.shard_files = tuple(shard_files)
        self._shard = np.asarray(shard, dtype=np.int32)
        self._offset = np.asarray(offset, dtype=np.int64)
        self._length = np.asarray(length, dtype=np.int32)
        self._maps: dict[int, np.ndarray] = {}

    # -- construction ---------------------------------------------------------------------
    @classmethod
    def open(cls, directory: Path | str) -> PackedImages:
        """The complete store in ``directory`` (made by :func:`pack_images`)."""
        directory = Path(directory)
        try:
            manifest = json.loads((directory / _MANIFEST).read_text())
            with np.load(directory / _INDEX) as index:
                shard, offset, length = index["shard"], index["offset"], index["length"]
        except FileNotFoundError:
            raise InputError(
                f"{directory} is not a complete packed image store (no {_MANIFEST} or {_INDEX}); "
                f"pack it with pack_images"
            ) from None
        except (OSError, ValueError, KeyError) as e:
            raise InputError(
                f"the packed image store in {directory} is damaged ({error_reason(e)}); delete it and "
                f"it will be packed again"
            ) from None
        if manifest.get("version") != STORE_VERSION:
            raise InputError(
                f"the packed image store in {directory} has version {manifest.get('version')!r}, "
                f"this memomentum reads version {STORE_VERSION}; delete it and it will be packed again"
            )
        return cls(
            directory,
            store_format=manifest["format"],
            image_size=manifest["image_size"],
            shard_files=manifest["shards"],
            shard=shard,
            offset=offset,
            length=length,
        )

    @classmethod
    def from_index(cls, directory: Path | str, entries) -> PackedImages:
        """The store in ``directory`` seen through ``entries``: entry ``j`` is packed image
        ``entries[j]`` (repeats allowed). Same as ``open(directory).subset(entries)``."""
        return cls.open(directory).subset(entries)

    def subset(self, indices) -> PackedImages:
        """A view of the entries ``indices`` (int array, slice or bool mask) in that order;
        nothing is read or copied but the index."""
        idx = self._positions(indices)
        view = PackedImages(
            self.directory,
            store_format=self.store_format,
            image_size=self.image_size,
            shard_files=self.shard_files,
            shard=self._shard[idx],
            offset=self._offset[idx],
            length=self._length[idx],
        )
        view._maps = self._maps  # same process, same files: share the open maps
        return view

    # -- array-like -----------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (len(self._shard), self.image_size, self.image_size, 3)

    ndim = 4
    dtype = np.dtype(np.uint8)

    def __len__(self) -> int:
        return len(self._shard)

    @property
    def nbytes(self) -> int:
        """Bytes the entries take decoded (what ``to_array()`` would allocate)."""
        return len(self) * self.image_size * self.image_size * 3

    @property
    def disk_bytes(self) -> int:
        """Bytes the whole store takes on disk (shards, index and manifest)."""
        return sum(p.stat().st_size for p in self.directory.iterdir() if p.is_file())

    def __repr__(self) -> str:
        side = self.image_size
        return f"PackedImages({len(self)} x {side}x{side}x3, {self.store_format}, {self.directory})"

    def __getitem__(self, key) -> np.ndarray:
        if isinstance(key, tuple):  # images[rows, y, x, c]: rows first, the rest on the result
            first, rest = (key[0] if key else slice(None)), key[1:]
            images = self[first]
            return images[rest] if isinstance(first, (int, np.integer)) else images[(slice(None),) + rest]
        if isinstance(key, (int, np.integer)):
            return self.read(np.array([key]))[0]
        idx = self._positions(key)
        return self.read(idx.ravel()).reshape(idx.shape + self.shape[1:])

    def to_array(self) -> np.ndarray:
        """Every entry decoded into one array (only for stores that fit in memory)."""
        return self.read(np.arange(len(self)))

    # -- reading --------------------------------------------------------------------------
    def read(self, indices, out=None) -> np.ndarray:
        """Decode the entries ``indices`` into ``out`` (uint8, C-contiguous, shape
        (len(indices), S, S, 3); a numpy array or a CPU tensor, whose memory is written
        through ``.numpy()``), or into a new array. Returns ``out`` (or the new array)."""
        idx = self._positions(indices).ravel()
        shape = (len(idx),) + self.shape[1:]
        if out is None:
            out = np.empty(shape, dtype=np.uint8)
        view = out if isinstance(out, np.ndarray) else out.numpy()
        if view.shape != shape or view.dtype != np.uint8 or not view.flags.c_contiguous or not view.flags.writeable:
            raise ValueError(
                f"out must be a writable C-contiguous uint8 array of shape {shape}, got {view.dtype} {view.shape}"
            )
        if self.store_format == "jpeg":
            self._decode_jpegs(idx, view)
        else:
            self._copy_raw(idx, view)
        return out

    def _decode_jpegs(self, idx: np.ndarray, view: np.ndarray) -> None:
        decode = import_simplejpeg().decode_jpeg
        side = self.image_size
        for i, (s, o, n) in enumerate(
            zip(self._shard[idx].tolist(), self._offset[idx].tolist(), self._length[idx].tolist())
        ):
            data = self._maps.get(s)
            if data is None:
                data = self._map(s)
            # straight into the output slice: no intermediate array per image
            decoded = decode(data[o : o + n], colorspace="RGB", buffer=view[i])
            if decoded.shape != (side, side, 3):
                raise ValueError(
                    f"packed image {i} in {self.directory} decodes to {decoded.shape}, expected "
                    f"({side}, {side}, 3): the store is damaged"
                )

    def _copy_raw(self, idx: np.ndarray, view: np.ndarray) -> None:
        per_image = self.image_size * self.image_size * 3
        for i, (s, o) in enumerate(zip(self._shard[idx].tolist(), self._offset[idx].tolist())):
            data = self._maps.get(s)
            if data is None:
                data = self._map(s)
            view[i] = data[o : o + per_image].reshape(view.shape[1:])

    def _map(self, s: int) -> np.ndarray:
        """Shard ``s`` mapped read-only (as a plain ndarray view: cheaper slicing than a
        memmap object), once per process."""
        path = self.directory / self.shard_files[s]
        try:
            data = np.memmap(path, dtype=np.uint8, mode="r").view(np.ndarray)
        except (OSError, ValueError) as e:
            raise InputError(
                f"cannot read the packed image shard {path} ({error_reason(e)}); delete {self.directory} "
                f"and it will be packed again"
            ) from None
        self._maps[s] = data
        return data

    def _positions(self, key) -> np.ndarray:
        """``key`` (slice, int array, bool mask) as non-negative int64 entry numbers."""
        n = len(self)
        if isinstance(key, slice):
            return np.arange(n, dtype=np.int64)[key]
        if isinstance(key, (int, np.integer)):
            key = [key]
        if hasattr(key, "numpy") and not isinstance(key, np.ndarray):  # a torch tensor
            key = key.detach().cpu().numpy()
        idx = np.asarray(key)
        if idx.dtype == bool:
            if idx.shape != (n,):
                raise IndexError(f"boolean index has shape {idx.shape}, expected ({n},)")
            return np.flatnonzero(idx)
        if idx.size == 0:
            return np.zeros(idx.shape, dtype=np.int64)
        if not np.issubdtype(idx.dtype, np.integer):
            raise IndexError(f"PackedImages are indexed by integers, slices or boolean masks, not {idx.dtype}")
        idx = idx.astype(np.int64, copy=False)
        if idx.min() < -n or idx.max() >= n:
            bad = idx[(idx < -n) | (idx >= n)][0]
            raise IndexError(f"index {bad} is out of bounds for {n} packed images")
        return np.where(idx < 0, idx + n, idx)

    # -- pickling: the index travels, the mapped files do not --------------------------------
    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_maps"] = {}
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._maps = {}

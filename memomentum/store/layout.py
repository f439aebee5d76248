"""A packed store on disk: where stores live, the name of one (a hash of its sources and settings),
its files and its shards' sizes.

The "raw" format stores exactly the pixels of :mod:`.pixels`; "jpeg" re-encodes them with
simplejpeg (4:4:4, ``quality``).

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
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Sequence
from pathlib import Path

STORE_FORMATS = ("jpeg", "raw")
STORE_VERSION = 1
# 4:4:4 (no chroma subsampling) keeps the stored pixels close to the resized originals. On the
# benchmark's photo-like 256 x 256 images at quality 90: 4:4:4 23 KB, decoded in 0.78 ms, mean
# absolute difference 1.9 levels; 4:2:0 15 KB, 0.38 ms, 3.2 levels. 4:4:4 already decodes
# several times faster than a GPU trains (docs/images.md), so fidelity wins.
JPEG_SUBSAMPLING = "444"
JPEG_QUALITY = 90  # the store's quality when none is named (a run never names one)
# Images per shard. Each worker packs whole shards, so this is the work lost per worker when
# a pack is interrupted (4,096 x ~5 ms = ~20 s of one core) and the unit of load balancing;
# a million images make 245 shard files (each reader process maps the ones it touches).
# Small stores get smaller shards (at least 256 images) so that up to 64 workers have work.
SHARD_IMAGES = 4096
MIN_SHARD_IMAGES = 256
_BALANCE_SHARDS = 64

MANIFEST, INDEX, SOURCES, LOCK, BAD_LIST = "manifest.json", "index.npz", "sources.npz", ".lock", "undecodable.txt"
_EXTENSION = {"jpeg": ".jpegs", "raw": ".raw"}


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


def store_name(key: str, *, image_size: int, store_format: str) -> str:
    """The store's directory name under the cache directory: format, image size and the key's head."""
    return f"{store_format}{image_size}-{key[:20]}"


def default_shard_size(n: int) -> int:
    """Images per shard for a store of ``n`` images (see :data:`SHARD_IMAGES`)."""
    return int(min(SHARD_IMAGES, max(MIN_SHARD_IMAGES, math.ceil(n / _BALANCE_SHARDS))))


def shard_file_name(start: int, stop: int, store_format: str) -> str:
    return f"shard-{start:09d}-{stop:09d}{_EXTENSION[store_format]}"

"""Reading a packed store back: :class:`PackedImages`, a uint8 (N, S, S, 3) array read from disk on
demand, in whole batches (made by :func:`memomentum.store.packing.pack_images`)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..base.errors import InputError
from .layout import INDEX, MANIFEST, STORE_VERSION
from .pixels import error_reason, import_simplejpeg


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
            manifest = json.loads((directory / MANIFEST).read_text())
            with np.load(directory / INDEX) as index:
                shard, offset, length = index["shard"], index["offset"], index["length"]
        except FileNotFoundError:
            raise InputError(
                f"{directory} is not a complete packed image store (no {MANIFEST} or {INDEX}); pack it with pack_images"
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

"""Images as a packed store would hold them, without packing them: what prediction reads.

A run on image files trains on its packed store (:mod:`.packing`): each file decoded and
resized by :func:`~.pixels.decode_resized` and, in a JPEG store, re-encoded at the store's
quality and decoded again when read. :class:`UnpackedImages` gives new image files the same
pixels, decoded when a batch asks for them (a folder of any size, nothing written), and
:func:`stored_images` gives images already in memory the pixels their files would give.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ..base.cores import cores_up_to
from ..base.errors import InputError
from .layout import JPEG_QUALITY, JPEG_SUBSAMPLING
from .pixels import decode_resized, error_reason, import_pillow, import_simplejpeg

__all__ = ["UnpackedImages", "as_stored", "stored_images"]

_MAX_THREADS = 16  # threads that decode at once (Pillow and simplejpeg release the GIL)


def _threads(threads: int | None) -> int:
    return threads or cores_up_to(_MAX_THREADS)


class UnpackedImages:
    """Image files seen as the run's packed store holds them: uint8 (N, S, S, 3), each read
    (decoded, resized and, for a JPEG store, re-encoded) when a batch asks for it, by a few
    threads at once. Indexes as :class:`~.training.sources.StreamedSource` reads a
    :class:`~.reading.PackedImages`."""

    ndim = 4
    dtype = np.dtype(np.uint8)

    def __init__(self, paths: list[str], *, side: int, store_format: str, threads: int | None = None):
        self.paths = list(paths)
        self.side = side
        self.store_format = store_format
        self.quality = JPEG_QUALITY
        self.threads = _threads(threads)
        self.shape = (len(self.paths), side, side, 3)

    def __len__(self) -> int:
        return len(self.paths)

    def read(self, rows, out=None):
        rows = np.asarray(rows, dtype=np.int64)
        if out is None:
            out = np.empty((rows.size, *self.shape[1:]), dtype=np.uint8)
        view = out if isinstance(out, np.ndarray) else out.numpy()
        with ThreadPoolExecutor(min(self.threads, max(1, rows.size))) as pool:
            for i, pixels in enumerate(pool.map(self._pixels, [self.paths[r] for r in rows.tolist()])):
                view[i] = pixels
        return out

    def __getitem__(self, key) -> np.ndarray:
        return self.read(np.arange(len(self))[key])

    def _pixels(self, path: str) -> np.ndarray:
        try:
            pixels, _ = decode_resized(path, self.side, import_pillow())
        except InputError:
            raise
        except Exception as e:  # noqa: BLE001 -- decoders raise many types
            raise InputError(
                f"{path} cannot be decoded as an image ({error_reason(e)}); remove it or give only image files"
            ) from None
        return as_stored(pixels, self.store_format, self.quality)


def as_stored(pixels: np.ndarray, store_format: str, quality: int) -> np.ndarray:
    """Resized pixels as the packed store gives them back: the same array for a raw store,
    the store's JPEG (4:4:4, ``quality``) decoded again for a JPEG store."""
    if store_format != "jpeg":
        return pixels
    sj = import_simplejpeg()
    blob = sj.encode_jpeg(
        np.ascontiguousarray(pixels), quality=quality, colorspace="RGB", colorsubsampling=JPEG_SUBSAMPLING
    )
    return sj.decode_jpeg(blob, colorspace="RGB")


def stored_images(x: np.ndarray, *, side: int, store_format: str, threads: int | None = None) -> np.ndarray:
    """Decoded images in memory, uint8 (N, H, W, C) with 1, 3 or 4 channels, as the store
    would hold their files: RGB, resized as :func:`~.pixels.decode_resized` resizes, and
    stored (:func:`as_stored`)."""
    Image, quality = import_pillow(), JPEG_QUALITY
    mode = {1: "L", 3: "RGB", 4: "RGBA"}[x.shape[3]]

    def stored(image: np.ndarray) -> np.ndarray:
        rgb = Image.fromarray(image[..., 0] if mode == "L" else image, mode).convert("RGB")
        return as_stored(np.asarray(rgb.resize((side, side), Image.Resampling.BILINEAR)), store_format, quality)

    with ThreadPoolExecutor(_threads(threads)) as pool:
        return np.stack(list(pool.map(stored, x)))

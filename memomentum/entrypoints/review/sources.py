"""What the page shows of an example besides its labels: a thumbnail of its image, made on
demand from the run's own data and cached, or its feature row.

Where the run's data are found: ``examples.csv`` names the image file of every example of
a run on image files (image folders, image tables, Clothing1M and the other releases, all
read through their packed store); other runs read their data again as the run did, from
``config.json`` (``dataset``, ``data_dir``): a table's rows (``examples.csv``'s ``row``), an
``.npz`` file's or a built-in benchmark's arrays (``examples.csv``'s ``index``). Only the
run's own examples are ever read: the page asks by example index, never by path.
"""

from __future__ import annotations

import io
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

from ...base.errors import InputError
from ...runner.files import CONFIG, read_json
from .examples import Examples

THUMB_SIDE = 160  # pixels, the longer side
_CACHED = 4096  # thumbnails kept in memory (about 10 kB each)
_SHOWN_FEATURES = 12  # feature values shown per row


def run_config(run_dir: Path) -> dict:
    return read_json(run_dir / CONFIG)


def data_path(config: dict) -> Path | None:
    """The file the run read (a table or an ``.npz``), as it was named, else under its data
    directory; None for a benchmark name or data that are no file."""
    name = str(config.get("dataset") or "").strip()
    if not name:
        return None
    for candidate in (Path(name).expanduser(), Path(config.get("data_dir") or ".").expanduser() / name):
        if candidate.is_file():
            return candidate.resolve()
    return None


class DataView:
    """Thumbnails and feature rows of a run's examples, read lazily, cached."""

    def __init__(self, ex: Examples, config: dict):
        self.ex, self.config = ex, config
        self._cache: OrderedDict[int, bytes] = OrderedDict()
        self._lock = threading.Lock()
        self._arrays: Any = None  # x of an .npz or a benchmark, read on first use (False: not readable)
        self._frame: Any = None  # a table's feature columns, read on first use (False: not readable)
        self._brightest: int | None = None  # the largest pixel value of image arrays
        self.kind = self._kind()

    def _kind(self) -> str:
        """``images`` (image files or image arrays), ``table`` (a table's rows), ``features``
        (feature arrays) or ``none`` (data given in memory: nothing to show)."""
        if self.ex.files is not None:
            return "images"
        if self.ex.rows is not None:
            return "table"
        if self.config.get("dataset") == "arrays":
            return "none"
        x = self.arrays()
        return "none" if x is None else "images" if x.ndim == 4 else "features"

    def arrays(self) -> np.ndarray | None:
        """The training inputs of an array run, as the run loaded them (None: not found)."""
        if self._arrays is None:
            from ...data.arrays import load_array_dataset

            name, data_dir = str(self.config.get("dataset")), self.config.get("data_dir")
            try:
                self._arrays = load_array_dataset(name, data_dir=data_dir).x_train
            except InputError:
                self._arrays = False  # not readable here (moved, another machine): no thumbnails
        return None if self._arrays is False else self._arrays

    def thumbnail(self, pos: int) -> bytes | None:
        """The example's image as a PNG (arrays) or JPEG (files), at most :data:`THUMB_SIDE` a side."""
        with self._lock:
            if pos in self._cache:
                self._cache.move_to_end(pos)
                return self._cache[pos]
        data = self._make_thumbnail(pos)
        if data is not None:
            with self._lock:
                self._cache[pos] = data
                while len(self._cache) > _CACHED:
                    self._cache.popitem(last=False)
        return data

    def _make_thumbnail(self, pos: int) -> bytes | None:
        from ...store.pixels import import_pillow

        Image = import_pillow()
        if self.ex.files is not None:
            try:
                with Image.open(self.ex.files[pos]) as im:
                    im.draft("RGB", (THUMB_SIDE, THUMB_SIDE))  # JPEG: decode at a smaller scale, much faster
                    im = _fitted(im.convert("RGB"), Image)
                    return _encoded(im, "JPEG")
            except (OSError, ValueError, Image.DecompressionBombError):
                return None
        x = self.arrays()
        if x is None or x.ndim != 4:
            return None
        pixels = np.asarray(x[int(self.ex.index[pos])])
        if self._brightest is None:  # images stored 0..16 (scikit-learn's digits) are shown 0..255
            self._brightest = max(1, int(x.max()))
        if self._brightest < 255:
            pixels = (pixels.astype(np.uint16) * 255 // self._brightest).astype(np.uint8)
        im = Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels[..., :3])
        return _encoded(_fitted(im, Image), "PNG")

    def feature_columns(self) -> list[str]:
        frame = self._table()
        if frame is not None:
            return [str(c) for c in frame.columns]
        x = self.arrays() if self.kind == "features" else None
        return [] if x is None else [f"x{j}" for j in range(min(x.shape[1], _SHOWN_FEATURES))]

    def features(self, positions: np.ndarray) -> list[list] | None:
        """The feature rows of the examples at ``positions`` (the first columns), or None."""
        if self.kind == "table":
            frame = self._table()
            if frame is None or self.ex.rows is None:
                return None
            values = frame.iloc[self.ex.rows[positions]].to_numpy(object)
        elif self.kind == "features":
            arrays = self.arrays()
            if arrays is None:
                return None
            values = arrays[self.ex.index[positions], :_SHOWN_FEATURES]
        else:
            return None
        return [[_plain(v) for v in row] for row in values]

    def _table(self):
        """The run's table (every column but the label, the first :data:`_SHOWN_FEATURES`)."""
        if self._frame is None and self.kind == "table":
            path = data_path(self.config)
            self._frame = False
            if path is not None:
                from ...data.tables import read_frame

                frame = read_frame(path)
                label = self.config.get("label_column") or "label"
                shown = [c for c in frame.columns if str(c).strip() != label][:_SHOWN_FEATURES]
                self._frame = frame[shown]
        return None if self._frame is False else self._frame


def _fitted(im, Image):
    """At most :data:`THUMB_SIDE` a side; a small image (8 x 8 digits, 28 x 28 Fashion-MNIST)
    enlarged by a whole factor with its pixels kept sharp."""
    scale = THUMB_SIDE // max(im.size)
    if scale >= 2:
        return im.resize((im.width * scale, im.height * scale), Image.NEAREST)
    im.thumbnail((THUMB_SIDE, THUMB_SIDE))
    return im


def _encoded(im, fmt: str) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **({"quality": 85} if fmt == "JPEG" else {}))
    return buf.getvalue()


def _plain(v):
    """A value as JSON can carry it: numbers rounded for the eye, the rest as text."""
    if isinstance(v, (float, np.floating)):
        return None if not np.isfinite(v) else float(f"{float(v):.6g}")
    if isinstance(v, (int, np.integer, bool, np.bool_)):
        return int(v)
    return str(v)

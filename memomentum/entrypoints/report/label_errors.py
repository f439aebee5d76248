"""The examples the report shows as likely label errors: which, in what order, and their
images (from the files ``examples.csv`` names, else from the run's dataset).
"""

from __future__ import annotations

import numpy as np

from ...method.verdicts import rank_by_quality
from .figures import THUMB_SIDE
from .reading import ExamplesTable, RunFiles


def likely_label_errors(v: ExamplesTable, limit: int) -> tuple[np.ndarray, str]:
    """Rows of ``v`` most likely mislabelled, most likely first, and how they were ranked:
    the lowest ``label_quality`` when the run wrote it, else the suspects the network
    assigns to another class with the highest confidence."""
    if v.quality is not None and not np.isnan(v.quality).all():
        order = rank_by_quality(v.quality, v.confidence)
        return order[:limit], "lowest label quality first; ties: the most confident prediction first"
    rows = np.flatnonzero(v.suspect & (v.predicted != v.given))
    if v.confidence is not None:
        rows = rows[np.argsort(-np.nan_to_num(v.confidence[rows], nan=-1.0), kind="stable")]
    return rows[:limit], "suspects the network assigns to another class, most confident first"


def load_images(run: RunFiles, v: ExamplesTable, rows: np.ndarray, *, dataset=None) -> tuple[list | None, str]:
    """The images of ``rows`` (uint8 H x W x C arrays), or None and why not."""
    if rows.size == 0:
        return [], ""
    if v.files is not None:
        return _images_from_files([str(v.files[r]) for r in rows])
    ds = dataset
    if ds is None:
        name = run.config.get("dataset", run.summary.get("dataset"))
        if not name or name == "arrays":
            return None, "the run's data were given in memory, so the report cannot read its images"
        from ...data.registry import is_table_file

        if is_table_file(name):
            return None, "the data are a table, not images"
        try:
            from ...data import load_dataset

            ds = load_dataset(
                name,
                data_dir=run.config.get("data_dir"),
                cache_dir=run.config.get("cache_dir"),
                image_size=run.config.get("image_size"),
                store_format=run.config.get("store_format") or "jpeg",
                train_set=run.config.get("train_set") or "noisy",
                progress=False,
            )
        except Exception as e:  # noqa: BLE001 -- the grid is an extra: a dataset that cannot be read leaves the table
            return None, f"the images could not be read ({e})"
    if getattr(ds.x_train, "ndim", 0) != 4:
        return None, "the data are a table of features, not images"
    idx = v.index[rows]
    if idx.size and (idx.min() < 0 or idx.max() >= len(ds.x_train)):
        return None, "examples.csv does not match the dataset (an index lies outside its training set)"
    order = np.argsort(idx, kind="stable")  # packed stores read fastest in index order
    picked = np.asarray(ds.x_train[idx[order]])
    images = [None] * idx.size
    for j, i in enumerate(order):
        images[i] = picked[j]
    return images, ""


def _images_from_files(paths: list[str]) -> tuple[list | None, str]:
    try:
        from PIL import Image
    except ImportError:
        return None, "reading the image files needs Pillow (pip install memomentum[images])"
    images = []
    for p in paths:
        try:
            with Image.open(p) as im:
                im = im.convert("RGB")
                im.thumbnail((THUMB_SIDE * 2, THUMB_SIDE * 2))
                images.append(np.asarray(im))
        except OSError as e:
            return None, f"the image {p} could not be read ({e.strerror or e})"
    return images, ""

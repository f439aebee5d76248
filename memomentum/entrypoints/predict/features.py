"""Tables and arrays for a finished run's model, read as the run read its own.

* A table (a path, or a DataFrame): its columns cleaned as :mod:`~...data.tables` cleans them
  (:func:`~...data.tables.cleaned_frame`), the run's feature columns read by name as it reads
  them (:func:`~...data.tables.read_features`: float64, then float32), the given labels
  matched to the run's classes by its rule (:func:`~...data.labels.encode_given_labels`).
* Arrays and ``.npz`` files: checked and converted as the run's ``.npz`` reader does
  (:func:`~...data.arrays.npz_inputs`); for a table run, as the table reader converts features;
  for a run on image files, as decoded image files (:func:`~...store.unpacked.stored_images`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...base.errors import InputError
from .inputs import Inputs, encode_labels, names
from .run import FinishedRun, describe, wrong_kind

__all__ = ["array_inputs", "npz_file_inputs", "table_inputs"]


def table_inputs(run: FinishedRun, frame, where: str, label_column: str | None) -> Inputs:
    """A table of features, its columns cleaned and read as the run's table reader does,
    with its given labels where it has the label column (by default the run's)."""
    if run.kind != "table":
        raise wrong_kind(run, where, "a table")
    from ...data.tables import cleaned_frame, read_features

    column = run.label_column(label_column)
    frame = cleaned_frame(frame, where, label_column=column, label_required=False)
    features = run.feature_columns or ()
    missing = [c for c in features if c not in frame.columns]
    if missing:
        hint = ""
        if len(missing) == len(features) and where == "the DataFrame":  # columns unnamed (0, 1, ...) or renamed
            hint = (
                " (none of them is there: name the frame's columns as the run's, or give its values as an "
                "array, in the order of feature_columns_)"
            )
        raise InputError(
            f"{where} has no column {names([repr(c) for c in missing], 5)}; the run's model reads the "
            f"{len(features)} feature columns {names(features)}, matched by name{hint}"
        )
    x = read_features(frame, features, where)
    if column not in frame.columns:
        if label_column is not None:
            raise InputError(
                f"{where} has no column {column!r} (columns: {names(list(frame.columns), 20)}); "
                f"--label-column names the column of given labels"
            )
        return Inputs(x, None, "row", np.arange(len(frame)), None, where)
    if column in features:
        raise InputError(
            f"--label-column {column} is one of the run's feature columns; name the column of given labels"
        )
    given = encode_labels(run, frame[column].to_numpy(dtype=object), frame[column].isna().to_numpy(), where)
    return Inputs(x, None, "row", np.arange(len(frame)), given, where)


# -- arrays and .npz files


def npz_file_inputs(run: FinishedRun, p: Path) -> Inputs:
    from ...data.arrays import read_npz

    arrays = read_npz(
        p,
        ("x",),
        ("y",),
        needs="x and optionally y, the given labels",
        how="np.savez(path, x=...) (and y=..., the given labels)",
    )
    return array_inputs(run, arrays["x"], arrays.get("y"), str(p), "x")


def array_inputs(run: FinishedRun, x, y, where: str, key: str) -> Inputs:
    x = np.asarray(x)
    if x.ndim == 0 or len(x) == 0:
        raise InputError(f"{key} in {where} holds no examples")
    if x.ndim == 1:
        raise InputError(
            f"{key} in {where} is one-dimensional (shape {x.shape}); give the examples as the rows of "
            f"a 2-D array (one example: {key}.reshape(1, -1))"
        )
    x = _decoded_images(run, x, key, where) if run.kind == "files" else _run_arrays(run, x, key, where)
    given = None
    if y is not None:
        y = np.asarray(y)
        y = y[:, 0] if y.ndim == 2 and y.shape[1] == 1 else y
        if y.shape != (len(x),):
            raise InputError(
                f"{where} has {len(x)} examples in {key} but y of shape {y.shape}; give one label per example"
            )
        missing = np.isnan(y) if np.issubdtype(y.dtype, np.floating) else np.zeros(len(y), dtype=bool)
        given = encode_labels(run, y, missing, f"y in {where}")
    return Inputs(x, None, "row", np.arange(len(x)), given, where)


def _run_arrays(run: FinishedRun, x: np.ndarray, key: str, where: str) -> np.ndarray:
    """Features or images for a table or arrays run, checked against the model's input
    and converted as the run's readers converted its own."""
    from ...data.arrays import npz_inputs
    from ...data.tables import float32_features

    shape = tuple(run.saved["input_shape"])
    trained, accepts = describe(run)
    if len(shape) == 1:
        if x.ndim != 2 or x.shape[1] != shape[0]:
            got = f"{x.shape[1]} features" if x.ndim == 2 else f"shape {x.shape}"
            raise InputError(f"{key} in {where} has {got}, but the run trained on {trained}; give {accepts}")
        if run.kind == "table":  # the table reader's conversion: float64, then float32
            if not (np.issubdtype(x.dtype, np.number) or x.dtype == np.bool_) or np.iscomplexobj(x):
                raise InputError(f"{key} in {where} has dtype {x.dtype}; it must be real numbers")
            return float32_features(x.astype(np.float64), run.feature_columns, where)
        return npz_inputs(x, key, where)
    if x.ndim not in (3, 4):
        raise InputError(f"{key} in {where} has shape {x.shape}, but the run trained on {trained}; give {accepts}")
    x = npz_inputs(x, key, where)
    c, h, w = shape
    if x.shape[3] != c:
        raise InputError(
            f"{key} in {where} holds images with {x.shape[3]} channel{'s' if x.shape[3] > 1 else ''}, "
            f"but the run trained on {trained}; give images with {c} channel{'s' if c > 1 else ''}"
        )
    if x.shape[1:3] != (h, w):
        raise InputError(
            f"{key} in {where} holds images of {x.shape[1]} x {x.shape[2]} pixels, but the run trained "
            f"on {trained}; give images of {h} x {w} pixels"
        )
    return x


def _decoded_images(run: FinishedRun, x: np.ndarray, key: str, where: str) -> np.ndarray:
    """Images in memory for a run on image files: taken as decoded image files, so they go
    the files' way (RGB, resized, stored), and give what the same files would give."""
    from ...data.arrays import npz_inputs
    from ...store.unpacked import stored_images

    if x.ndim not in (3, 4) or (x.ndim == 4 and x.shape[3] not in (1, 3, 4)):
        raise InputError(
            f"{key} in {where} has shape {x.shape}, but the run trained on image files; give images "
            f"(N, H, W) or (N, H, W, C) with 1, 3 or 4 channels, or the image files"
        )
    return stored_images(npz_inputs(x, key, where), side=run.side, store_format=run.store_format)

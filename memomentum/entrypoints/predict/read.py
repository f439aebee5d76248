"""Whatever is given to predict (a path, a list of image files, a DataFrame, an array), sent
to the reader of its kind: :mod:`.features` (tables, arrays, ``.npz`` files) or
:mod:`.images` (image files, folders, lists, tables of images)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ...base.errors import InputError
from ...data.folders import IMAGE_EXTENSIONS, is_image_file
from ...data.registry import is_table_file, is_table_folder
from .features import array_inputs, npz_file_inputs, table_inputs
from .images import file_inputs, folder_inputs, frame_image_inputs, image_table_inputs, list_inputs
from .inputs import Inputs
from .run import FinishedRun, wrong_kind

__all__ = ["read_inputs"]


def read_inputs(run: FinishedRun, X, label_column: str | None) -> Inputs:
    """``X`` (see :class:`~..predictor.Predictor`) read for ``run``'s model."""
    _refuse_non_data(X)
    is_path = isinstance(X, (str, os.PathLike))
    is_table = is_path and (is_table_file(str(X)) or is_table_folder(str(X)))
    if label_column is not None and not _is_frame(X) and not is_table:
        shown = X if is_path else "the given data"
        raise InputError(
            f"--label-column names the label column of a table (.csv, .parquet); {shown} is not a "
            f"table, so it would be ignored; leave --label-column out"
        )
    if is_path:
        return _path_inputs(run, str(X), label_column)
    if isinstance(X, np.ndarray) and X.ndim == 1 and X.size and all(isinstance(v, str) for v in X.tolist()):
        X = X.tolist()  # image file paths in an array, as in a list
    if isinstance(X, (list, tuple)) and X and all(isinstance(v, (str, os.PathLike)) for v in X):
        not_images = [str(v) for v in X if not is_image_file(str(v))]
        if not_images:
            raise InputError(
                f"{not_images[0]} is not an image file ({', '.join(IMAGE_EXTENSIONS)}); several inputs "
                f"must all be image files"
            )
        return file_inputs(run, [str(v) for v in X])
    if _is_frame(X):
        if run.kind == "files":
            return frame_image_inputs(run, X, label_column)
        return table_inputs(run, X, "the DataFrame", label_column)
    return array_inputs(run, X, None, "the given data", "X")


def _refuse_non_data(X) -> None:
    """What cannot be data at all (None, one number, an empty path) is named as such, not
    taken for an array that "holds no examples" or for the working directory."""
    what = "a path, a list of image files, a DataFrame or an array"
    if isinstance(X, (str, os.PathLike)) and not str(X).strip():
        raise InputError(f"X is an empty path; give {what}")
    if X is None or isinstance(X, (bool, int, float, complex, bytes, dict, set, np.generic)):
        shown = X.item() if isinstance(X, np.generic) else X
        got = "None" if X is None else f"the {type(shown).__name__} {shown!r}"
        raise InputError(f"X must be the data to predict ({what}), got {got}")
    if hasattr(X, "toarray") and hasattr(X, "nnz"):
        raise InputError(f"X is a sparse matrix ({type(X).__name__}); give a dense array (X.toarray())")
    if type(X).__module__.split(".")[0] == "pandas" and not hasattr(X, "columns"):
        raise InputError(
            f"X is a pandas {type(X).__name__}, one column or one row; give a DataFrame (one row of "
            f"a frame: frame.iloc[[i]], with two brackets)"
        )


def _is_frame(X) -> bool:
    return type(X).__module__.split(".")[0] == "pandas" and hasattr(X, "columns")


def _path_inputs(run: FinishedRun, text: str, label_column: str | None) -> Inputs:
    p = Path(text.strip()).expanduser()
    name = text.strip().lower()
    if run.kind == "files" and ((is_table_file(name) and p.is_file()) or is_table_folder(str(p))):
        return image_table_inputs(run, p, label_column)
    if is_table_file(name):
        if not p.is_file():
            raise InputError(f"no table found at {p}")
        if run.kind != "table":  # before reading it: the run cannot use it anyway
            raise wrong_kind(run, str(p), "a table")
        from ...data.tables import read_frame

        return table_inputs(run, read_frame(p, label_column=run.label_column(label_column)), str(p), label_column)
    if name.endswith(".npz"):
        return npz_file_inputs(run, p)
    if p.is_dir():
        return folder_inputs(run, p)
    if name.endswith(".txt"):
        return list_inputs(run, p)
    if is_image_file(name):
        return file_inputs(run, [str(p)])
    raise InputError(
        f"cannot predict from {text}: give a table (.csv, .parquet), an .npz file, a folder of images, "
        f"image files ({', '.join(IMAGE_EXTENSIONS)}) or a .txt file listing image files"
    )

"""Image files for a finished run's model, listed as the run listed its own and decoded into
the pixels its packed store holds (:class:`~...store.unpacked.UnpackedImages`, batch by batch).

* A folder: listed as :mod:`~...data.folders` lists a class folder
  (:func:`~...data.folders.list_image_files`), its class folders (when they name the run's
  classes, :func:`~...data.folders.class_folders`) giving the labels.
* A table with an image column: every row, as :func:`~...data.image_tables.read_image_rows`
  reads it; a DataFrame of image paths, by the same test of a column of image files.
* Image files, given one by one or listed in a ``.txt`` file.
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path

import numpy as np

from ...base.errors import InputError
from ...data.folders import IMAGE_EXTENSIONS, class_folders, list_image_files
from ...data.labels import named_classes
from ...store.unpacked import UnpackedImages
from .inputs import Inputs, encode_labels, names
from .run import FinishedRun, wrong_kind

__all__ = ["file_inputs", "folder_inputs", "frame_image_inputs", "image_table_inputs", "list_inputs"]


def file_inputs(run: FinishedRun, paths: list[str], source: str | None = None) -> Inputs:
    if run.kind != "files":
        raise wrong_kind(run, source or paths[0], "image files" if len(paths) > 1 else "an image file")
    paths = [os.path.abspath(Path(p).expanduser()) for p in paths]
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing:
        raise InputError(f"{len(missing)} of the {len(paths)} image files cannot be found: {names(missing, 3)}")
    source = source or (paths[0] if len(paths) == 1 else f"{len(paths)} image files")
    return Inputs(None, _unpacked(run, paths), "file", paths, None, source)


def _unpacked(run: FinishedRun, paths: list[str]) -> UnpackedImages:
    """The files as the run's packed store would hold them."""
    return UnpackedImages(paths, side=run.side, store_format=run.store_format)


def folder_inputs(run: FinishedRun, root: Path) -> Inputs:
    """A folder of images, listed as the run's image-folder reader lists a class folder
    (every image under it in sorted path order, hidden files and folders left out)."""
    where = str(root)  # as given, in messages; the files are named by their absolute paths
    if run.kind != "files":
        raise wrong_kind(run, where, "a folder")
    root = Path(os.path.abspath(root))
    paths, others = list_image_files(root, what="the folder")
    if not paths:
        raise InputError(f"{where} holds no image files ({', '.join(IMAGE_EXTENSIONS)}) in it or its sub-folders")
    if others:
        skipped = sorted(os.path.relpath(p, root) for p in others)
        print(
            f"memomentum: note: skipped {len(skipped)} file{'s' if len(skipped) > 1 else ''} in {where} that "
            f"{'are' if len(skipped) > 1 else 'is'} not images: {names(skipped, 5)}",
            file=sys.stderr,
        )
    files = _unpacked(run, paths)
    return Inputs(None, files, "file", paths, _folder_labels(run, class_folders(root, paths), where), where)


def _folder_labels(run: FinishedRun, folders: list[str | None], where: str) -> np.ndarray | None:
    """Given labels from a labelled folder (:func:`~...data.folders.class_folders`): when
    some class folder is named after one of the run's classes, each image's class folder is
    its label (none for images beside the class folders); otherwise no labels."""
    names = run.class_names or tuple(str(k) for k in range(run.num_classes))
    index = {n: k for k, n in enumerate(names)}
    if not any(f in index for f in folders if f is not None):
        return None
    unknown = sorted({f for f in folders if f is not None and f not in index})
    if unknown:
        raise InputError(
            f"{where} has the class folder {unknown[0]!r}, which is not one of the run's classes "
            f"({named_classes(run.class_names, run.num_classes)}); in a folder of labelled images every "
            f"sub-folder names a class"
        )
    return np.array([-1 if f is None else index[f] for f in folders], dtype=np.int64)


def list_inputs(run: FinishedRun, p: Path) -> Inputs:
    """A ``.txt`` file listing image files, one a line (relative to the list's folder)."""
    if not p.is_file():
        raise InputError(f"no list of image files found at {p}")
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"cannot read the list of image files {p}: {e}") from None
    named = [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]
    if not named:
        raise InputError(f"{p} lists no image files; give one path a line")
    missing = [n for n in named if not (p.parent / Path(n).expanduser()).is_file()]
    if missing and all(Path(n).expanduser().is_file() for n in missing):  # written relative to the working directory
        raise InputError(
            f"{len(missing)} of the {len(named)} image files listed in {p} cannot be found relative to "
            f"its folder {p.parent} ({names(missing, 3)}), but exist relative to the working directory: "
            f"paths in a list are read relative to the list's folder, so write them relative to it, or "
            f"absolute"
        )
    return file_inputs(run, [str(p.parent / Path(n).expanduser()) for n in named], source=str(p))


# -- tables of images


def image_table_inputs(run: FinishedRun, p: Path, label_column: str | None) -> Inputs:
    """A table with an image column (a ``.csv`` or ``.parquet`` file, parquet shards, a ``save_to_disk``
    folder), read as the run reads one (:mod:`~...data.image_tables`): every row with an image,
    numbered over the table's parts in order, and its given label where the table has the
    label column (by default the run's)."""
    from ...data.image_tables import read_image_rows

    where = str(p)
    column = run.label_column(label_column)
    rows = read_image_rows(p, label_column=column)
    if rows is None:
        raise wrong_kind(run, where, "a table without an image column")
    if label_column is not None and rows.labels is None:
        raise InputError(f"{where} has no column {column!r}; --label-column names the column of given labels")
    print(f"memomentum: note: {rows.note}", file=sys.stderr)
    return _image_rows_inputs(run, rows.paths, rows.labels, where, "an image")


def frame_image_inputs(run: FinishedRun, frame, label_column: str | None) -> Inputs:
    """A DataFrame naming image files, for a run on image files: the column whose first value
    is the path of an image file (absolute, or relative to the working directory), every row
    with a path (numbered from 0 in the ``row`` column), and the given labels where the frame
    has the label column (by default the run's)."""
    from ...data.image_tables import names_image_files

    where = "the DataFrame"
    columns = [str(c).strip() for c in frame.columns]
    column = run.label_column(label_column)
    found = [c for c, name in zip(frame.columns, columns) if name != column and names_image_files(iter(frame[c]))]
    if len(found) != 1:
        listed = f" ({', '.join(repr(str(n)) for n in found)})" if found else ""
        raise InputError(
            f"{where} has {len(found)} columns of image file paths{listed}; a run on image "
            f"files predicts from one (paths of existing image files, absolute or relative to "
            f"{os.getcwd()})"
        )
    if column not in columns and label_column is not None:
        raise InputError(f"{where} has no column {column!r}; label_column names the column of given labels")
    labels = frame.iloc[:, columns.index(column)].tolist() if column in columns else None
    return _image_rows_inputs(run, frame[found[0]].tolist(), labels, where, "an image path")


def _image_rows_inputs(run: FinishedRun, paths: list, labels, where: str, without: str) -> Inputs:
    """Rows naming image files (None or empty: no image, left out with a note), numbered
    from 0, and their given labels (None: the data have no label column)."""
    from ...data.labels import row_numbers

    keep = np.array([i for i, f in enumerate(paths) if isinstance(f, str) and f.strip()], dtype=np.int64)
    if len(keep) == 0:
        raise InputError(f"{where} has no row with {without}")
    left_out = np.setdiff1d(np.arange(len(paths)), keep)
    if len(left_out):
        print(
            f"memomentum: note: left out {len(left_out)} row{'s' if len(left_out) > 1 else ''} of {where} without "
            f"{without} ({row_numbers(left_out)})",
            file=sys.stderr,
        )
    given = None
    if labels is not None:
        labels = np.asarray(labels, dtype=object)
        missing = np.array([_is_missing_label(v) for v in labels], dtype=bool)
        given = encode_labels(run, labels, missing, where)[keep]
    inputs = file_inputs(run, [paths[i].strip() for i in keep], source=where)
    return Inputs(None, inputs.files, "row", keep, given, where)


def _is_missing_label(v) -> bool:
    """None, NaN (a float of Python's or numpy's) or blank text."""
    return (
        v is None or (isinstance(v, (float, np.floating)) and math.isnan(v)) or (isinstance(v, str) and not v.strip())
    )

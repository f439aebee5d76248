"""Label files (``.npy`` or ``.csv``, one integer per example) and transition-matrix files, read and
written for ``memomentum noise`` and the runs that take recorded noisy labels."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..base.atomic import atomic_file
from ..base.errors import InputError


def read_labels(path) -> np.ndarray:
    """Read labels from a ``.npy`` file or a ``.csv`` file with one integer per line.

    A ``.csv`` file may start with one header line (any line that is not an integer);
    blank lines are skipped. A ``.npy`` file must hold a one-dimensional integer array
    (whole-number floats are accepted).

    Parameters
    ----------
    path : str or os.PathLike
        The file to read.

    Returns
    -------
    numpy.ndarray
        int64 labels, shape (N,). They are not range-checked here: ``make_noisy_labels``
        and the training entry points check them against the number of classes.

    Raises
    ------
    InputError
        If the file is missing or unreadable, has another suffix, or holds anything but
        one integer per example.
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in (".npy", ".csv"):
        raise InputError(f"label file {p} must end in .npy or .csv, got {p.suffix or 'no suffix'!r}")
    if not p.is_file():
        raise InputError(f"label file {p} does not exist")
    if suffix == ".npy":
        return _read_npy_labels(p)
    return _read_csv_labels(p)


def _read_npy_labels(p: Path) -> np.ndarray:
    """:func:`read_labels` for a ``.npy`` file: one one-dimensional integer array."""
    try:
        arr = np.load(p, allow_pickle=False)
    except (OSError, ValueError, EOFError) as e:
        raise InputError(f"label file {p} is not a readable .npy array ({e})") from e
    if not isinstance(arr, np.ndarray):
        raise InputError(f"label file {p} holds an archive, not one label array")
    if arr.ndim != 1:
        raise InputError(f"label file {p} holds an array of shape {arr.shape}; labels must be one-dimensional")
    return as_int_labels(arr, f"label file {p}")


def _read_csv_labels(p: Path) -> np.ndarray:
    """:func:`read_labels` for a ``.csv`` file: one integer a line, after an optional
    header line (the first non-blank line, when it is not an integer)."""
    try:
        text = p.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"could not read label file {p} ({e})") from e
    values: list[int] = []
    first_content = True
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        try:
            values.append(int(line))
        except ValueError:
            if first_content:  # a header line
                first_content = False
                continue
            raise InputError(
                f"line {lineno} of label file {p} is {line[:40]!r}; expected one integer per line"
            ) from None
        first_content = False
    if not values:
        raise InputError(f"label file {p} holds no labels")
    return np.asarray(values, dtype=np.int64)


def write_labels(path, labels) -> None:
    """Write labels atomically to a ``.npy`` file or a ``.csv`` file (one integer per line).

    The labels go to a temporary file in the destination directory, which then replaces
    ``path`` in one step, so a reader never sees a half-written file. The ``.csv`` form
    has no header line.

    Parameters
    ----------
    path : str or os.PathLike
        Destination; its suffix (``.npy`` or ``.csv``) selects the format.
    labels : array_like of int, shape (N,)
        The labels (stored as int64).

    Raises
    ------
    InputError
        For another suffix, a missing destination directory, or labels that are not a
        one-dimensional integer array.
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in (".npy", ".csv"):
        raise InputError(f"label file {p} must end in .npy or .csv, got {p.suffix or 'no suffix'!r}")
    arr = np.asarray(labels)
    if arr.ndim != 1:
        raise InputError(f"labels to write must be one-dimensional, got shape {arr.shape}")
    arr = as_int_labels(arr, "labels to write")
    directory = p.parent if str(p.parent) else Path(".")
    if not directory.is_dir():
        raise InputError(f"cannot write {p}: directory {directory} does not exist")
    with atomic_file(p, "wb") as f:
        if suffix == ".npy":
            np.save(f, arr, allow_pickle=False)
        else:
            f.write("".join(f"{int(v)}\n" for v in arr).encode("ascii"))


def as_int_labels(arr: np.ndarray, what: str) -> np.ndarray:
    """``arr`` as int64 labels; booleans, fractions and values beyond int64 are refused (``what`` names
    the array in the message)."""
    if arr.dtype.kind in "iu":
        if arr.dtype.kind == "u" and arr.size and arr.max() > np.iinfo(np.int64).max:
            raise InputError(f"{what} holds values too large for labels")
        return arr.astype(np.int64)
    if arr.dtype.kind == "f":
        if arr.size and not (np.all(np.isfinite(arr)) and np.all(arr == np.round(arr))):
            bad = arr[~(np.isfinite(arr) & (arr == np.round(arr)))][0]
            raise InputError(f"{what} must hold integers; found {float(bad)!r}")
        return arr.astype(np.int64)
    if arr.dtype.kind == "b":
        raise InputError(f"{what} must hold integer class labels, not booleans")
    raise InputError(f"{what} must hold integers, got dtype {arr.dtype}")


def read_labels_matrix(path: str) -> np.ndarray:
    """A K x K transition matrix from .npy or .csv."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"transition matrix file not found: {path}")
    try:
        m = np.load(p, allow_pickle=False) if p.suffix == ".npy" else np.loadtxt(p, delimiter=",", ndmin=2)
    except Exception as e:  # noqa: BLE001 -- numpy raises many types for an unreadable file
        raise InputError(f"cannot read the transition matrix {path}: {e}") from None
    return np.asarray(m, dtype=np.float64)

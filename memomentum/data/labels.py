"""Labels as the readers of tables take them (:mod:`.tables`, :mod:`.image_tables`), and
new data's labels matched to a finished run's classes by the same rule.

* Labels of any kind (text such as ``"cat"``, integers such as ``3`` or ``1999``) become
  classes ``0..K-1`` in sorted order (numerically for numbers, alphabetically otherwise);
  the class names are the ``str`` of each class, in that order (``classes.json``).
* One key per label whatever its numeric type: 3, 3.0 and numpy's 3 are one class; spaces
  around a text label are stripped, with a note.
* A label column with fewer than two rows per class on average is refused: it holds
  identifiers or continuous values, not classes.
"""

from __future__ import annotations

import math

import numpy as np

from ..base.checks import first_few
from ..base.errors import InputError

__all__ = [
    "MIN_ROWS_PER_CLASS",
    "class_labels",
    "encode_given_labels",
    "encode_labels",
    "encode_test_labels",
    "named_classes",
    "row_numbers",
    "strip_text_labels",
]

_SHOWN = 5  # row numbers and classes quoted in a note before "..."
# Fewer training rows per class than this, on average, and the label column is refused.
MIN_ROWS_PER_CLASS = 2


def _label_order(values: np.ndarray) -> list:
    """The distinct labels, sorted: numerically when all are numbers, else as text."""
    distinct = list(dict.fromkeys(values.tolist()))
    if all(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) for v in distinct):
        ordered = sorted(distinct)
        if all(float(v).is_integer() for v in ordered):  # 3.0 from a float column with gaps shows as 3
            ordered = list(dict.fromkeys(int(v) for v in ordered))
        return ordered
    return sorted(distinct, key=str)


def strip_text_labels(values: np.ndarray, label_column: str, notes: list[str]) -> np.ndarray:
    """The labels with spaces around text labels removed (``"cat "`` is ``"cat"``), with a note."""
    padded = [i for i, v in enumerate(values.tolist()) if isinstance(v, str) and v != v.strip()]
    if not padded:
        return values
    values = values.copy()
    for i in padded:
        values[i] = values[i].strip()
    notes.append(
        f"stripped the spaces around {len(padded)} label{'s' if len(padded) > 1 else ''} of column "
        f"{label_column!r} ({row_numbers(np.asarray(padded))}), so that they name the same classes as "
        f"without them"
    )
    return values


def _shown(value):
    """A value as the user wrote it (7, not numpy's np.int64(7))."""
    return value.item() if isinstance(value, np.generic) else value


def _note_case_twins(classes: list, label_column: str, notes: list[str]) -> None:
    """A note for text labels that differ only in case ("cat" and "Cat"): two classes, as
    written, but more often one class spelled two ways."""
    by_fold: dict[str, list[str]] = {}
    for c in classes:
        if isinstance(c, str):
            by_fold.setdefault(c.casefold(), []).append(c)
    twins = [group for group in by_fold.values() if len(group) > 1]
    if twins:
        shown = "; ".join(" and ".join(map(repr, group)) for group in twins[:_SHOWN])
        notes.append(
            f"labels of column {label_column!r} that differ only in case are kept as different classes: "
            f"{shown}{'; ...' if len(twins) > _SHOWN else ''}"
        )


def encode_labels(values: np.ndarray, label_column: str, where: str, notes: list[str]) -> tuple[list, np.ndarray]:
    """Classes 0..K-1 for the training labels, and the labels in class order."""
    classes = [_shown(c) for c in _label_order(values)]
    _note_case_twins(classes, label_column, notes)
    if len(classes) < 2:
        raise InputError(
            f"{where} has only one class ({classes[0]!r}) in its label column {label_column!r}; "
            f"at least two classes are needed"
        )
    if len(classes) * MIN_ROWS_PER_CLASS > values.size:
        raise InputError(
            f"{where}'s label column {label_column!r} has {len(classes)} different values in "
            f"{values.size} training rows, fewer than {MIN_ROWS_PER_CLASS} rows per class: it looks like an "
            f"identifier or a measurement, not a class; name the column of class labels with --label-column"
        )
    index = {_key(c): k for k, c in enumerate(classes)}
    y = np.fromiter((index[_key(v)] for v in values.tolist()), dtype=np.int64, count=values.size)
    return classes, y


def encode_test_labels(values: np.ndarray, classes: list, rows: np.ndarray, where: str) -> np.ndarray:
    index = {_key(c): k for k, c in enumerate(classes)}
    y = np.fromiter((index.get(_key(v), -1) for v in values.tolist()), dtype=np.int64, count=values.size)
    if (y < 0).any():
        first = int(np.flatnonzero(y < 0)[0])
        raise InputError(
            f"{where} has the label {_shown(values[first])!r} in test row {int(rows[first])}, which no training "
            f"row has; a test label must be one of the training classes"
        )
    return y


def class_labels(class_names: tuple[str, ...] | None, num_classes: int) -> np.ndarray:
    """A run's labels in class order, from its class names (``classes.json``, the ``str`` of
    each class): numbers where every name is a number as this reader writes it (``3``,
    ``2.5``), else the names; the class numbers 0..K-1 where the classes have no names."""
    if class_names is None:
        return np.arange(num_classes)
    if all(_canonical_int(n) for n in class_names):
        return np.array([int(n) for n in class_names])
    if all(_number(n) is not None and str(float(n)) == n for n in class_names):
        return np.array([float(n) for n in class_names])
    return np.array(class_names, dtype=object)


def named_classes(class_names: tuple[str, ...] | None, num_classes: int) -> str:
    """A run's classes in words: ``0..K-1``, or the first names."""
    return f"0..{num_classes - 1}" if class_names is None else first_few([str(n) for n in class_names], 10)


def encode_given_labels(
    values: np.ndarray, missing: np.ndarray, class_names: tuple[str, ...] | None, num_classes: int, where: str
) -> np.ndarray:
    """The class numbers of new data's given labels (-1 where ``missing``), matched to a
    run's classes by name and by value, as :func:`_key` matches them (3, 3.0 and "3" are one
    class; spaces around a text label do not count); a label of no class is refused."""
    keys = _class_keys(class_names, num_classes)
    out = np.full(len(values), -1, dtype=np.int64)
    for i, v in enumerate(values.tolist()):
        if missing[i]:
            continue
        k = _class_of(v, keys)
        if k is None:
            raise InputError(
                f"{where} has the label {_shown(v)!r} in row {i}, which is not one of the run's classes "
                f"({named_classes(class_names, num_classes)})"
            )
        out[i] = k
    return out


def _class_keys(class_names: tuple[str, ...] | None, num_classes: int) -> dict:
    """Class number by :func:`_key`: by name (``("s", name)``) and, for names that are
    numbers and for numbered classes, by value (``("n", 3.0)``)."""
    if class_names is None:
        return {("n", float(k)): k for k in range(num_classes)}
    keys: dict[tuple[str, str | float], int] = {("s", n): k for k, n in reversed(list(enumerate(class_names)))}
    for k, n in reversed(list(enumerate(class_names))):
        number = _number(n)
        if number is not None:
            keys[("n", number)] = k
    return keys


def _class_of(value, keys: dict) -> int | None:
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_)):
        return keys.get(("n", float(value)))
    text = str(value).strip()
    k = keys.get(("s", text))
    if k is None and _number(text) is not None:
        k = keys.get(("n", _number(text)))
    return k


def _canonical_int(text: str) -> bool:
    try:
        return str(int(text)) == text
    except ValueError:
        return False


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _key(value):
    """One key per label whatever its numeric type (3, 3.0 and numpy's 3 are one class)."""
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        return ("n", float(value))
    return ("s", str(value))


def row_numbers(rows) -> str:
    """``row 3`` or ``rows 3, 8, ...`` (the first few), as notes name the rows they count."""
    rows = np.asarray(rows)
    shown = ", ".join(str(int(r)) for r in rows[:_SHOWN])
    return ("row " if rows.size == 1 else "rows ") + shown + (", ..." if rows.size > _SHOWN else "")

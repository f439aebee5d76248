"""A practitioner's table: a ``.csv`` or ``.parquet`` file with one row per example.

One column holds the (possibly noisy) label (``--label-column``, default ``label``); the
numeric columns are the features. What the reader does with the rest, so that nothing is
lost without a word (each is returned as a note, and :func:`load_table` prints them):

* columns that are not numeric (text, dates, categories), and numeric columns with no
  value at all, are dropped, by name, with the reason;
* rows without a label, and rows with a missing or infinite value in a kept feature
  column, are dropped, with the count, the first row numbers and the columns responsible;
* labels of any kind (text such as ``"cat"``, integers such as ``3`` or ``1999``) become
  classes ``0..K-1`` in sorted order (numerically for numbers, alphabetically otherwise);
  :attr:`Dataset.class_names` keeps the user's labels in that order, so that outputs can
  show them (``classes.json`` is that list); spaces around a text label are stripped
  (``"cat "`` is ``"cat"``), with a note;
* a label column with fewer than two rows per class on average is refused: it holds
  identifiers or continuous values, not classes (these label rules are :mod:`.labels`');
* column names must be unique (pandas would rename a second ``label`` to ``label.1`` and
  it would become a feature that gives the label away);
* a CSV's separator (``,``, ``;``, tab or ``|``) is detected from its first lines, spaces
  after a separator are ignored, and ``.csv.gz`` (``.bz2``, ``.xz``, ``.zip``, ``.zst``)
  files are read as pandas reads them;
* an optional column ``split`` with the values ``train`` and ``test`` (any case) marks a
  held-out test set, whose labels are taken as correct and scored against; without it
  every row trains.

Row numbers count the table's data rows from 0 (the header is not a row); ``examples.csv``'s
``index`` counts the training rows kept, in file order, and its ``row`` column is the row in
the file (:attr:`Table.train_rows`). Reading needs
pandas, and parquet also pyarrow: ``pip install "memomentum[tables]"``.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import lzma
import re
import sys
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import numpy as np

from ..base.checks import first_few
from ..base.errors import InputError
from .dataset import Dataset
from .labels import encode_labels, encode_test_labels, row_numbers, strip_text_labels
from .registry import is_table_file as is_table_name  # the registry's rule, part of this module's API (__all__)

__all__ = ["Table", "is_table_name", "load_table", "read_table", "table_from_frame"]

SPLIT_COLUMN = "split"
SPLIT_VALUES = ("train", "test")
_SHOWN = 5  # row numbers and column names quoted in a note before "..."
_SEPARATORS = ",;\t|"  # what a CSV's separator may be (detected from its first lines)
_SNIFF_BYTES = 64 * 1024


@dataclass(frozen=True)
class Table:
    """What :func:`read_table` found: the data set and what it left out.

    Attributes:
        dataset: the :class:`Dataset` (float32 features, int64 classes, ``class_names``).
        feature_columns: the columns used as features, in order.
        notes: one sentence per thing the reader dropped or decided (empty when the table
            was used whole).
        train_rows, test_rows: the table row of every training (test) example, in order;
            examples.csv's ``index`` counts the training rows, so ``train_rows[index]`` is
            the row in the file.
    """

    dataset: Dataset
    feature_columns: tuple[str, ...]
    notes: tuple[str, ...] = ()
    train_rows: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    test_rows: np.ndarray | None = None


def load_table(
    path: str | Path, *, label_column: str = "label", data_dir: str | None = None, print_notes: bool = True
) -> Dataset:
    """Read a table as a :class:`Dataset`, printing the reader's notes to stderr.

    Args:
        path: a ``.csv`` or ``.parquet`` file; relative paths are resolved against
            ``data_dir`` when given.
        label_column: the column holding each row's label.
        data_dir: the directory a relative ``path`` lies in.
        print_notes: print each note as ``memomentum: note: ...`` on stderr.

    Raises:
        InputError: missing file, pandas or pyarrow not installed, no such label column,
            no numeric feature column, fewer than two classes, a malformed ``split`` column.
    """
    table = read_table(path, label_column=label_column, data_dir=data_dir)
    if print_notes:
        for note in table.notes:
            print(f"memomentum: note: {note}", file=sys.stderr)
    return table.dataset


def read_table(path: str | Path, *, label_column: str = "label", data_dir: str | None = None) -> Table:
    """Read a ``.csv`` or ``.parquet`` file into a :class:`Table` (see the module's rules).

    Args:
        path: the file; relative paths are resolved against ``data_dir`` when given.
        label_column: the column holding each row's label.
        data_dir: the directory a relative ``path`` lies in.

    Returns:
        The :class:`Table`: the data set, the feature columns used, and the notes.

    Raises:
        InputError: as :func:`load_table`.
    """
    p = Path(str(path).strip()).expanduser()
    if data_dir is not None and not p.is_absolute():
        p = Path(data_dir).expanduser() / p
    if not p.is_file():
        raise InputError(f"no table found at {p}")
    frame = read_frame(p, label_column=label_column)
    return table_from_frame(frame, label_column=label_column, name=p.name, where=str(p))


def _csv_header(p: Path) -> tuple[str, str, list[str]]:
    """The separator and decimal sign of a CSV file (detected from its first lines, as
    pandas' own sniffer would, but for the fast C parser) and its header's column names as
    written. A semicolon-separated file with decimal commas (``3,5``) is the common European
    spelling."""
    sample = _csv_sample(p)
    if sample is None:  # read through pandas alone, comma-separated
        return ",", ".", []
    first = sample.splitlines()[0] if sample.strip() else ""
    try:
        sep = csv.Sniffer().sniff("\n".join(sample.splitlines()[:20]), delimiters=_SEPARATORS).delimiter
    except csv.Error:
        sep = ","
    if sep != "," and first.count(",") >= first.count(sep):  # a comma table with the other sign in its values
        sep = ","
    header = next(csv.reader([first], delimiter=sep, skipinitialspace=True), []) if first else []
    decimal = "," if sep == ";" and re.search(r"\d,\d", sample) else "."
    return sep, decimal, [h.strip() for h in header]


def _csv_sample(p: Path) -> str | None:
    """A CSV file's first characters, decompressed as pandas decompresses it; None for a
    ``.zst`` file (its decompressor is an optional package of pandas) and for a ``.zip``
    archive that does not hold exactly one file (pandas then says why it cannot read it)."""
    suffix = p.suffix.lower()
    openers: dict[str, Callable[..., IO[str]]] = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}
    opener = openers.get(suffix)
    try:
        if suffix == ".zst":
            return None
        if suffix == ".zip":
            with zipfile.ZipFile(p) as archive:
                names = archive.namelist()
                if len(names) != 1:  # pandas' rule: one file per archive
                    return None
                with archive.open(names[0]) as member:
                    return member.read(_SNIFF_BYTES).decode("utf-8", errors="replace")
        with (
            opener(p, "rt", encoding="utf-8", errors="replace", newline="")
            if opener
            else open(p, encoding="utf-8", errors="replace", newline="")
        ) as f:
            return f.read(_SNIFF_BYTES)
    except (OSError, EOFError, lzma.LZMAError, zipfile.BadZipFile, zlib.error) as e:
        raise InputError(f"cannot read the table {p}: {e}") from None


def import_tables_extra(module: str, what: str):
    """``module`` of the ``tables`` extra (pandas, pyarrow and its parts), or an
    :class:`InputError` saying that reading ``what`` needs it and how to install it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        name = module.split(".")[0]
        raise InputError(
            f'reading {what} needs {name}, which is not installed; pip install "memomentum[tables]"'
        ) from None


def import_pandas(what: str):
    return import_tables_extra("pandas", what)


def read_frame(p: Path, *, nrows: int | None = None, as_text: bool = False, label_column: str | None = None):
    """The table at ``p`` as a DataFrame (a CSV's separator and decimal sign detected);
    ``nrows``: only a CSV's first rows; ``as_text``: a CSV's every value as the text in the
    file (no number parsing, empty fields as ""), so that it can be written back unchanged;
    ``label_column``: the label column, when known (a header naming it twice is refused for
    what its copy would do)."""
    pd = import_pandas(str(p))
    try:
        if p.suffix.lower() == ".parquet":
            try:
                import pyarrow  # noqa: F401 -- pandas' parquet engine
            except ImportError:
                raise InputError(
                    f'reading {p} needs pyarrow, which is not installed; pip install "memomentum[tables]"'
                ) from None
            return pd.read_parquet(p)
        sep, decimal, header = _csv_header(p)
        refuse_duplicate_columns(header, str(p), label_column=label_column)
        text = dict(dtype=str, keep_default_na=False) if as_text else {}
        return pd.read_csv(p, sep=sep, decimal=decimal, skipinitialspace=True, nrows=nrows, **text)
    except InputError:
        raise
    except pd.errors.EmptyDataError:
        raise InputError(f"{p} is empty: a table needs a header row and data rows") from None
    except UnicodeDecodeError as e:  # pandas' own message gives a position inside its read buffer
        raise InputError(
            f"cannot read the table {p}: it is not UTF-8 text (it holds the byte "
            f"0x{e.object[e.start]:02x}, which UTF-8 does not allow there); save it as UTF-8 (a "
            f'spreadsheet\'s "CSV UTF-8")'
        ) from None
    except (OSError, ValueError, pd.errors.ParserError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise InputError(f"cannot read the table {p}: {first}") from None
    except Exception as e:  # noqa: BLE001 -- pyarrow's own errors (corrupt parquet) have no common base
        raise InputError(f"cannot read the table {p}: {type(e).__name__}: {e}") from None


def refuse_duplicate_columns(
    columns: list[str], where: str, why: str | None = None, *, label_column: str | None = None
) -> None:
    """Refuse a table with two columns of one name, saying ``why`` that matters (by default:
    for the label column, that its copy would give the label away; for another column, that
    it would count twice)."""
    twice = sorted({c for c in columns if columns.count(c) > 1})
    if not twice:
        return
    if why is None and label_column is not None and label_column.strip() in twice:
        twice = [label_column.strip()]
        why = "a copy of the label column would be read as a feature and give the label away"
    elif why is None:
        why = f"which of them is meant would be a guess: pandas would read the second as {twice[0] + '.1'!r}"
    raise InputError(
        f"{where} has more than one column named {_quote(twice)}; every column name must be unique ({why})"
    )


def table_from_frame(frame, *, label_column: str = "label", name: str = "table", where: str = "the table") -> Table:
    """Turn a pandas DataFrame into a :class:`Table` (see the module's rules).

    Args:
        frame: the DataFrame, one row per example.
        label_column: the column holding each row's label.
        name: what reports call the data set.
        where: how messages name the table's origin.
    """
    pd = import_pandas(where)
    label_column = label_column.strip()  # as the header's names: " species" is "species"
    frame = cleaned_frame(frame, where, label_column=label_column)
    columns = list(frame.columns)
    notes: list[str] = []
    is_test = _split_mask(frame, where) if SPLIT_COLUMN in columns and label_column != SPLIT_COLUMN else None
    if is_test is not None:
        notes.append(
            f"column {SPLIT_COLUMN!r} marks {int(is_test.sum())} test rows and {int((~is_test).sum())} training rows"
        )
    candidates = [c for c in columns if c not in (label_column, SPLIT_COLUMN if is_test is not None else None)]
    features, dropped = _feature_columns(frame, candidates, pd)
    for reason, names in dropped.items():
        notes.append(f"dropped {len(names)} column{'s' if len(names) > 1 else ''} {_quote(names)}: {reason}")
    if not features:
        others = (
            (
                f" (column{'s' if len(candidates) > 1 else ''} {_quote(candidates)} "
                f"{'are' if len(candidates) > 1 else 'is'} not numeric or empty)"
            )
            if candidates
            else ""
        )
        raise InputError(f"{where} has no numeric feature column besides the label {label_column!r}{others}")
    x = frame[features].to_numpy(dtype=np.float64, na_value=np.nan)
    labels = frame[label_column]
    keep = _rows_to_keep(x, labels.isna().to_numpy(), features, notes)
    rows = np.flatnonzero(keep)
    train_rows = rows if is_test is None else rows[~is_test[rows]]
    test_rows = None if is_test is None else rows[is_test[rows]]
    if train_rows.size == 0 and test_rows is not None and test_rows.size:
        raise InputError(
            f"every usable row of {where} is marked test in its {SPLIT_COLUMN!r} column; mark the rows "
            f"to train on as train"
        )
    if train_rows.size == 0:
        raise InputError(f"{where} has no training row with a label and complete features")
    label_values = strip_text_labels(labels.to_numpy(), label_column, notes)
    class_values, y_train = encode_labels(label_values[train_rows], label_column, where, notes)
    y_test = None
    if test_rows is not None and test_rows.size:
        y_test = encode_test_labels(label_values[test_rows], class_values, test_rows, where)
    elif test_rows is not None:
        notes.append(f"column {SPLIT_COLUMN!r} leaves no usable test row, so there is no test set")
        test_rows = None
    x32 = _float32(x, rows, where)
    ds = _dataset(
        name,
        x32[train_rows],
        y_train,
        None if test_rows is None else x32[test_rows],
        y_test,
        class_values,
        train_rows,
        features,
    )
    return Table(
        dataset=ds, feature_columns=tuple(features), notes=tuple(notes), train_rows=train_rows, test_rows=test_rows
    )


def cleaned_frame(frame, where: str, *, label_column: str, label_required: bool = True):
    """``frame`` with its columns named as the reader names them (spaces around a name
    stripped, every name once) and at least one row; ``label_required``: a frame without
    ``label_column`` is refused (to train on; to predict, the labels are optional)."""
    columns = [str(c).strip() for c in frame.columns]
    refuse_duplicate_columns(columns, where, label_column=label_column)
    if label_required and label_column not in columns:
        shown = ", ".join(columns[:20]) + (", ..." if len(columns) > 20 else "")
        raise InputError(
            f"{where} has no column {label_column!r} (columns: {shown or 'none'}); "
            f"name the label column with --label-column"
        )
    frame = frame.set_axis(columns, axis=1)
    if len(frame) == 0:
        raise InputError(f"{where} has a header but no data rows")
    return frame


def read_features(frame, features: tuple[str, ...], where: str) -> np.ndarray:
    """The columns ``features`` of a cleaned frame (:func:`cleaned_frame`), in that order,
    read as the run's feature columns were read (float64, then float32); each must be
    numeric and every value finite (to predict, no row is dropped)."""
    pd = import_pandas(where)
    for c in features:
        dtype = frame[c].dtype
        if not is_numeric(dtype, pd):
            raise InputError(f"{where}'s column {c!r} is not numeric ({dtype}); the run's feature columns hold numbers")
    return float32_features(frame[list(features)].to_numpy(dtype=np.float64, na_value=np.nan), features, where)


def float32_features(x: np.ndarray, columns, where: str) -> np.ndarray:
    """float64 features (N, D) -> float32, as the reader converts them; every value must be
    finite (a missing or infinite value is named by its column and row)."""
    bad = ~np.isfinite(x)
    if bad.any():
        r, j = (int(v) for v in np.argwhere(bad)[0])
        raise InputError(
            f"{where} has a missing or infinite value in column {columns[j]!r} at row {r}; every row "
            f"needs a finite number in each of the run's feature columns"
        )
    return _float32(x, slice(None), where)


def is_numeric(dtype, pd) -> bool:
    """Whether a column of ``dtype`` holds feature values: booleans, or real numbers."""
    return pd.api.types.is_bool_dtype(dtype) or (
        pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_complex_dtype(dtype)
    )


def _float32(x: np.ndarray, rows: np.ndarray | slice, where: str) -> np.ndarray:
    """The features as float32; values beyond float32 in the rows used are refused in one
    sentence (numpy's overflow warning, with its source line, is not shown)."""
    with np.errstate(over="ignore"):
        x32 = x.astype(np.float32)
    if not np.all(np.isfinite(x32[rows])):
        raise InputError(f"{where} holds feature values too large for 32-bit floats (beyond 3.4e38); rescale them")
    return x32


def _split_mask(frame, where: str) -> np.ndarray:
    """True for the rows the ``split`` column marks as test rows."""
    values = frame[SPLIT_COLUMN].astype("string").str.strip().str.lower()
    bad = values.isna() | ~values.isin(SPLIT_VALUES)
    if bad.any():
        first = int(np.flatnonzero(bad.to_numpy())[0])
        raise InputError(
            f"{where} has the value {frame[SPLIT_COLUMN].iloc[first]!r} in its {SPLIT_COLUMN!r} column "
            f"at row {first}; that column must hold train or test in every row (or rename it)"
        )
    return (values == "test").to_numpy(dtype=bool)


def _feature_columns(frame, candidates: list[str], pd) -> tuple[list[str], dict[str, list[str]]]:
    """The numeric columns with at least one value, and the dropped ones by reason."""
    kept: list[str] = []
    dropped: dict[str, list[str]] = {}
    for c in candidates:
        col = frame[c]
        if is_numeric(col.dtype, pd):
            if col.isna().all():
                dropped.setdefault("no value in any row", []).append(c)
            else:
                kept.append(c)
        else:
            why = (
                "dates or times are not numeric features"
                if pd.api.types.is_datetime64_any_dtype(col.dtype)
                else f"not numeric ({col.dtype}); encode them as numbers to use them"
            )
            dropped.setdefault(why, []).append(c)
    return kept, dropped


def _rows_to_keep(x: np.ndarray, label_missing: np.ndarray, features: list[str], notes: list[str]) -> np.ndarray:
    """Rows with a label and a finite value in every feature column; notes for the rest."""
    keep = ~label_missing
    if label_missing.any():
        notes.append(
            f"dropped {int(label_missing.sum())} row{'s' if label_missing.sum() > 1 else ''} without a label "
            f"({row_numbers(np.flatnonzero(label_missing))})"
        )
    bad_value = ~np.isfinite(x)
    incomplete = bad_value.any(axis=1) & keep
    if incomplete.any():
        per_column = bad_value[incomplete].sum(axis=0)
        worst = [
            f"{features[j]} ({int(per_column[j])})" for j in np.argsort(-per_column, kind="stable") if per_column[j]
        ][:_SHOWN]
        notes.append(
            f"dropped {int(incomplete.sum())} row{'s' if incomplete.sum() > 1 else ''} with a missing or "
            f"infinite feature value ({row_numbers(np.flatnonzero(incomplete))}; columns: {', '.join(worst)})"
        )
        keep &= ~incomplete
    return keep


def _dataset(
    name: str, x: np.ndarray, y: np.ndarray, x_test, y_test, classes: list, rows: np.ndarray, features: list[str]
) -> Dataset:
    xd = x.astype(np.float64)
    return Dataset(
        name=name,
        x_train=x,
        y_train=y,
        x_test=x_test,
        y_test=y_test,
        num_classes=len(classes),
        mean=tuple(float(v) for v in xd.mean(axis=0)),
        std=tuple(float(max(v, 1e-6)) for v in xd.std(axis=0)),
        augment="none",
        default_model="mlp",
        labels_are_clean=False,
        class_names=tuple(str(c) for c in classes),
        train_rows=rows,
        feature_names=tuple(features),
    )


def _quote(names: list[str]) -> str:
    return first_few([repr(n) for n in names], _SHOWN)

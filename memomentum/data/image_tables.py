"""Images kept in a table, read like an image folder: a ``.csv`` file naming image files, a
``.parquet`` file, a folder of parquet shards (``train-00000-of-00002.parquet``, ..., optionally ``test-*.parquet``), or a
folder that Hugging Face's ``Dataset.save_to_disk`` wrote (``state.json``,
``dataset_info.json`` and ``data-*.arrow`` shards in Arrow's streaming format; a
``DatasetDict`` folder with ``dataset_dict.json`` and ``train/``, ``test/`` sub-folders).

One column holds the label (``--label-column``, labels as :mod:`.tables` treats them: classes
sorted), one the image, found by its values (no option names it): image bytes (PNG or
JPEG), Hugging Face's Image feature (``{"bytes": ..., "path": ...}``), or paths of image
files relative to the table's folder (a text column whose values end in an image file's
extension, :func:`names_image_files`; a CSV can hold nothing else). No such column: a ``.csv`` or ``.parquet`` file is a
feature table (:mod:`.tables`; a CSV is told apart by its first rows, so that it is read once),
a folder is refused; two of them: refused, naming both. A ``split`` column (``train`` or ``test`` in every
row, as in feature tables) marks the test rows; a table with test shards as well is refused.
:func:`read_image_rows` reads every row of such a table for ``memomentum predict``.

The store (:mod:`.store`) packs image files, so image bytes are written out once, one file
per row named by its row number (``train/row-000012.png``), into
``<cache>/<table>-<hash>-images`` beside the store; the hash is of the table's path, size and
modification time, so a changed table gets new files. Reading needs pyarrow (and pandas for
a CSV: ``pip install "memomentum[tables]"``); the ``datasets`` library is not used.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..base.atomic import atomic_file
from ..base.errors import InputError
from .dataset import ImageFiles, ImageList
from .folders import IMAGE_EXTENSIONS
from .labels import row_numbers
from .registry import is_table_file
from .tables import SPLIT_COLUMN, SPLIT_VALUES, import_tables_extra

__all__ = ["ImageRows", "names_image_files", "read_image_rows", "read_image_table", "refuse_missing_images"]

_MAGIC = {b"\x89PNG\r\n\x1a\n": ".png", b"\xff\xd8\xff": ".jpg"}
_PEEK_ROWS = 50  # a CSV's rows read to tell a table of image paths from a table of features


def _pyarrow(what: str):
    """pyarrow with the parts read here (IPC files, parquet)."""
    for part in ("pyarrow.ipc", "pyarrow.parquet"):
        import_tables_extra(part, what)
    return import_tables_extra("pyarrow", what)


def _read_arrow(p: Path, pa):
    """An Arrow IPC file: ``save_to_disk`` writes the streaming format; the file format also reads."""
    try:
        with pa.memory_map(str(p)) as source:
            return pa.ipc.open_stream(source).read_all()
    except pa.ArrowInvalid:
        with pa.memory_map(str(p)) as source:
            return pa.ipc.open_file(source).read_all()


def _parts(path: Path, *, every_split: bool = False) -> dict[str, list[Path]]:
    """The files of each split that ``path`` stands for: ``train`` and optionally ``test``
    to train on; with ``every_split`` (to predict), every split there is, ``train`` (when
    there is one) first, then ``test``, then the others."""
    if path.is_file():
        return {"train": [path]}
    if (path / "dataset_dict.json").is_file():
        splits = json.loads((path / "dataset_dict.json").read_text()).get("splits", [])
        wanted = sorted(splits, key=lambda s: (s != "train", s != "test")) if every_split else ("train", "test")
        found = {s: _parts(path / s)["train"] for s in wanted if s in splits and (path / s).is_dir()}
        if not found or ("train" not in found and not every_split):
            raise InputError(f"{path} is a saved DatasetDict without a train split (splits: {', '.join(splits)})")
        return found
    if (path / "state.json").is_file():
        state = json.loads((path / "state.json").read_text())
        return {"train": [path / f["filename"] for f in state.get("_data_files", [])]}
    folder = path if any(path.glob("*.parquet")) else path / "data"
    shards = sorted(folder.glob("*.parquet"))
    test = [p for p in shards if p.name.lower().startswith("test")]
    train = [p for p in shards if p not in test]
    if not train and not every_split:
        raise InputError(f"{folder} holds only test shards ({test[0].name}, ...); add train-*.parquet shards")
    return {split: files for split, files in (("train", train), ("test", test)) if files}


def _is_csv(path: Path) -> bool:
    return path.is_file() and is_table_file(str(path)) and not path.name.lower().endswith(".parquet")


def _csv_table(p: Path, pa, *, nrows: int | None = None):
    """A CSV file (any separator, compressed or not: :func:`.tables.read_frame`) as a
    pyarrow table, column names stripped as the feature-table reader strips them; a column
    of mixed values (numbers and text) becomes text."""
    from .tables import read_frame

    frame = read_frame(p, nrows=nrows)
    names = [str(c).strip() for c in frame.columns]
    _refuse_repeated_names(names, str(p))
    columns = []
    for c in frame.columns:
        values = frame[c]
        try:
            columns.append(pa.array(values, from_pandas=True))
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            text = [None if v is None or (isinstance(v, float) and math.isnan(v)) else str(v) for v in values.tolist()]
            columns.append(pa.array(text))
    return pa.Table.from_arrays(columns, names=names)


def _csv_names_images(p: Path, label_column: str) -> bool:
    """Whether a CSV file has a column of image paths (:func:`names_image_files`), from its
    first rows and with pandas alone, so that a table of features is read once and needs no
    pyarrow."""
    from .tables import read_frame

    head = read_frame(p, nrows=_PEEK_ROWS, label_column=label_column)
    return any(str(c).strip() != label_column and names_image_files(head[c]) for c in head.columns)


def names_image_files(values) -> bool:
    """Whether a column's values name image files: its first non-empty texts (up to
    :data:`_PEEK_ROWS`) all end in an image file's extension. Decided by the names alone,
    not by whether the files exist, so that a table whose first image is missing (or whose
    paths are relative to another folder) is still a table of images, and the missing
    files are named (:func:`_image_paths`) rather than the table taken for features."""
    texts = []
    for v in values:
        if isinstance(v, str) and v.strip():
            texts.append(v.strip().lower())
            if len(texts) == _PEEK_ROWS:
                break
    return bool(texts) and all(t.endswith(IMAGE_EXTENSIONS) for t in texts)


def _features_csv(path, label_column: str) -> bool:
    """Whether ``path`` is a CSV file without a column of image paths: a table of features."""
    p = Path(os.path.abspath(Path(path).expanduser()))
    return _is_csv(p) and not _csv_names_images(p, label_column)


def _read_part(files: list[Path], pa, where: str):
    tables = []
    for p in files:
        shown = str(p) if str(p) == where else f"{p} of {where}"
        try:
            if _is_csv(p):
                tables.append(_csv_table(p, pa))
            elif p.suffix.lower() == ".parquet":
                _refuse_repeated_names(pa.parquet.read_schema(p).names, shown)  # read_table itself fails on them
                tables.append(pa.parquet.read_table(p))
            else:
                tables.append(_read_arrow(p, pa))
                _refuse_repeated_names(tables[-1].column_names, shown)
        except (OSError, pa.ArrowException) as e:
            raise InputError(f"cannot read {shown}: {_first_line(e)}") from None
    try:
        return pa.concat_tables(tables, promote_options="default") if len(tables) > 1 else tables[0]
    except pa.ArrowException as e:
        raise InputError(f"the shards of {where} do not share their columns: {_first_line(e)}") from None


def _refuse_repeated_names(names: list[str], where: str) -> None:
    from .tables import refuse_duplicate_columns

    refuse_duplicate_columns(names, where, why="which one holds the labels or the images would be a guess")


def _first_line(e: BaseException) -> str:
    """pyarrow's messages go on with the whole schema, one field a line: the first line says it."""
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def _first(column) -> object:
    return next((v for v in column.to_pylist() if v is not None), None)


def _image_kind(column, root: Path, pa) -> str | None:
    """``"bytes"``, ``"struct"`` or ``"path"`` when the column holds images, else None."""
    t = column.type
    if pa.types.is_struct(t) and t.get_field_index("bytes") >= 0 and t.get_field_index("path") >= 0:
        return "struct"
    first = _first(column)
    if pa.types.is_binary(t) or pa.types.is_large_binary(t):
        return "bytes" if isinstance(first, bytes) and _extension(first) else None  # a binary column holds bytes
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "path" if names_image_files(_values(column)) else None
    return None


def _extension(data: bytes | bytearray) -> str | None:
    return next((ext for magic, ext in _MAGIC.items() if data[: len(magic)] == magic), None)


def _image_column(table, label_column: str, root: Path, where: str, pa) -> tuple[str, str] | None:
    """The image column (besides the label column) and its kind, or None; two are refused."""
    found = [
        (c, k)
        for c in table.column_names
        if c != label_column
        for k in [_image_kind(table.column(c), root, pa)]
        if k is not None
    ]
    if len(found) > 1:
        raise InputError(
            f"{where} has {len(found)} image columns ({', '.join(repr(c) for c, _ in found)}); keep one of them"
        )
    return found[0] if found else None


def _cache_folder(path: Path, cache_root: Path, files: list[Path]) -> Path:
    h = hashlib.sha256(str(path).encode("utf-8", "surrogateescape"))
    for p in files:
        st = p.stat()
        h.update(f"\0{p.name}\0{st.st_size}\0{st.st_mtime_ns}".encode("utf-8", "surrogateescape"))
    return cache_root / f"{path.stem or path.name}-{h.hexdigest()[:12]}-images"


def _write_once(target: Path, data: bytes) -> None:
    if target.is_file():  # written by an earlier read: the store then sees the same file
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(target, "wb") as f:
        f.write(data)


def _check_bytes(data, row: int, column: str, where: str) -> str:
    from PIL import Image

    ext = _extension(data) if isinstance(data, (bytes, bytearray)) else None
    try:
        if ext is None:
            raise ValueError
        Image.open(io.BytesIO(data)).verify()
    except Exception:  # noqa: BLE001 -- Pillow raises many types for bytes that are no image
        raise InputError(
            f"row {row} of {where} holds no readable PNG or JPEG image in column {column!r}; replace or remove that row"
        ) from None
    return ext


def _values(column):
    """A column's values as Python objects, one chunk (a row group) at a time: image bytes
    are not copied into Python all at once."""
    for chunk in column.chunks:
        yield from chunk.to_pylist()


def _image_paths(table, column: str, kind: str, root: Path, out: Path, where: str) -> list[str | None]:
    """One image file per row (None where the row has no image): the path given, or the
    row's bytes written once to ``out/row-NNNNNN.ext``."""
    if kind == "path":
        refuse_missing_images(table.column(column).to_pylist(), root, column, where)
    paths: list[str | None] = []
    for row, value in enumerate(_values(table.column(column))):
        if kind == "struct" and value is not None:
            value = value["bytes"] if value.get("bytes") is not None else value.get("path")
        if value is None or (isinstance(value, str) and not value.strip()):
            paths.append(None)
        elif isinstance(value, str):
            p = root / Path(value.strip()).expanduser()
            if not p.is_file():
                raise InputError(
                    f"row {row} of {where} names the image {value!r} in column {column!r}, but {p} is no file"
                )
            paths.append(str(p.resolve()))
        else:
            target = out / f"row-{row:06d}{_check_bytes(value, row, column, where)}"
            _write_once(target, value)
            paths.append(str(target))
    return paths


def refuse_missing_images(values: list, root: Path, column: str, where: str) -> None:
    """Name the image files of a column of paths (relative to ``root`` or absolute) that do
    not exist, with their rows, and say where relative paths are read from (pointing at the
    working directory when the paths were written relative to it)."""
    named = [(row, v.strip()) for row, v in enumerate(values) if isinstance(v, str) and v.strip()]
    missing = [(row, v) for row, v in named if not (root / Path(v).expanduser()).is_file()]
    if not missing:
        return
    shown = ", ".join(str(root / Path(v).expanduser()) for _, v in missing[:3]) + (", ..." if len(missing) > 3 else "")
    in_cwd = sum(Path(v).expanduser().is_file() for _, v in missing)
    hint = (
        f"{in_cwd} of them exist relative to the working directory, but paths in a table are read relative "
        f"to its folder {root}: write them relative to that folder, or absolute"
        if in_cwd
        else f"paths in a table are read relative to its folder {root}, or absolute"
    )
    raise InputError(
        f"{len(missing)} of the {len(named)} images named in column {column!r} of {where} cannot be "
        f"found ({row_numbers([r for r, _ in missing])}: {shown}); {hint}"
    )


def _usable(paths: list, labels: np.ndarray, part: str, where: str, notes: list[str]) -> np.ndarray:
    """The rows with an image and a label; a note counts the others."""
    keep = np.array([p is not None and v is not None for p, v in zip(paths, labels.tolist())], dtype=bool)
    if not keep.all():
        notes.append(
            f"dropped {int((~keep).sum())} {part} row{'s' if (~keep).sum() > 1 else ''} of {where} without "
            f"an image or a label ({row_numbers(np.flatnonzero(~keep))})"
        )
    if not keep.any():
        raise InputError(f"{where} has no {part} row with both an image and a label")
    return np.flatnonzero(keep)


def _open(path: str | os.PathLike, *, every_split: bool = False) -> tuple[Path, Any, Path, dict[str, Any]]:
    """The table's absolute path, pyarrow, the folder relative paths start from, and its
    tables by split (:func:`_parts`)."""
    path = Path(os.path.abspath(Path(path).expanduser()))
    pa = _pyarrow(str(path))
    files = _parts(path, every_split=every_split)
    return (
        path,
        pa,
        (path.parent if path.is_file() else path),
        {split: _read_part(part, pa, str(path)) for split, part in files.items()},
    )


def _written(
    path: Path, parts: dict, column: str, kind: str, root: Path, cache_dir
) -> tuple[dict[str, list[str | None]], Path]:
    """Each split's image file per row (bytes written once into the cache) and the cache
    folder, named by every file of the table (also splits not read), so that training and
    predicting find the same files."""
    from ..store.layout import default_cache_dir

    cache = _cache_folder(
        path,
        Path(cache_dir).expanduser() if cache_dir else default_cache_dir(root),
        [f for part in _parts(path, every_split=True).values() for f in part],
    )
    paths = {}
    for split, table in parts.items():
        if column not in table.column_names:
            raise InputError(f"the {split} split of {path} lacks the image column {column!r}")
        paths[split] = _image_paths(table, column, kind, root, cache / split, f"{path} ({split})")
    return paths, cache


def _source_note(path: Path, column: str, kind: str, cache: Path) -> str:
    return f"images from column {column!r} of {path}" + (f", written once to {cache}" if kind != "path" else "")


def _marked_test(table, label_column: str, where: str) -> np.ndarray | None:
    """True for the rows a ``split`` column marks as test rows (as in feature tables,
    :mod:`.tables`); None without such a column (or when it is the label column)."""
    if SPLIT_COLUMN not in table.column_names or label_column == SPLIT_COLUMN:
        return None
    values = table.column(SPLIT_COLUMN).to_pylist()
    for row, value in enumerate(values):
        if not (isinstance(value, str) and value.strip().lower() in SPLIT_VALUES):
            raise InputError(
                f"{where} has the value {value!r} in its {SPLIT_COLUMN!r} column at row {row}; that "
                f"column must hold train or test in every row (or rename it)"
            )
    return np.array([v.strip().lower() == "test" for v in values], dtype=bool)


def _split_by_column(
    lists: dict,
    values: dict,
    rows: np.ndarray,
    is_test: np.ndarray | None,
    path: Path,
    has_test_files: bool,
    notes: list[str],
) -> None:
    """Move the rows that the ``split`` column marks as test rows to the test split."""
    if is_test is None:
        return
    if has_test_files:
        raise InputError(
            f"{path} has both a test split (test shards or a test folder) and a {SPLIT_COLUMN!r} column; "
            f"mark the test rows one way only (rename the column, or merge the test files into the rest)"
        )
    test = is_test[rows]
    notes.append(f"column {SPLIT_COLUMN!r} marks {int(test.sum())} test rows and {int((~test).sum())} training rows")
    if not (~test).any():
        raise InputError(
            f"every usable row of {path} is marked test in its {SPLIT_COLUMN!r} column; mark the rows "
            f"to train on as train"
        )
    train_list, train_values = lists.pop("train"), values.pop("train")
    for split, chosen in (("train", ~test), ("test", test)):
        if chosen.any():
            lists[split] = [train_list[i] for i in np.flatnonzero(chosen)]
            values[split] = train_values[chosen]
    if "test" not in lists:
        notes.append(f"column {SPLIT_COLUMN!r} leaves no usable test row, so there is no test set")


def _other_shards_note(path: Path) -> list[str]:
    """A note naming the parquet shards that train without being named ``train-*``
    (``validation-*`` above all), so that no one takes them for a held-out split."""
    if path.is_file() or (path / "state.json").is_file() or (path / "dataset_dict.json").is_file():
        return []
    others = [p.name for p in _parts(path)["train"] if not p.name.lower().startswith("train")]
    if not others:
        return []
    return [
        f"{', '.join(others[:3])}{' and more' if len(others) > 3 else ''} train{'s' if len(others) == 1 else ''} "
        f"with the train-* shards: only test-* shards are held out (move or rename the others to leave them out)"
    ]


def read_image_table(
    path: str | os.PathLike,
    *,
    label_column: str = "label",
    image_size: int = 256,
    cache_dir: str | os.PathLike | None = None,
) -> ImageFiles | None:
    """The images of a table with an image column, as :class:`ImageFiles` (see the module).

    Returns None for a ``.parquet`` file without an image column (a feature table).

    Raises:
        InputError: pyarrow missing; unreadable files; no label column; a folder without an
            image column; two image columns; an image that is no PNG or JPEG; a path to no
            file; fewer than two classes; a malformed ``split`` column, or one beside test files.
    """
    from .labels import encode_labels, encode_test_labels, strip_text_labels

    label_column = label_column.strip()
    if _features_csv(path, label_column):
        return None
    path, pa, root, parts = _open(path)
    train = parts["train"]
    if label_column not in train.column_names:
        raise InputError(
            f"{path} has no column {label_column!r} (columns: {', '.join(train.column_names)}); "
            f"name the label column with --label-column"
        )
    found = _image_column(train, label_column, root, str(path), pa)
    if found is None:
        if path.is_file():  # a table of features (a CSV's first rows named an image, the others none)
            return None
        raise InputError(
            f"{path} has no image column (PNG or JPEG bytes, Hugging Face images, or paths of image "
            f"files relative to it) besides the label {label_column!r}"
        )
    column, kind = found
    is_test = _marked_test(train, label_column, str(path))
    paths, cache = _written(path, parts, column, kind, root, cache_dir)
    notes: list[str] = []
    lists, values, usable = {}, {}, {}
    for split, table in parts.items():
        if label_column not in table.column_names:
            raise InputError(f"the {split} split of {path} lacks the label column {label_column!r}")
        labels = np.array(table.column(label_column).to_pylist(), dtype=object)
        usable[split] = _usable(paths[split], labels, split, str(path), notes)
        lists[split] = [paths[split][r] for r in usable[split]]
        values[split] = strip_text_labels(labels[usable[split]], label_column, notes)
    _split_by_column(lists, values, usable["train"], is_test, path, "test" in parts, notes)
    classes, y_train = encode_labels(values["train"], label_column, str(path), notes)
    test = None
    if "test" in lists:
        test = ImageList(
            lists["test"], encode_test_labels(values["test"], classes, np.arange(len(lists["test"])), str(path))
        )
    notes.insert(0, _source_note(path, column, kind, cache))
    ignored = [c for c in train.column_names if c not in (label_column, column, SPLIT_COLUMN)]
    if ignored:
        notes.append(
            f"ignored the other column{'s' if len(ignored) > 1 else ''} {', '.join(map(repr, ignored[:5]))}"
            f"{' and more' if len(ignored) > 5 else ''}: a table of images trains on its images and labels"
        )
    notes += _other_shards_note(path)
    for note in notes:
        print(f"memomentum: note: {note}", file=sys.stderr)
    return ImageFiles(
        name=path.stem if path.is_file() else path.name,
        root=root,
        train=ImageList(lists["train"], y_train),
        val=None,
        test=test,
        class_names=tuple(str(c) for c in classes),
        image_size=image_size,
    )


@dataclass(frozen=True)
class ImageRows:
    """Every row of a table with an image column, for prediction: the rows of all its parts
    in the order read (training shards, then test shards; a saved DatasetDict's ``train``,
    ``test``, then its other splits), numbered from 0 over them all.

    Attributes:
        paths: each row's image file (bytes written once into the cache), None where the
            row has no image.
        labels: each row's value in the label column (None where empty), or None when the
            table has no such column.
        note: where the images came from, in words.
    """

    paths: list
    labels: np.ndarray | None
    note: str


def read_image_rows(
    path: str | os.PathLike, *, label_column: str = "label", cache_dir: str | os.PathLike | None = None
) -> ImageRows | None:
    """The image of every row of a table, and its label where the table has ``label_column``
    (see :class:`ImageRows`); None when the table has no image column. Read as
    :func:`read_image_table` reads a table to train on, so that the same table gives the
    same image files; a ``split`` column is not needed (every row is predicted).

    Raises:
        InputError: pyarrow missing; unreadable files; two image columns; an image that is no
            PNG or JPEG; a path to no file.
    """
    label_column = label_column.strip()
    if _features_csv(path, label_column):
        return None
    path, pa, root, parts = _open(path, every_split=True)
    found = _image_column(next(iter(parts.values())), label_column, root, str(path), pa)
    if found is None:
        return None
    column, kind = found
    paths, cache = _written(path, parts, column, kind, root, cache_dir)
    labelled = all(label_column in table.column_names for table in parts.values())
    labels = (
        np.array([v for table in parts.values() for v in table.column(label_column).to_pylist()], dtype=object)
        if labelled
        else None
    )
    return ImageRows([p for split in parts for p in paths[split]], labels, _source_note(path, column, kind, cache))

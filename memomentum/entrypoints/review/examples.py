"""A run's examples as numpy columns, read once from ``examples.csv``, and the pages of them
that the review asks for: ranked (suspects first, by label quality, or by consensus over
several runs), filtered and paged on the server, so that a page of a run with a million
examples costs a few milliseconds and the browser never holds the whole table."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ...base.atomic import atomic_file
from ...base.errors import InputError
from ...runner.files import CLASSES, EXAMPLES, MODEL, read_json

SORTS = ("rank", "confidence", "index")
_CACHE_VERSION = 1  # of the cached columns' layout
STATES = ("any", "undecided", "decided")
MAX_PAGE = 500


class FileColumn:
    """The image file of every example, kept as one Arrow string array (a million paths cost
    no Python objects): a path by position, all of them as a numpy array on request, and
    the search over them in Arrow's compute kernels."""

    def __init__(self, paths):
        import pyarrow as pa

        self.paths = (paths if isinstance(paths, pa.ChunkedArray) else pa.chunked_array([paths])).combine_chunks()

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, pos) -> str:
        return self.paths[int(pos)].as_py()

    def __array__(self, dtype=None, copy=None):
        return np.asarray(self.paths.to_pylist(), dtype=object)

    def containing(self, text: str) -> np.ndarray:
        """Whether each file's name (not its folders) holds ``text``, in any case."""
        import pyarrow.compute as pc

        names = pc.replace_substring_regex(self.paths, pattern=r"^.*[/\\]", replacement="")
        return pc.match_substring(names, text, ignore_case=True).to_numpy(zero_copy_only=False)


@dataclass
class Examples:
    """One row per example of the run's training part, in ``examples.csv``'s order (by
    ``index``). Labels are class numbers into :attr:`classes` (-1: unknown)."""

    run_dir: Path
    classes: list[str]
    index: np.ndarray  # int64, ascending
    given: np.ndarray  # int32
    predicted: np.ndarray  # int32
    confidence: np.ndarray  # float32
    issue: np.ndarray  # bool
    quality: np.ndarray  # float32 (the consensus's mean label quality over several runs)
    true: np.ndarray | None  # int32, -1 unknown
    files: FileColumn | None  # absolute paths of image files
    rows: np.ndarray | None  # int64: rows of the user's table
    share: np.ndarray | None = None  # float32: the share of runs that call it a label issue (consensus)
    rank: np.ndarray = field(init=False)  # positions in review order

    def __post_init__(self):
        self.rank = review_order(self.issue, self.quality, self.share)

    def __len__(self) -> int:
        return int(self.index.size)

    def positions(self, indices) -> np.ndarray:
        """The positions of the examples with these ``index`` values; InputError for one the run lacks."""
        want = np.asarray(indices, dtype=np.int64).reshape(-1)
        pos = np.searchsorted(self.index, want)
        ok = (pos < self.index.size) & (self.index[np.minimum(pos, self.index.size - 1)] == want)
        if not ok.all():
            raise InputError(f"the run has no example with index {int(want[~ok][0])}")
        return pos

    def confusion(self) -> list[list[int]]:
        k = len(self.classes)
        return np.bincount(self.given.astype(np.int64) * k + self.predicted, minlength=k * k).reshape(k, k).tolist()


def review_order(issue: np.ndarray, quality: np.ndarray, share: np.ndarray | None = None) -> np.ndarray:
    """Suspects first, then the others; within each, the lowest label quality first (over
    several runs: the largest share of runs calling it an issue first, then the lowest mean
    label quality); ties by position."""
    if share is None:  # one stable sort of one key (quality is in [0, 1]): a third of lexsort's time
        return np.argsort(quality.astype(np.float64) + 2.0 * ~issue, kind="stable").astype(np.int64)
    return np.lexsort((np.arange(issue.size), quality, -share, ~issue)).astype(np.int64)


def class_names(run_dir: Path) -> list[str]:
    """The run's class names (``classes.json``), else its class numbers as text."""
    if (run_dir / CLASSES).is_file():
        names = read_json(run_dir / CLASSES)
        if isinstance(names, list) and names:
            return [str(n) for n in names]
    import torch  # only for runs without class names: their number is in the model file

    try:
        saved = torch.load(run_dir / MODEL, map_location="cpu", weights_only=True, mmap=True)
        return [str(k) for k in range(int(saved["num_classes"]))]
    except Exception as e:  # noqa: BLE001 -- a damaged file is the user's now
        raise InputError(
            f"cannot read the number of classes from {run_dir / MODEL} ({type(e).__name__}); the run "
            f"directory is damaged"
        ) from None


def read_examples(run_dir: Path) -> Examples:
    """``RUN_DIR/examples.csv`` as columns: from the review's cache of them when it is there
    (:func:`cache_file`), else read by Arrow's multi-threaded CSV reader and its compute
    kernels (a million rows in about a second, no Python object per row) and cached."""
    from ...data.tables import import_tables_extra

    import_tables_extra("pyarrow", "memomentum review")
    path = run_dir / EXAMPLES
    if not path.is_file():
        raise InputError(
            f"{run_dir} holds no finished run (no {EXAMPLES}); give the --out directory of a finished memomentum run"
        )
    classes = class_names(run_dir)
    cache = cache_file(path)
    cached = _read_cache(cache, run_dir, classes)
    if cached is not None:
        return cached
    ex = _parse_examples(path, run_dir, classes)
    _write_cache(ex, cache)
    return ex


def cache_file(examples: Path) -> Path:
    """Where the columns of ``examples`` are cached: ``$XDG_CACHE_HOME/memomentum/review``
    (default ``~/.cache``), named by the file's path and by its size and modification time,
    so that a run written again is read again."""
    st = examples.stat()
    where = hashlib.sha256(str(examples.resolve()).encode()).hexdigest()[:16]
    version = hashlib.sha256(f"{st.st_size}|{st.st_mtime_ns}|{_CACHE_VERSION}".encode()).hexdigest()[:16]
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "memomentum" / "review"
    return root / f"{where}-{version}.arrow"


def _read_cache(cache: Path, run_dir: Path, classes: list[str]) -> Examples | None:
    """The cached columns (memory-mapped Arrow: no parsing), or None (none, stale, damaged)."""
    import pyarrow as pa

    try:
        table = pa.ipc.open_file(pa.memory_map(str(cache))).read_all()
        if json.loads(table.schema.metadata[b"classes"]) != classes:
            return None
        has = table.column_names
        col = {name: table[name].to_numpy() for name in has if name != "file"}
        return Examples(
            run_dir=run_dir,
            classes=classes,
            index=col["index"],
            given=col["given"],
            predicted=col["predicted"],
            confidence=col["confidence"],
            issue=col["issue"].astype(bool),
            quality=col["quality"],
            true=col.get("true"),
            rows=col.get("row"),
            files=FileColumn(table["file"]) if "file" in has else None,
        )
    except (OSError, ValueError, KeyError, TypeError, pa.ArrowException):
        return None


def _write_cache(ex: Examples, cache: Path) -> None:
    """Cache the columns for the next opening; a cache that cannot be written is no error."""
    import pyarrow as pa

    columns = {
        "index": ex.index,
        "given": ex.given,
        "predicted": ex.predicted,
        "confidence": ex.confidence,
        "issue": ex.issue.astype(np.int8),
        "quality": ex.quality,
    }
    optional = {"true": ex.true, "row": ex.rows, "file": None if ex.files is None else ex.files.paths}
    table = pa.table({**columns, **{k: v for k, v in optional.items() if v is not None}})
    table = table.replace_schema_metadata({"classes": json.dumps(ex.classes)})
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        with atomic_file(cache, "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)
        for old in cache.parent.glob(cache.name.split("-")[0] + "-*.arrow"):  # the same run's older caches
            if old != cache:
                old.unlink(missing_ok=True)
    except (OSError, pa.ArrowException):
        pass  # a cache only: the next review reads examples.csv again


def _parse_examples(path: Path, run_dir: Path, classes: list[str]) -> Examples:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    # every column typed up front: no type inference (a million rows parse in about half the time)
    text = {c: pa.string() for c in ("given_label", "predicted_label", "true_label", "file")}
    text.update(
        {
            "index": pa.int64(),
            "row": pa.int64(),
            "confidence": pa.float32(),
            "label_quality": pa.float32(),
            "is_confident": pa.int8(),
            "is_label_issue": pa.int8(),
        }
    )
    try:
        table = pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(column_types=text, strings_can_be_null=False))
    except (pa.ArrowInvalid, OSError) as e:
        raise InputError(f"cannot read {path}: {str(e).strip().splitlines()[0]}") from None
    need = ["index", "given_label", "predicted_label", "confidence", "is_label_issue", "label_quality"]
    missing = [c for c in need if c not in table.column_names]
    if missing:
        raise InputError(f"{path} has no column {missing[0]!r}; it was not written by memomentum run")
    index = table["index"].to_numpy()
    if np.any(np.diff(index) <= 0):  # written in index order; sorted here if someone re-sorted it
        table = table.take(np.argsort(index, kind="stable"))
    has = table.column_names

    def numbers(name, dtype):
        return table[name].to_numpy().astype(dtype, copy=False)

    return Examples(
        run_dir=run_dir,
        classes=classes,
        index=numbers("index", np.int64),
        given=_codes(table["given_label"], classes, path),
        predicted=_codes(table["predicted_label"], classes, path),
        confidence=numbers("confidence", np.float32),
        issue=numbers("is_label_issue", np.int64) == 1,
        quality=numbers("label_quality", np.float32),
        true=_codes(table["true_label"], classes, path, missing_ok=True) if "true_label" in has else None,
        files=FileColumn(table["file"]) if "file" in has else None,
        rows=numbers("row", np.int64) if "row" in has else None,
    )


def _codes(column, classes: list[str], path: Path, *, missing_ok: bool = False) -> np.ndarray:
    """Label names -> class numbers (-1 for an empty field where ``missing_ok``)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    found = pc.index_in(column, value_set=pa.array(classes, pa.string()))
    codes = pc.fill_null(found, -1).to_numpy().astype(np.int32)
    bad = codes < 0
    if missing_ok:
        bad &= pc.not_equal(column, "").to_numpy(zero_copy_only=False)
    if bad.any():
        value = column[int(np.flatnonzero(bad)[0])].as_py()
        raise InputError(
            f"{path} holds the label {value!r}, which is not one of the run's classes "
            f"({', '.join(classes[:10])}{', ...' if len(classes) > 10 else ''})"
        )
    return codes


@dataclass(frozen=True)
class Query:
    """What the page asks for: filters, order and the slice."""

    suspects: bool = False
    given: int | None = None
    predicted: int | None = None
    state: str = "any"
    search: str = ""
    sort: str = "rank"
    offset: int = 0
    limit: int = 48


def select(ex: Examples, decided: np.ndarray, q: Query) -> tuple[np.ndarray, int]:
    """The positions of the page ``q`` asks for, in order, and how many examples match.

    ``decided``: bool per position, whether the example has a decision."""
    order = ex.rank if q.sort == "rank" else _order(ex, q.sort)
    mask = _mask(ex, decided, q)
    matches = order if mask is None else order[mask[order]]
    return matches[q.offset : q.offset + q.limit], int(matches.size)


def _order(ex: Examples, sort: str) -> np.ndarray:
    if sort == "confidence":  # the model most sure of another class first
        return np.lexsort((np.arange(len(ex)), -ex.confidence, ~ex.issue)).astype(np.int64)
    return np.arange(len(ex), dtype=np.int64)


def _mask(ex: Examples, decided: np.ndarray, q: Query) -> np.ndarray | None:
    mask = None

    def both(m):
        return m if mask is None else mask & m

    if q.suspects:
        mask = both(ex.issue)
    if q.given is not None:
        mask = both(ex.given == q.given)
    if q.predicted is not None:
        mask = both(ex.predicted == q.predicted)
    if q.state != "any":
        mask = both(decided if q.state == "decided" else ~decided)
    if q.search.strip():
        mask = both(_search(ex, q.search.strip()))
    return mask


def _search(ex: Examples, text: str) -> np.ndarray:
    """A number finds the example of that index or table row; any text finds the image files
    whose names hold it."""
    found = np.zeros(len(ex), dtype=bool)
    if text.isdigit():
        found |= ex.index == int(text)
        if ex.rows is not None:
            found |= ex.rows == int(text)
    if ex.files is not None:
        found |= ex.files.containing(text)
    return found

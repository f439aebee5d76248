"""Reading a finished run directory for the report: ``summary.json``, ``config.json``,
``history.csv``, ``examples.csv`` and ``classes.json`` (:class:`RunFiles`), and the examples
as class indices and flags (:class:`ExamplesTable`). A file that cannot be read is an
:class:`InputError` with one sentence.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...base.errors import InputError
from ...data.registry import known_class_names
from ...runner.files import CHECKPOINT, CLASSES, CONFIG, EXAMPLES, HISTORY, SUMMARY, is_finished, read_json


@dataclass
class RunFiles:
    """What the report reads from a finished run directory.

    Attributes:
        run_dir: the run directory.
        summary, config: ``summary.json`` and ``config.json`` as dictionaries.
        history: the rows of ``history.csv`` (numbers as floats).
        examples: the columns of ``examples.csv`` as strings, or None without that file.
        class_names: the classes' names in label order (``classes.json``, else the
            dataset's known names), or None (numbered classes).
    """

    run_dir: Path
    summary: dict
    config: dict
    history: list[dict]
    examples: dict[str, np.ndarray] | None
    class_names: list[str] | None


@dataclass
class ExamplesTable:
    """The examples of T as label indices and per-example flags, from ``examples.csv``."""

    index: np.ndarray  # position in the dataset's training set
    given: np.ndarray  # class indices
    predicted: np.ndarray
    true: np.ndarray | None  # -1 where unknown; None when no true label is known
    suspect: np.ndarray  # bool: a label issue (not in the confident set)
    confidence: np.ndarray | None  # the prediction's confidence, in [0, 1]
    quality: np.ndarray | None  # label_quality, higher = more likely correct
    files: np.ndarray | None  # image file per example (image-file datasets)
    num_classes: int
    rows: np.ndarray | None = None  # the row of the user's table per example (tables)


def read_run(run_dir) -> RunFiles:
    """Read a finished run directory (see :class:`RunFiles`); :class:`InputError` with one
    sentence when it is not one."""
    run_dir = Path(run_dir)
    if not run_dir.exists():
        raise InputError(f"there is no run directory {run_dir}")
    if not run_dir.is_dir():
        raise InputError(f"{run_dir} is a file, not a run directory written by memomentum run")
    if not is_finished(run_dir):
        unfinished = (run_dir / CHECKPOINT).exists()
        raise InputError(
            f"{run_dir} holds no finished run (no {SUMMARY}"
            f"{'; the run is unfinished, resume it first' if unfinished else ''})"
        )
    summary = _read_json_of_kind(run_dir / SUMMARY, dict)
    config = _read_json_of_kind(run_dir / CONFIG, dict) if (run_dir / CONFIG).is_file() else {}
    history = _read_history(run_dir / HISTORY)
    examples = _read_columns(run_dir / EXAMPLES) if (run_dir / EXAMPLES).is_file() else None
    _check_examples_match(run_dir, examples, summary)
    names = _read_class_names(run_dir / CLASSES) if (run_dir / CLASSES).is_file() else None
    if names is None:
        names = known_class_names(str(summary.get("dataset", config.get("dataset"))))
    return RunFiles(run_dir, summary, config, history, examples, names)


def _check_examples_match(run_dir: Path, examples: dict | None, summary: dict) -> None:
    """examples.csv has one row per training example of the run: a file cut short (or from
    another run) would give counts that contradict the summary, so it is refused."""
    if not examples or "n_train" not in summary:
        return
    rows = len(next(iter(examples.values())))
    if rows != summary["n_train"]:
        raise InputError(
            f"{run_dir / 'examples.csv'} has {rows:,} rows but {SUMMARY} says the run had "
            f"{summary['n_train']:,} training examples: the file is cut short or from another run, "
            f"so the report would contradict the summary; run the training again to rewrite it"
        )


def _read_json_of_kind(path: Path, kind: type | tuple[type, ...]):
    data = read_json(path)
    if not isinstance(data, kind):
        raise InputError(f"{path} does not hold a JSON {'object' if kind is dict else 'list'}")
    return data


def _read_class_names(path: Path) -> list[str]:
    data = _read_json_of_kind(path, (list, dict))
    if isinstance(data, dict):  # {"0": "cat", ...}: ordered by label
        try:
            return [str(data[k]) for k in sorted(data, key=int)]
        except ValueError:
            raise InputError(f"{path} maps labels to names, but not every key is a label number") from None
    return [str(name) for name in data]


def _read_rows(path: Path) -> tuple[list[str], list[list[str]]]:
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise InputError(f"cannot read {path}: {e}") from None
    return (rows[0], rows[1:]) if rows else ([], [])


def _read_history(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    header, rows = _read_rows(path)
    out = []
    for row in rows:
        record = dict(zip(header, row))
        try:
            out.append(
                {k: float(record[k]) for k in ("outer", "inner", "epoch", "val_accuracy")}
                | {"train_loss": _float_or_nan(record.get("train_loss", ""))}
            )
        except (KeyError, ValueError):
            raise InputError(
                f"{path} is not a memomentum history (a row lacks outer, inner, epoch or val_accuracy)"
            ) from None
    return out


def _float_or_nan(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return math.nan


def _read_columns(path: Path) -> dict[str, np.ndarray]:
    header, rows = _read_rows(path)
    rows = [r for r in rows if len(r) == len(header)]
    return {name: np.array([r[i] for r in rows], dtype=object) for i, name in enumerate(header)}


def verdicts(run: RunFiles) -> ExamplesTable | None:
    """The examples of ``examples.csv`` with labels as class indices (labels may be written
    as numbers or as the class names of ``classes.json``), or None without that file."""
    ex = run.examples
    if ex is None or "given_label" not in ex or "predicted_label" not in ex:
        return None
    path = run.run_dir / EXAMPLES
    names = run.class_names
    lookup = {name: i for i, name in enumerate(names)} if names else {}

    def label(text: str) -> int:
        if text == "":
            return -1
        if text in lookup:
            return lookup[text]
        try:
            return int(text)
        except ValueError:
            raise InputError(f"{path} holds the label {text!r}, which classes.json does not list") from None

    def labels(column: str) -> np.ndarray:
        values, inverse = np.unique(ex[column].astype(str), return_inverse=True)  # a few classes, many rows
        return np.array([label(t) for t in values], dtype=np.int64)[inverse].reshape(-1)

    given, predicted = labels("given_label"), labels("predicted_label")
    true = labels("true_label") if "true_label" in ex else None
    if "is_label_issue" in ex:
        suspect = _flags(ex["is_label_issue"])
    elif "is_confident" in ex:
        suspect = ~_flags(ex["is_confident"])
    else:
        suspect = predicted != given
    known = [a for a in (given, predicted, true) if a is not None and a.size]
    k = max([len(names) if names else 0] + [int(a.max()) + 1 for a in known])
    return ExamplesTable(
        index=_ints(ex.get("index"), given.size),
        given=given,
        predicted=predicted,
        true=true if true is not None and (true >= 0).any() else None,
        suspect=suspect,
        confidence=_floats(ex.get("confidence")),
        quality=_floats(ex.get("label_quality")),
        files=ex.get("file"),
        num_classes=k,
        rows=None if ex.get("row") is None else _ints(ex.get("row"), given.size),
    )


def _flags(column: np.ndarray) -> np.ndarray:
    return np.array([str(v).strip().lower() in ("1", "true", "yes") for v in column], dtype=bool)


def _floats(column) -> np.ndarray | None:
    return None if column is None else np.array([_float_or_nan(v) for v in column], dtype=np.float64)


def _ints(column, n: int) -> np.ndarray:
    return np.arange(n) if column is None else np.array([int(v) for v in column], dtype=np.int64)

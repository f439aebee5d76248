"""The corrections file that ``memomentum review RUN_DIR --export OUT`` writes beside ``OUT``:
one row per example whose label the review changed or excluded, for an audit, and what a
later ``memomentum run --dataset OUT`` reads to say in its summary how many labels the
review corrected and excluded.

``clean.csv``, ``clean.parquet`` or ``clean.npz`` have ``clean.corrections.csv`` beside them,
with the columns :data:`COLUMNS` (``where`` is the example's ``file`` or ``row`` in the run's
data, or its ``index`` for arrays). Imports nothing heavy (no numpy): the configuration and
the runner read it.
"""

from __future__ import annotations

import csv
from pathlib import Path

__all__ = ["COLUMNS", "SUFFIX", "corrections_path", "read_review_counts"]

SUFFIX = ".corrections.csv"
COLUMNS = ("index", "where", "old_label", "new_label", "decision")
_DATA_SUFFIXES = (".csv.gz", ".csv.bz2", ".csv.xz", ".csv.zip", ".csv.zst", ".csv", ".parquet", ".npz")


def corrections_path(data: str | Path) -> Path:
    """The corrections file of the exported data ``data``: ``clean.npz`` -> ``clean.corrections.csv``."""
    p = Path(data)
    name = p.name
    for suffix in _DATA_SUFFIXES:
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
            break
    return p.with_name(name + SUFFIX)


def read_review_counts(dataset) -> dict | None:
    """How many labels a review corrected (``relabel``) and excluded (``exclude``), from the
    corrections file beside ``dataset`` (a file exported by ``memomentum review --export``);
    None when ``dataset`` is not a file or has no readable corrections file beside it."""
    if not isinstance(dataset, str) or not Path(dataset.strip()).expanduser().is_file():
        return None
    path = corrections_path(Path(dataset.strip()).expanduser())
    if not path.is_file():
        return None
    try:
        with open(path, encoding="utf-8", newline="") as f:
            rows = csv.reader(f)
            if tuple(next(rows, ())) != COLUMNS:  # another program's file of that name: not a review's
                return None
            decisions = [r[4] for r in rows if len(r) == len(COLUMNS)]
    except (OSError, UnicodeDecodeError, csv.Error):  # read at the end of a run: never fail it for this
        return None
    return {
        "corrected": decisions.count("relabel"),
        "excluded": decisions.count("exclude"),
        "corrections_file": str(path),
    }

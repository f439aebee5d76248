"""The review's decisions and ``RUN_DIR/review.csv``, where every decision is kept.

``review.csv`` has one row per decided example, in ``index`` order, with the columns
``index`` (as in ``examples.csv``), ``file`` (only where the run's data are image files),
``given_label``, ``decision`` (``relabel``, ``keep`` or ``exclude``), ``label`` (the label the
example keeps: the new one, the given one, empty when excluded) and ``decided_at`` (UTC,
ISO 8601). It is rewritten whole after every decision, atomically (a temporary file,
fsynced, renamed: :func:`memomentum.base.atomic.atomic_file`), so a reader (or a
kill -9, or a power cut) only ever finds the file before or after a decision; a thousand
decisions make a file of about 60 kB, written in about a millisecond.
"""

from __future__ import annotations

import csv
import io
import threading
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from ...base.atomic import atomic_file
from ...base.errors import InputError
from .examples import Examples

REVIEW = "review.csv"
DECISIONS = ("relabel", "keep", "exclude")
NONE = -1  # no decision


def now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class Decisions:
    """The decision of every example (by position in :class:`Examples`), kept in memory and
    in ``review.csv``. One lock orders the decisions of every browser tab."""

    def __init__(self, ex: Examples, path: Path):
        self.ex, self.path = ex, path
        self.code = np.full(len(ex), NONE, dtype=np.int8)  # into DECISIONS
        self.label = np.full(len(ex), -1, dtype=np.int32)  # class number the example keeps
        self.at: dict[int, str] = {}
        self._lock = threading.Lock()
        if path.is_file():
            read_review(self, path)

    def decided(self) -> np.ndarray:
        return self.code != NONE

    def counts(self) -> dict:
        d = self.code != NONE
        return {
            "reviewed": int(d.sum()),
            "remaining": int((~d).sum()),
            "suspects_remaining": int((~d & self.ex.issue).sum()),
            **{name: int((self.code == k).sum()) for k, name in enumerate(DECISIONS)},
        }

    def state(self, pos: int) -> dict:
        k = int(self.code[pos])
        return {
            "index": int(self.ex.index[pos]),
            "decision": None if k == NONE else DECISIONS[k],
            "label": None if self.label[pos] < 0 else self.ex.classes[self.label[pos]],
            "decided_at": self.at.get(pos),
        }

    def decide(self, positions: np.ndarray, decision: str, label: int | None = None) -> list[dict]:
        """Record ``decision`` for the examples at ``positions`` (``accept``: each its own
        predicted label; ``relabel`` to ``label``; ``keep``; ``exclude``; ``clear``: no
        decision), write ``review.csv``, and return their states before (for an undo)."""
        labels = {
            "accept": self.ex.predicted[positions],
            "keep": self.ex.given[positions],
            "exclude": np.full(positions.size, -1),
            "clear": np.full(positions.size, -1),
            "relabel": np.full(positions.size, -1 if label is None else label),
        }[decision]
        entries = [(int(p), decision, int(k)) for p, k in zip(positions.tolist(), labels.tolist())]
        return self.apply(entries)

    def apply(self, entries: list[tuple]) -> list[dict]:
        """Set (position, decision, class number[, time]) for each entry (the time: now unless
        given, as an undo gives it), write ``review.csv`` once, and return the states before.
        A relabel to the given label is a keep; ``accept`` a relabel."""
        stamp = now()
        with self._lock:
            before = [self.state(e[0]) for e in entries]
            for pos, decision, label, *when in entries:
                self._set(pos, decision, label, (when[0] if when else None) or stamp)
            self.write()
        return before

    def _set(self, pos: int, decision: str | None, label: int, stamp: str) -> None:
        if decision in (None, "clear"):
            self.code[pos], self.label[pos] = NONE, -1
            self.at.pop(pos, None)
            return
        if decision in ("accept", "relabel") and label == self.ex.given[pos]:
            decision = "keep"
        code = DECISIONS.index("relabel" if decision == "accept" else decision)
        self.code[pos] = code
        self.label[pos] = -1 if decision == "exclude" else label
        self.at[pos] = stamp

    def write(self) -> None:
        """``review.csv`` rewritten whole, atomically."""
        with atomic_file(self.path) as f:
            f.write(self.text())

    def text(self) -> str:
        ex, names = self.ex, self.ex.classes
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(
            ["index"] + (["file"] if ex.files is not None else []) + ["given_label", "decision", "label", "decided_at"]
        )
        for pos in np.flatnonzero(self.code != NONE).tolist():
            label = "" if self.label[pos] < 0 else names[self.label[pos]]
            w.writerow(
                [int(ex.index[pos])]
                + ([ex.files[pos]] if ex.files is not None else [])
                + [names[ex.given[pos]], DECISIONS[self.code[pos]], label, self.at.get(pos, "")]
            )
        return buf.getvalue()


def read_review(d: Decisions, path: Path) -> None:
    """The decisions of an existing ``review.csv`` (the last row of an example wins); a row
    that does not fit the run is refused in one sentence naming its line."""
    try:
        with open(path, encoding="utf-8", newline="") as f:
            rows = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise InputError(f"cannot read {path}: {e}") from None
    for line, row in enumerate(rows, start=2):
        pos, decision, label = _checked_row(d.ex, row, path, line)
        d._set(pos, decision, label, (row.get("decided_at") or "").strip() or now())


def _checked_row(ex: Examples, row: dict, path: Path, line: int) -> tuple[int, str, int]:
    where = f"{path} line {line}"
    text = (row.get("index") or "").strip()
    if not text.lstrip("-").isdigit():
        raise InputError(f"{where} has the index {text!r}; each row names an example by its index in examples.csv")
    try:
        pos = int(ex.positions([int(text)])[0])
    except InputError:
        raise InputError(f"{where} names the example {text}, which the run's examples.csv does not hold") from None
    decision = (row.get("decision") or "").strip()
    if decision not in DECISIONS:
        raise InputError(f"{where} has the decision {decision!r}; allowed: {', '.join(DECISIONS)}")
    file = (row.get("file") or "").strip()
    if file and ex.files is not None and file != ex.files[pos]:
        raise InputError(
            f"{where} names the file {file} for the example {text}, whose file is {ex.files[pos]}; "
            f"this review.csv belongs to other data"
        )
    name = (row.get("label") or "").strip()
    if decision == "relabel":
        if name not in ex.classes:
            raise InputError(
                f"{where} relabels to {name!r}, which is not one of the run's classes "
                f"({', '.join(ex.classes[:10])}{', ...' if len(ex.classes) > 10 else ''})"
            )
        return pos, decision, ex.classes.index(name)
    return pos, decision, int(ex.given[pos])

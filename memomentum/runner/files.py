"""Every file name of a run directory, in one place, and how a reader opens its JSON files
(:func:`read_json`) and tells a finished run (:func:`is_finished`). Imports no torch, so
that the report, the table, the grid and the review read the same names the run writes.

``summary.json`` is written last: its presence marks a finished run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..base.errors import InputError

CONFIG = "config.json"  # the resolved configuration
CHECKPOINT = "checkpoint.pt"  # the whole procedure state, rewritten after every epoch until the run ends
HISTORY = "history.csv"  # one row per epoch, growing with the checkpoint
SUMMARY = "summary.json"
EXAMPLES = "examples.csv"  # the verdict on every training example
ROUNDS = "rounds.npz"  # the confident set of every round
CLASSES = "classes.json"  # the class names, when the data has them
MODEL = "model.pt"  # the best model's weights, input shape and normalisation
REPORT = "report.html"
LOCK = "run.lock"
# --overwrite keeps the run it replaces here until the new run has results of its own: a new
# run that fails (diverges, cannot write) puts the old one back.
PREVIOUS = ".previous-run"

# What a run directory may hold; --overwrite deletes a directory only if it holds nothing else.
RUN_FILES = frozenset({CONFIG, CHECKPOINT, SUMMARY, EXAMPLES, HISTORY, MODEL, REPORT, ROUNDS, CLASSES, LOCK, PREVIOUS})
# Written at the end; removed again if one of them fails (history.csv stays: it grew with
# the checkpoint, and a resumed run rewrites it from there).
RESULT_FILES = (EXAMPLES, ROUNDS, CLASSES, MODEL, REPORT, SUMMARY)


def is_finished(run_dir: Path) -> bool:
    """Whether ``run_dir`` holds a finished run: its ``summary.json``, written last, is there."""
    return (Path(run_dir) / SUMMARY).is_file()


def read_json(path: Path) -> Any:
    """A JSON file of a run directory, or an :class:`InputError` naming it: unreadable, not
    JSON, or empty (a write cut short, e.g. by a copy: the run writes it atomically)."""
    try:
        text = path.read_text(encoding="utf-8")
        content = json.loads(text) if text.strip() else None
    except (OSError, ValueError) as e:  # UnicodeDecodeError is a ValueError
        raise InputError(f"cannot read {path}: {getattr(e, 'strerror', None) or e}") from None
    if not text.strip():
        raise InputError(
            f"{path} is empty (a write that was interrupted?): run that run again, or move its folder out of the way"
        )
    return content

"""The run's output formats (JSON, CSV, text, the checkpoint, ``examples.csv``), each written
atomically through :func:`memomentum.base.atomic.atomic_file`. The run directory's file
names are in :mod:`.files`."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np

from ..base.atomic import atomic_file
from ..base.errors import InputError
from .files import CHECKPOINT


def write_json(path: Path, data) -> None:
    with atomic_file(path) as f:
        json.dump(data, f, indent=2)
        f.write("\n")


def write_text(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) atomically, e.g. ``report.html``."""
    with atomic_file(path) as f:
        f.write(text)


def write_csv(path: Path, rows: list[dict], columns: list[str]) -> None:
    with atomic_file(path) as f:
        w = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
        w.writeheader()
        w.writerows(rows)


def write_torch(path: Path, obj, *, midway=None) -> None:
    """``torch.save`` atomically. ``midway``, if given, is called once half of the bytes
    are in the temporary file (flushed) and before the rest and the rename: the test hook
    ``MEMOMENTUM_TEST_KILL_AT=checkpoint-write:N`` (see :mod:`memomentum.entrypoints.api`) uses it."""
    import torch  # here, not above: review.csv and the other text files are written without torch

    # Serialise to memory first so a failing write never leaves a half file behind.
    buf = io.BytesIO()
    torch.save(obj, buf)
    data = buf.getbuffer()
    with atomic_file(path, "wb") as f:
        if midway is not None:
            half = len(data) // 2
            f.write(data[:half])
            f.flush()
            midway()
            f.write(data[half:])
        else:
            f.write(data)


def read_checkpoint(run_dir: Path) -> dict:
    import torch

    path = Path(run_dir) / CHECKPOINT
    if not path.exists():
        raise InputError(f"nothing to resume in {run_dir}: no {CHECKPOINT} there")
    try:
        saved = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # noqa: BLE001 -- a corrupt checkpoint is the user's file now
        raise InputError(
            f"cannot read the checkpoint {path}: the file is corrupt or truncated ({type(e).__name__})"
        ) from None
    if not (
        isinstance(saved, dict) and isinstance(saved.get("config"), dict) and isinstance(saved.get("procedure"), dict)
    ):
        raise InputError(f"{path} is not a memomentum checkpoint (it lacks the saved configuration and state)")
    return saved


def write_examples(
    path: Path,
    *,
    index: np.ndarray,
    verdict: dict,
    true: np.ndarray | None,
    files: list[str] | None = None,
    rows: np.ndarray | None = None,
    class_names=None,
) -> None:
    """One row per training example of T, sorted by its position in the original data.

    Columns: ``index``, then from ``verdict`` (:func:`memomentum.method.verdicts.verdict_columns`,
    in T's order) ``given_label``, ``predicted_label``, ``confidence``, ``is_confident``
    (0/1, the final confident set), ``is_label_issue`` (its complement, cleanlab's name) and
    ``label_quality``; ``true_label`` when ``true`` is given (the true labels, -1 where
    unknown: left empty); ``file``, the image file of every example of the original data
    (image-file datasets), or ``row``, its row in the user's table (tables, data rows counted
    from 0), as the last column. Labels are the user's class names when
    ``class_names`` is given (the verdict already holds them; the true labels are named here).
    """
    order = np.argsort(index, kind="stable")
    cols = ["index", "given_label", "predicted_label", "confidence", "is_confident", "is_label_issue", "label_quality"]
    cols += (["true_label"] if true is not None else []) + (["file"] if files is not None else [])
    cols += ["row"] if rows is not None else []
    names = None if class_names is None else [str(c) for c in class_names]
    label = (lambda c: str(c)) if names is None else (lambda c: _csv_field(str(c)))
    given, predicted = verdict["given_label"][order], verdict["predicted_label"][order]
    conf, quality = verdict["confidence"][order], verdict["label_quality"][order]
    issue = verdict["is_label_issue"][order].astype(np.int64)
    with atomic_file(path) as f:
        f.write(",".join(cols) + "\n")
        lines = []
        for i in range(order.size):
            j = index[order[i]]
            row = (
                f"{j},{label(given[i])},{label(predicted[i])},{conf[i]:.6f},{1 - issue[i]},{issue[i]},{quality[i]:.6f}"
            )
            if true is not None:
                t = true[order[i]]
                row += "," + ("" if t < 0 else str(t) if names is None else _csv_field(names[t]))
            if files is not None:
                row += "," + _csv_field(files[j])
            if rows is not None:
                row += f",{int(rows[j])}"
            lines.append(row)
        f.write("\n".join(lines) + "\n")


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """``np.savez_compressed`` atomically (built in memory first)."""
    buf = io.BytesIO()
    # numpy >= 2.1's stubs match the names to its new allow_pickle keyword (numpy 1.x has none)
    np.savez_compressed(buf, **arrays)  # type: ignore[arg-type]
    with atomic_file(path, "wb") as f:
        f.write(buf.getbuffer())


def _csv_field(text: str) -> str:
    """A CSV field, quoted when it holds a comma, a quote or a line break."""
    if any(c in text for c in ',"\n\r'):
        return '"' + text.replace('"', '""') + '"'
    return text

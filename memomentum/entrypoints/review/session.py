"""One review: the run's examples, their decisions and data, the lock that keeps a second
``memomentum review`` of the same run out, and what the page's API answers."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ...base.errors import InputError
from ...runner.rundir import lock_holder, release_lock, take_lock
from .decisions import REVIEW, Decisions
from .examples import Examples, Query, read_examples, select
from .export import export_decided
from .sources import DataView, run_config

LOCK = "review.lock"


class Review:
    """A run opened for review (the first of ``run_dirs``; with several runs of the same data,
    their consensus ranks the examples). Holds ``RUN_DIR/review.lock`` until :meth:`close`."""

    def __init__(self, run_dirs: list[Path], *, lock: bool = True):
        self.run_dirs = [Path(d).expanduser() for d in run_dirs]
        self.run_dir = self.run_dirs[0]
        for d in self.run_dirs:
            _check_run_dir(d)
        self.ex = read_examples(self.run_dir) if len(self.run_dirs) == 1 else consensus_examples(self.run_dirs)
        self.config = run_config(self.run_dir)
        self.locked = False
        if lock:
            self._lock()
        try:
            self.decisions = Decisions(self.ex, self.run_dir / REVIEW)
            self.view = DataView(self.ex, self.config)
        except BaseException:  # a review.csv that does not fit: refused, and the lock let go
            self.close()
            raise

    def _lock(self) -> None:
        holder = take_lock(self.run_dir / LOCK)
        if holder is not None:
            raise InputError(
                f"{self.run_dir} is already open in another memomentum review ({holder.describe()}); "
                f"use that one, or stop it first"
            )
        self.locked = True

    def close(self) -> None:
        if self.locked:
            release_lock(self.run_dir, LOCK)
            self.locked = False

    def meta(self) -> dict:
        ex = self.ex
        return {
            "run_dirs": [str(d) for d in self.run_dirs],
            "kind": self.view.kind,
            "classes": ex.classes,
            "n": len(ex),
            "n_issues": int(ex.issue.sum()),
            "has_true": ex.true is not None,
            "has_files": ex.files is not None,
            "has_rows": ex.rows is not None,
            "consensus": ex.share is not None,
            "confusion": ex.confusion(),
            "feature_columns": self.view.feature_columns(),
            "counts": self.decisions.counts(),
            "export_default": str(default_export(ex, self.config)),
            "dataset": str(self.config.get("dataset")),
        }

    def page(self, q: Query) -> dict:
        positions, total = select(self.ex, self.decisions.decided(), q)
        features = self.view.features(positions)
        items = [self.item(int(p), None if features is None else features[i]) for i, p in enumerate(positions)]
        return {"total": total, "offset": q.offset, "items": items, "counts": self.decisions.counts()}

    def item(self, pos: int, features: list | None = None) -> dict:
        ex, names = self.ex, self.ex.classes
        out = {
            "index": int(ex.index[pos]),
            "given": names[ex.given[pos]],
            "predicted": names[ex.predicted[pos]],
            "confidence": round(float(ex.confidence[pos]), 4),
            "quality": round(float(ex.quality[pos]), 4),
            "issue": bool(ex.issue[pos]),
            **self.decisions.state(pos),
        }
        if ex.true is not None:
            out["true"] = None if ex.true[pos] < 0 else names[ex.true[pos]]
        if ex.files is not None:
            out["file"] = os.path.basename(ex.files[pos])
            out["folder"] = os.path.basename(os.path.dirname(ex.files[pos]))
        if ex.rows is not None:
            out["row"] = int(ex.rows[pos])
        if ex.share is not None:
            out["share"] = round(float(ex.share[pos]), 3)
        if features is not None:
            out["features"] = features
        return out

    def decide(self, body: dict) -> dict:
        """``{"indices": [...], "decision": accept|keep|relabel|exclude|clear, "label": name}``, or
        ``{"restore": [{"index", "decision", "label"}, ...]}`` (an undo). Returns the examples'
        new states, their states before, and the counts."""
        if "restore" in body:
            return self._restore(body["restore"])
        from .server import DECIDE, positions_of

        positions = positions_of(self, body.get("indices"))
        decision = body.get("decision")
        if decision not in DECIDE:
            raise InputError(f"decision must be one of {', '.join(DECIDE)}")
        label = None
        if decision == "relabel":
            if body.get("label") not in self.ex.classes:
                raise InputError(f"label must be one of the run's classes, got {body.get('label')!r}")
            label = self.ex.classes.index(body["label"])
        before = self.decisions.decide(positions, decision, label)
        return self._answer(positions, before)

    def _restore(self, entries) -> dict:
        from .server import positions_of

        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise InputError("restore must be a list of {index, decision, label}")
        positions = positions_of(self, [e.get("index") for e in entries])
        names = self.ex.classes
        todo = []
        for pos, e in zip(positions.tolist(), entries):
            decision, label = e.get("decision"), e.get("label")
            if decision not in (None, "relabel", "keep", "exclude") or (label is not None and label not in names):
                raise InputError(f"cannot restore the decision {decision!r} with the label {label!r}")
            when = e.get("decided_at")
            todo.append(
                (
                    pos,
                    decision,
                    names.index(label) if label is not None else -1,
                    when if isinstance(when, str) and len(when) <= 40 else None,
                )
            )
        before = self.decisions.apply(todo)
        return self._answer(positions, before)

    def _answer(self, positions: np.ndarray, before: list[dict]) -> dict:
        return {
            "items": [self.decisions.state(int(p)) for p in positions],
            "before": before,
            "counts": self.decisions.counts(),
        }

    def export(self, out: str) -> str:
        return export_decided(self.ex, self.decisions, self.config, out or default_export(self.ex, self.config))


def default_export(ex: Examples, config: dict) -> Path:
    """Where the page's export button writes: ``RUN_DIR/reviewed/<data>-reviewed.<ext>``, in
    the form the run read its data (:mod:`.export`)."""
    from ...data.registry import run_name

    source = str(config.get("dataset") or "data")
    ext = (
        ".csv"
        if ex.files is not None
        else ".npz"
        if ex.rows is None
        else ".parquet"
        if source.lower().endswith(".parquet")
        else ".csv"
    )
    return ex.run_dir / "reviewed" / f"{run_name(source)}-reviewed{ext}"


def _check_run_dir(d: Path) -> None:
    if not d.is_dir():
        raise InputError(f"no run directory at {d}; give the --out directory of a finished memomentum run")
    holder = lock_holder(d)
    if holder is not None:
        raise InputError(f"the run in {d} is still going ({holder.describe()}); review it once it has finished")


def consensus_examples(run_dirs: list[Path]) -> Examples:
    """The examples of several runs of the same data (:func:`memomentum.entrypoints.consensus.consensus_table`;
    refused in one sentence for runs on other data or labels): the model's label is the
    majority label, its confidence the share of runs predicting it, a suspect an example
    that at least half of the runs judging it call a label issue; ranked by that share,
    then by the mean label quality."""
    import pyarrow as pa

    from ..consensus import consensus_table
    from .examples import FileColumn, class_names

    table = consensus_table(run_dirs)
    order = np.argsort(table["index"], kind="stable")
    t = {name: values[order] for name, values in table.items()}
    classes = class_names(run_dirs[0])
    code = {name: k for k, name in enumerate(classes)}

    def codes(values) -> np.ndarray:
        return np.array([code.get(str(v), -1) for v in values.tolist()], dtype=np.int32)

    return Examples(
        run_dir=run_dirs[0],
        classes=classes,
        index=t["index"].astype(np.int64),
        given=codes(t["given_label"]),
        predicted=codes(t["majority_label"]),
        confidence=t["majority_share"].astype(np.float32),
        issue=t["issue_share"] >= 0.5,
        quality=t["mean_label_quality"].astype(np.float32),
        true=codes(t["true_label"]) if "true_label" in t else None,
        files=FileColumn(pa.array(t["file"].tolist(), pa.string())) if "file" in t else None,
        rows=t["row"].astype(np.int64) if "row" in t else None,
        share=t["issue_share"].astype(np.float32),
    )

"""A finished run directory read for prediction: its best model, classes and settings.

A finished run holds the best model (``model.pt``: the network's name, the number of
classes, the input shape, the normalisation, the weights and, for a table, the feature
columns), the class names (``classes.json``) and the resolved configuration
(``config.json``). Whether the run trained on a table, on image files or on arrays is read
from its ``examples.csv`` (a ``row`` column for tables, a ``file`` column for image files).
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ...base.checks import first_few
from ...base.errors import InputError
from ...data.labels import class_labels
from ...runner.files import CHECKPOINT, CLASSES, CONFIG, EXAMPLES, MODEL, RUN_FILES, SUMMARY, is_finished, read_json
from ...training.engine import Engine
from ...training.models import create_model
from ...training.threads import choose_threads

__all__ = ["FinishedRun", "describe", "device_name", "network", "read_run", "run_directory", "wrong_kind"]

_MODEL_KEYS = ("model", "num_classes", "input_shape", "mean", "std", "state_dict")
_NEEDED = (SUMMARY, MODEL, CONFIG, EXAMPLES)  # what predict reads of a run directory


@dataclass(frozen=True)
class FinishedRun:
    """What a finished run directory says about its best model."""

    directory: Path
    saved: dict  # model.pt
    config: dict  # config.json
    class_names: tuple[str, ...] | None  # classes.json
    kind: str  # "table", "files" (image files) or "arrays"
    threads: int  # the run's CPU thread count
    device: str  # where the run trained: "cpu" or "cuda"
    feature_columns: tuple[str, ...] | None  # a table run's, in the network's input order

    @property
    def num_classes(self) -> int:
        return int(self.saved["num_classes"])

    @property
    def classes(self) -> np.ndarray:
        """The run's labels in class-number order (class names, or numbers)."""
        return class_labels(self.class_names, self.num_classes)

    @property
    def side(self) -> int:
        """The packed side of a run on image files (the images are square)."""
        return int(self.saved["input_shape"][1])

    @property
    def store_format(self) -> str:
        return self.config.get("store_format") or "jpeg"

    def label_column(self, given: str | None) -> str:
        """The column of given labels: the one named, else the run's own label column."""
        return (given if given is not None else self.config.get("label_column") or "label").strip()


def run_directory(run_dir) -> Path:
    """``run_dir`` as a directory, or one sentence on what it is instead (nothing, a file of
    a run, a folder of runs)."""
    if not isinstance(run_dir, (str, os.PathLike)) or not str(run_dir).strip():
        raise InputError(
            f"the run directory must be a path (the --out directory of a finished memomentum run), got {run_dir!r}"
        )
    d = Path(str(run_dir).strip()).expanduser()
    if d.is_file():
        where = (
            f"give the run directory that holds it, {d.parent}"
            if d.name in RUN_FILES
            else "give the --out directory of a finished memomentum run"
        )
        raise InputError(f"{d} is a file, not a run directory; {where}")
    if not d.is_dir():
        raise InputError(f"no run directory at {d}; give the --out directory of a finished memomentum run")
    missing = [name for name in _NEEDED if not (d / name).is_file()]
    if missing:
        runs = _runs_inside(d)
        hint = (
            f"the run has not finished: resume it with memomentum run --resume {d}"
            if (d / CHECKPOINT).is_file()
            else f"it holds {len(runs)} run director{'ies' if len(runs) > 1 else 'y'}, {first_few(runs, 3)}: give "
            f"one of them"
            if runs
            else f"predict needs the directory of a finished memomentum run, with {_listing(_NEEDED)}"
        )
        raise InputError(f"{d} holds no finished run: it has no {missing[0]} ({hint})")
    return d


def _runs_inside(d: Path) -> list[str]:
    """The finished runs directly inside ``d`` (a grid's folder, a folder of runs)."""
    try:
        return sorted(p.name for p in d.iterdir() if is_finished(p))
    except OSError:
        return []


def _listing(names) -> str:
    return ", ".join(names[:-1]) + " and " + names[-1]


def read_run(run_dir) -> FinishedRun:
    """The finished run in ``run_dir``, or one sentence on why it cannot predict."""
    d = run_directory(run_dir)
    config, summary = read_json(d / CONFIG), read_json(d / SUMMARY)
    names = read_json(d / CLASSES) if (d / CLASSES).is_file() else None
    saved = _read_model(d / MODEL)
    if names is not None and (not isinstance(names, list) or len(names) != saved["num_classes"]):
        raise InputError(
            f"{d / CLASSES} does not hold the run's {saved['num_classes']} class names; the run directory is damaged"
        )
    if names is None:
        _refuse_lost_class_names(d, int(saved["num_classes"]))
    threads = summary.get("threads") or choose_threads(config.get("threads"), model=saved["model"]).threads
    device = "cuda" if str(summary.get("device", "cpu")).startswith("cuda") else "cpu"
    kind = _run_kind(d / EXAMPLES)
    return FinishedRun(
        d,
        saved,
        config,
        None if names is None else tuple(str(n) for n in names),
        kind,
        int(threads),
        device,
        _feature_columns(d, saved) if kind == "table" else None,
    )


def _refuse_lost_class_names(d: Path, k: int) -> None:
    """A run whose classes had names writes them to ``classes.json``; without that file the
    numbers predicted could not be told back into names, so a run whose ``examples.csv``
    shows labels other than the class numbers 0..K-1 is refused rather than answered in
    numbers."""
    named = _named_label(d / EXAMPLES, k)
    if named is not None:
        raise InputError(
            f"{d} has no {CLASSES}, but its {EXAMPLES} names the classes (for example {named!r}), so "
            f"predictions would come out as class numbers that match no name; put the run's {CLASSES} "
            f"back (or train the run again)"
        )


def _named_label(examples: Path, k: int) -> str | None:
    """The first label in ``examples.csv`` that is not a class number 0..k-1, or None."""
    allowed = {str(c) for c in range(k)} | {""}  # an unknown true label is left empty
    try:
        with open(examples, encoding="utf-8", newline="") as f:
            rows = csv.reader(f)
            header = next(rows, [])
            columns = [header.index(c) for c in ("given_label", "predicted_label", "true_label") if c in header]
            for row in rows:
                for j in columns:
                    if j < len(row) and row[j] not in allowed:
                        return row[j]
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise InputError(f"cannot read {examples}: {e}") from None
    return None


def _read_model(path: Path) -> dict:
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 -- a damaged file is the user's now
        raise InputError(
            f"cannot read the model {path}: the file is corrupt or truncated ({type(e).__name__})"
        ) from None
    if not isinstance(saved, dict) or any(k not in saved for k in _MODEL_KEYS):
        raise InputError(f"{path} is not a memomentum model file (it lacks {', '.join(_MODEL_KEYS)})")
    return saved


def _run_kind(examples: Path) -> str:
    """``examples.csv`` names each example's table row (tables) or image file (image files)."""
    try:
        with open(examples, encoding="utf-8", newline="") as f:
            header = next(csv.reader(f), [])
    except OSError as e:
        raise InputError(f"cannot read {examples}: {e.strerror or e}") from None
    return "files" if "file" in header else "table" if "row" in header else "arrays"


def _feature_columns(d: Path, saved: dict) -> tuple[str, ...]:
    """The run's feature columns, by name, in the order the network reads them (``model.pt``
    records them for every table run)."""
    columns = saved.get("feature_columns")
    if not columns:
        raise InputError(
            f"{d / 'model.pt'} does not name the table's feature columns, so new rows "
            f"cannot be matched to them by name; train the run again with this version"
        )
    return tuple(str(c) for c in columns)


def network(run: FinishedRun, engine: Engine) -> torch.nn.Module:
    """The run's best network, built as the run builds it (the caller's random state kept)."""
    s = run.saved
    with torch.random.fork_rng(devices=[]):
        model = create_model(s["model"], input_shape=tuple(s["input_shape"]), num_classes=int(s["num_classes"]))
    model = engine.prepare(model)
    try:
        model.load_state_dict(s["state_dict"])
    except RuntimeError as e:
        first = str(e).strip().splitlines()[0]
        raise InputError(
            f"the weights in {run.directory / MODEL} do not fit memomentum's {s['model']} network "
            f"({first}); a run trained with its own network function cannot be loaded by name"
        ) from None
    return model.eval()


def device_name(device) -> str | None:
    """``device`` as :func:`~.training.engine.choose_device` takes it: None, ``"auto"``,
    ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or a ``torch.device`` of those; anything else is
    refused here rather than by torch."""
    from ...config import DEVICES

    if device is None:
        return None
    text = str(device) if isinstance(device, torch.device) else device
    if isinstance(text, str) and text.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(
            f"device {text!r} was asked for, but PyTorch sees no CUDA GPU; use device='cpu', or leave device out"
        )
    if isinstance(text, str) and text in DEVICES:
        return text
    if isinstance(text, str) and text.startswith("cuda:") and text[5:].isdigit():
        if int(text[5:]) >= torch.cuda.device_count():
            raise InputError(
                f"device {text!r} is not present: PyTorch sees {torch.cuda.device_count()} CUDA GPUs; "
                f"use cpu, or a GPU it sees"
            )
        return text
    raise InputError(
        f"unknown device {device!r}; choose one of {', '.join(DEVICES)} (or cuda:N), or leave it out "
        f"for the device the run trained on"
    )


def describe(run: FinishedRun) -> tuple[str, str]:
    """What the run trained on, and what it can predict from, in words."""
    shape = tuple(run.saved["input_shape"])
    if run.kind == "table":
        cols = run.feature_columns or ()
        return (
            f"a table with the feature columns {first_few(list(cols), 10)}",
            f"a table (.csv, .parquet) with those columns, an .npz file or an array of {len(cols)} features",
        )
    if run.kind == "files":
        return (
            "image files",
            "a folder of images, image files, a .txt file listing them, a table with an image column "
            "(.csv, .parquet, parquet shards) or an array of images",
        )
    if len(shape) == 1:
        return f"arrays of {shape[0]} features", f"an .npz file or an array of {shape[0]} features"
    c, h, w = shape
    return (
        f"images of {h} x {w} pixels with {c} channel{'s' if c > 1 else ''}",
        "an .npz file or an array of such images",
    )


def wrong_kind(run: FinishedRun, where: str, what: str) -> InputError:
    """The sentence for data of another kind than the run trained on."""
    trained, accepts = describe(run)
    return InputError(f"{where} is {what}, but the run in {run.directory} trained on {trained}; give {accepts}")

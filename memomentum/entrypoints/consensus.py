"""The verdicts of several runs on the same data combined per example: ``consensus.csv``.

Runs of one dataset with the same noisy labels (several training seeds, the noise kept by
``--noise-seed``) each give a verdict on the examples of their training part. Per example of
the training data (``index`` as in ``examples.csv``: the position in the whole training set,
so runs whose splits differ still line up) :func:`consensus_table` gives

* ``n_runs``: the runs that give the example a verdict (each run holds a tenth out for
  validation, so an example may be missing from some);
* ``issue_share``: the share of those runs that call it a label issue;
* ``mean_label_quality``: the mean of their ``label_quality``;
* ``majority_label`` and ``majority_share``: the label most of them predict and the share
  that predict it (ties go to the label with the larger summed confidence, then the first);

beside ``index``, ``file`` (image files), ``row`` (tables), ``given_label`` and
``true_label`` (where the runs know it). Rows are in review order: the largest
``issue_share`` first, then the lowest ``mean_label_quality``, then ``index``.

Runs on other data, with other noisy labels or other class names are refused with one
sentence: their verdicts are about different things. "The same data" is judged from each
run's ``summary.json`` (``data_fingerprint``: the sizes and digests of the features, files,
labels and noisy labels), and for runs written before it existed from ``config.json``'s
dataset and noise settings; the given labels and files of the examples that several runs
share must agree in every case.

Reads only the run directories' text files: no torch, no pandas.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..base.atomic import atomic_file
from ..base.errors import InputError
from ..runner import files

CONSENSUS = "consensus.csv"
COLUMNS = (
    "index",
    "file",
    "row",
    "given_label",
    "n_runs",
    "issue_share",
    "mean_label_quality",
    "majority_label",
    "majority_share",
    "true_label",
)
# summary.json's data_fingerprint keys that name the examples (then come the noisy labels, the
# true labels; the test set's keys are not compared: the verdicts are on the training data)
_DATA_KEYS = ("n_train", "example_shape", "features", "files")
# config.json keys naming the data and the noise, for runs without a fingerprint
_CONFIG_DATA_KEYS = ("dataset", "label_column", "train_set")
_CONFIG_NOISE_KEYS = ("noise_type", "noise_rate", "transition_path", "human_labels_path", "human_labels_key")


@dataclass
class _Run:
    """What consensus reads of one finished run."""

    directory: Path
    summary: dict
    config: dict
    class_names: list[str] | None
    columns: dict[str, np.ndarray]  # examples.csv, as strings


def consensus_table(run_dirs) -> dict[str, np.ndarray]:
    """The per-example consensus of the runs in ``run_dirs`` (see the module's docstring).

    Returns:
        Column name -> array, one element per example that some run gives a verdict on, in
        review order. ``index``, ``n_runs`` and (without class names) the labels are int64,
        the shares and qualities float64; ``file`` (image files), ``row`` (tables) and
        ``true_label`` (where every run knows the true labels) only where the runs have them.

    Raises:
        InputError: a directory that is not a finished run, one named twice, or runs on
            other data, with other noisy labels or other class names.
    """
    runs = [_read_run(Path(d)) for d in _distinct(run_dirs)]
    _check_same_data(runs)
    table = _combine(runs)
    order = np.lexsort((table["index"], table["mean_label_quality"], -table["issue_share"]))
    return {name: table[name][order] for name in COLUMNS if name in table}


def write_consensus(run_dirs, out_dir, *, table: dict[str, np.ndarray] | None = None) -> Path:
    """Write :func:`consensus_table` to ``out_dir/consensus.csv`` atomically (created with its
    parents; never into one of the runs, whose directories hold only a run's files).
    ``table``: the consensus of these runs when already computed. Returns the file's path."""
    out_dir = Path(out_dir)
    dirs = _distinct(run_dirs)
    if any(out_dir.resolve() == Path(d).resolve() for d in dirs):
        raise InputError(
            f"--out {out_dir} is one of the run directories, which hold only a run's own files; "
            f"write the consensus to another folder"
        )
    table = consensus_table(dirs) if table is None else table
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"--out {out_dir} is a file, not a folder; choose a folder for {CONSENSUS}")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError(f"cannot create the folder {out_dir}: {e.strerror or e}") from None
    path = out_dir / CONSENSUS
    with atomic_file(path) as f:
        _write_csv(f, table)
    return path


def describe(table: dict[str, np.ndarray], n_runs: int) -> str:
    """One line on a consensus: its examples, and the issues every run that judged them agrees on."""
    judged = table["n_runs"] > 1
    agreed = int((judged & (table["issue_share"] == 1)).sum())
    return (
        f"consensus of {n_runs} run{'s' if n_runs > 1 else ''}: {table['index'].size:,} examples, {agreed:,} "
        f"called a label issue by every run (of those judged by two or more)"
    )


# -- reading the runs ---------------------------------------------------------------------


def _distinct(run_dirs) -> list:
    dirs = [run_dirs] if isinstance(run_dirs, (str, Path)) else list(run_dirs)
    if not dirs:
        raise InputError("consensus needs at least one run directory")
    seen: dict[Path, str] = {}
    for d in dirs:
        key = Path(d).resolve()
        if key in seen:
            raise InputError(f"the run directory {d} is given twice; each run counts once in a consensus")
        seen[key] = str(d)
    return dirs


def _read_run(directory: Path) -> _Run:
    if not directory.is_dir():
        raise InputError(f"there is no run directory {directory}")
    if not files.is_finished(directory) or not (directory / files.EXAMPLES).is_file():
        missing = files.SUMMARY if not files.is_finished(directory) else files.EXAMPLES
        raise InputError(
            f"{directory} is not a finished memomentum run (no {missing}); consensus combines finished runs"
        )
    summary = files.read_json(directory / files.SUMMARY)
    config = files.read_json(directory / files.CONFIG) if (directory / files.CONFIG).is_file() else {}
    names = files.read_json(directory / files.CLASSES) if (directory / files.CLASSES).is_file() else None
    return _Run(
        directory,
        summary,
        config,
        None if names is None else [str(n) for n in names],
        _read_examples(directory / files.EXAMPLES),
    )


def _read_examples(path: Path) -> dict[str, np.ndarray]:
    """``examples.csv``'s columns as arrays of strings (labels may be class names)."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise InputError(f"cannot read {path}: {e}") from None
    header = rows[0] if rows else []
    need = ("index", "given_label", "predicted_label", "confidence", "is_label_issue", "label_quality")
    lacking = [c for c in need if c not in header]
    if lacking:
        raise InputError(f"{path} is not a memomentum examples.csv (it has no {lacking[0]} column)")
    body = [r for r in rows[1:] if r]
    if any(len(r) != len(header) for r in body):
        raise InputError(f"{path} has rows with the wrong number of fields: the file is damaged")
    table = np.array(body, dtype=str).reshape(len(body), len(header))
    return {name: table[:, i] for i, name in enumerate(header)}


# -- the same data? -------------------------------------------------------------------------


def _check_same_data(runs: list[_Run]) -> None:
    """Refuse, in one sentence, runs whose verdicts are not about the same examples and labels."""
    first = runs[0]
    for run in runs[1:]:
        pair = f"{first.directory} and {run.directory}"
        if run.class_names != first.class_names:
            raise InputError(
                f"the runs {pair} name their classes differently ({files.CLASSES}), so their verdicts "
                f"cannot be combined; give runs of one dataset"
            )
        what = _difference(first, run)
        if what is not None:
            kind, detail = what
            if kind == "data":
                raise InputError(
                    f"the runs {pair} were trained on other data ({detail} differ), so their verdicts "
                    f"cannot be combined; give runs of one dataset"
                )
            raise InputError(
                f"the runs {pair} were trained on other noisy labels ({detail}), so their verdicts "
                f"cannot be combined; give runs with the same labels (synthetic noise follows --seed "
                f"unless --noise-seed fixes it)"
            )


def _difference(a: _Run, b: _Run) -> tuple[str, str] | None:
    """``("data", what)`` or ``("labels", what)`` where runs ``a`` and ``b`` differ, else None."""
    fa, fb = a.summary.get("data_fingerprint"), b.summary.get("data_fingerprint")
    if isinstance(fa, dict) and isinstance(fb, dict):
        data = [k for k in _DATA_KEYS if fa.get(k) != fb.get(k)]
        if data:
            return "data", _words(data)
        if fa.get("noisy_labels") != fb.get("noisy_labels"):  # the labels trained on (given or made noisy)
            return "labels", "the noisy labels of the training set differ"
        if fa.get("labels") != fb.get("labels"):  # the same noisy labels made from other true labels
            return "data", _words(["labels"])
    else:  # runs written before the fingerprint: their settings
        data = [k for k in _CONFIG_DATA_KEYS if a.config.get(k) != b.config.get(k)]
        if data:
            return "data", _words(data)
        noise = [k for k in _CONFIG_NOISE_KEYS if a.config.get(k) != b.config.get(k)]
        if noise or _noise_seed(a) != _noise_seed(b):
            return "labels", f"their noise settings differ ({', '.join(noise) or 'the noise seed'})"
    return _shared_examples_differ(a, b)


def _noise_seed(run: _Run):
    if run.config.get("noise_type") == "none" or run.config.get("human_labels_path"):
        return None  # no synthetic noise: the seed draws none
    seed = run.config.get("noise_seed")
    return run.config.get("seed") if seed is None else seed


_KEY_WORDS = {
    "n_train": "the number of training examples",
    "example_shape": "the shape of an example",
    "labels": "the labels before noise",
    "features": "the features",
    "files": "the image files",
    "dataset": "the datasets",
    "label_column": "the label columns",
    "train_set": "the training sets",
}


def _words(keys: list[str]) -> str:
    return " and ".join(_KEY_WORDS[k] for k in keys)


def _shared_examples_differ(a: _Run, b: _Run) -> tuple[str, str] | None:
    """The examples both runs hold must have the same file (row) and given label in both."""
    ia, ib = _indices(a), _indices(b)
    common, pa, pb = np.intersect1d(ia, ib, assume_unique=True, return_indices=True)
    for column in ("file", "row"):
        if (column in a.columns) != (column in b.columns) or (
            column in a.columns and not np.array_equal(a.columns[column][pa], b.columns[column][pb])
        ):
            return "data", "the image files" if column == "file" else "the table rows"
    differ = np.flatnonzero(a.columns["given_label"][pa] != b.columns["given_label"][pb])
    if differ.size:
        return "labels", (
            f"{differ.size} of the {common.size} examples both hold have another given label, "
            f"the first at index {common[differ[0]]}"
        )
    return None


def _indices(run: _Run) -> np.ndarray:
    try:
        index = run.columns["index"].astype(np.int64)
    except ValueError:
        raise InputError(f"{run.directory / files.EXAMPLES} has an index that is not a whole number") from None
    if index.size and (np.any(index < 0) or np.unique(index).size != index.size):
        raise InputError(f"{run.directory / files.EXAMPLES} has a negative or repeated index: the file is damaged")
    return index


# -- combining ------------------------------------------------------------------------------


def _combine(runs: list[_Run]) -> dict[str, np.ndarray]:
    """The consensus columns over the union of the runs' examples, in index order."""
    indices = [_indices(r) for r in runs]
    union = np.unique(np.concatenate(indices))
    n, k = union.size, len(runs)
    predicted = np.full((n, k), -1, dtype=np.int64)  # label codes; -1: no verdict from that run
    confidence, issue, quality = (np.full((n, k), np.nan) for _ in range(3))
    numbered = runs[0].class_names is None
    predictions = [_labels(r, "predicted_label", numbered) for r in runs]
    label_values = np.unique(np.concatenate(predictions))  # in label order (numbers, or names A-Z)
    out: dict[str, np.ndarray] = {"index": union}
    for j, (run, index) in enumerate(zip(runs, indices)):
        at = np.searchsorted(union, index)
        predicted[at, j] = np.searchsorted(label_values, predictions[j])
        for target, column in ((confidence, "confidence"), (issue, "is_label_issue"), (quality, "label_quality")):
            target[at, j] = _floats(run, column)
        for column in ("given_label", "file", "row", "true_label"):
            if all(column in r.columns for r in runs):
                out.setdefault(column, np.full(n, "", dtype=run.columns[column].dtype))
                out[column] = _widen(out[column], run.columns[column])
                out[column][at] = run.columns[column]
    has = predicted >= 0
    out["n_runs"] = has.sum(axis=1).astype(np.int64)
    out["issue_share"] = np.nanmean(issue, axis=1)
    out["mean_label_quality"] = np.nanmean(quality, axis=1)
    majority, share = _majority(predicted, np.where(has, confidence, 0.0), out["n_runs"])
    out["majority_label"] = label_values[majority]
    out["majority_share"] = share
    return _typed(out, numbered=numbered)


def _labels(run: _Run, column: str, numbered: bool) -> np.ndarray:
    """A label column: class numbers (int64) where the run has no class names, else the names."""
    if not numbered:
        return run.columns[column]
    try:
        return run.columns[column].astype(np.int64)
    except ValueError:
        raise InputError(
            f"{run.directory / files.EXAMPLES} has a {column} that is not a class number, and the "
            f"run has no {files.CLASSES} naming its classes"
        ) from None


def _floats(run: _Run, column: str) -> np.ndarray:
    try:
        return run.columns[column].astype(np.float64)
    except ValueError:
        raise InputError(f"{run.directory / files.EXAMPLES} has a {column} that is not a number") from None


def _widen(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a`` as a string array wide enough to hold ``b``'s strings too."""
    return a if a.dtype.itemsize >= b.dtype.itemsize else a.astype(b.dtype)


def _majority(predicted: np.ndarray, confidence: np.ndarray, n_runs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the most predicted label code and the share of runs predicting it; ties go to
    the larger summed confidence, then to the first label. O(rows x runs^2), runs being few."""
    votes = np.zeros(predicted.shape, dtype=np.int64)
    summed = np.zeros(predicted.shape)
    for j in range(predicted.shape[1]):
        same = (predicted == predicted[:, [j]]) & (predicted >= 0)
        votes[:, j] = np.where(predicted[:, j] >= 0, same.sum(axis=1), -1)
        summed[:, j] = np.where(same, confidence, 0.0).sum(axis=1)
    # votes are whole numbers and a summed confidence is at most the votes (<= runs): scaled
    # below one, the sum decides only between equal votes
    score = votes + summed / (predicted.shape[1] + 1)
    score = np.where(predicted >= 0, score, -np.inf)
    # between equal scores the smallest label code wins: the columns tried in label order
    best = np.full(predicted.shape[0], -np.inf)
    code = np.full(predicted.shape[0], np.iinfo(np.int64).max)
    for j in range(predicted.shape[1]):
        better = (score[:, j] > best) | ((score[:, j] == best) & (predicted[:, j] < code))
        best = np.where(better, score[:, j], best)
        code = np.where(better, predicted[:, j], code)
    return code, votes.max(axis=1) / n_runs


def _typed(out: dict[str, np.ndarray], *, numbered: bool) -> dict[str, np.ndarray]:
    """Labels as int64 where the runs number their classes (no class names), rows as int64;
    true labels unknown for an example are -1 (numbers) or empty (names)."""
    if "row" in out:
        out["row"] = out["row"].astype(np.int64)
    if numbered:
        out["given_label"] = out["given_label"].astype(np.int64)
        if "true_label" in out:
            out["true_label"] = np.where(out["true_label"] == "", "-1", out["true_label"]).astype(np.int64)
    return out


def _write_csv(f, table: dict[str, np.ndarray]) -> None:
    names = [c for c in COLUMNS if c in table]
    writer = csv.writer(f, lineterminator="\n")
    writer.writerow(names)
    shown = {c: _shown(c, table[c]) for c in names}
    writer.writerows(zip(*(shown[c] for c in names)))


def _shown(column: str, values: np.ndarray) -> list[str]:
    if column in ("issue_share", "mean_label_quality", "majority_share"):
        return [f"{v:.6f}" for v in values]
    if column == "true_label" and values.dtype.kind == "i":
        return ["" if v < 0 else str(v) for v in values]
    return [str(v) for v in values]

"""Predicting with a finished run: its best model on new data, exactly as the run predicts.

``memomentum predict RUN_DIR --dataset NEW --out FILE`` and ``memomentum.load(RUN_DIR)`` land
here. A finished run directory holds the best model (``model.pt``: the network's name, the
number of classes, the input shape, the normalisation and the weights), the class names
(``classes.json``) and the resolved configuration (``config.json``). The new data go the way
the run's own data went, so that the same examples give the same probabilities, bit for bit on
the CPU:

* the network is built as the run builds it (:func:`~.training.models.create_model`, then
  :meth:`Engine.prepare <.training.engine.Engine.prepare>` for the memory layout, then the
  weights), and the probabilities come from :meth:`Engine.predict_proba
  <.training.engine.Engine.predict_proba>` with the run's prediction chunk and CPU thread count;
* a table's feature columns are matched by name to the run's table and read as
  :mod:`.data.tables` reads them (float64, then float32), then standardised per feature;
* image files are decoded and resized as the packed store does (:mod:`.data.store`: Pillow,
  RGB, bilinear to the run's side, and re-encoded as the store's JPEG when the run's store was
  JPEG), read batch by batch (a folder of any size) and normalised by the streamed source;
* arrays (``.npz``) are checked and converted as the run's ``.npz`` reader does.

Whether the run trained on a table, on image files or on arrays is read from its
``examples.csv`` (a ``row`` column for tables, a ``file`` column for image files).

One caveat on "bit for bit": the CPU's matrix kernels are chosen by the number of rows in a
prediction chunk, so a chunk of a handful of examples (measured here: 10 or fewer, against
128) can differ from a full one in the last bits. The run predicts its training part in chunks
of 128; an example predicted in a chunk of more than 10 examples gets exactly the run's
probabilities.
"""

from __future__ import annotations

import csv
import inspect
import math
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..base.atomic import atomic_file
from ..base.checks import first_few
from ..base.errors import InputError
from ..data.folders import IMAGE_EXTENSIONS
from ..data.registry import is_table_file, is_table_folder
from ..method.verdicts import verdict_columns
from ..runner.files import (
    CHECKPOINT,
    CLASSES,
    CONFIG,
    EXAMPLES,
    LOCK,
    MODEL,
    RUN_FILES,
    SUMMARY,
    is_finished,
    read_json,
)
from ..training.engine import Engine, choose_device
from ..training.models import create_model
from ..training.sources import StreamedSource, to_device_data
from ..training.threads import available_cores, choose_threads

__all__ = ["Predictions", "Predictor", "load", "predict_to_file"]

OUT_SUFFIXES = (".csv", ".parquet")
_SHOWN = 10  # class names quoted in a message before "..."
_MODEL_KEYS = ("model", "num_classes", "input_shape", "mean", "std", "state_dict")
_NEEDED = (SUMMARY, MODEL, CONFIG, EXAMPLES)  # what predict reads of a run directory


def load(run_dir, *, device: str | None = None) -> Predictor:
    """The best model of the finished run in ``run_dir``, ready to predict.

    Parameters
    ----------
    run_dir : str or os.PathLike
        A directory written by ``memomentum run`` (or [`memomentum.run`][memomentum.entrypoints.api.run]).
    device : str or None, default None
        Where to predict: ``"cpu"``, ``"cuda"`` or ``"auto"``; None: the device the run trained on (its ``summary.json``),
        the CPU where that was a GPU and there is none here.

    Returns
    -------
    Predictor
        The run's best model: ``predict``, ``predict_proba``, ``predictions`` and
        ``classes_``, as ``memomentum predict`` uses it.

    Raises
    ------
    InputError
        The directory holds no finished run, or its files cannot be read.

    Examples
    --------
    >>> import memomentum
    >>> model = memomentum.load("runs/flowers")
    >>> model.predict("new-flowers.csv")
    """
    return Predictor(run_dir, device=device)


# ----------------------------------------------------------------------------- the run


@dataclass(frozen=True)
class _Run:
    """What a finished run directory says about its best model."""

    directory: Path
    saved: dict  # model.pt
    config: dict  # config.json
    class_names: tuple[str, ...] | None  # classes.json
    kind: str  # "table", "files" (image files) or "arrays"
    threads: int  # the run's CPU thread count
    device: str  # where the run trained: "cpu" or "cuda"


def _run_directory(run_dir) -> Path:
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
            else f"it holds {len(runs)} run director{'ies' if len(runs) > 1 else 'y'}, {_names(runs, 3)}: give "
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


def _read_run(run_dir) -> _Run:
    d = _run_directory(run_dir)
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
    return _Run(
        d,
        saved,
        config,
        None if names is None else tuple(str(n) for n in names),
        _run_kind(d / EXAMPLES),
        int(threads),
        device,
    )


def _listing(names) -> str:
    return ", ".join(names[:-1]) + " and " + names[-1]


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


def _feature_columns(run: _Run) -> tuple[str, ...]:
    """The run's feature columns, by name, in the order the network reads them (``model.pt``
    records them for every table run)."""
    columns = run.saved.get("feature_columns")
    if not columns:
        raise InputError(
            f"{run.directory / 'model.pt'} does not name the table's feature columns, so new rows "
            f"cannot be matched to them by name; train the run again with this version"
        )
    return tuple(str(c) for c in columns)


def _network(run: _Run, engine: Engine) -> torch.nn.Module:
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


def _classes(names: tuple[str, ...] | None, k: int) -> np.ndarray:
    """The run's labels: class numbers, or its class names (as numbers where every name
    is a number as a table reader writes it: ``3``, ``2.5``)."""
    if names is None:
        return np.arange(k)
    if all(_canonical_int(n) for n in names):
        return np.array([int(n) for n in names])
    if all(_number(n) is not None and str(float(n)) == n for n in names):
        return np.array([float(n) for n in names])
    return np.array(names, dtype=object)


def _canonical_int(text: str) -> bool:
    try:
        return str(int(text)) == text
    except ValueError:
        return False


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


# ----------------------------------------------------------------------------- what comes out


@dataclass
class Predictions:
    """The best model on every example of some data, in the data's order.

    Attributes
    ----------
    id_column : {"row", "file"}
        ``"row"`` (tables and arrays: the example's row, counted from 0) or ``"file"``
        (image files: the file's absolute path).
    ids : numpy.ndarray, shape (N,)
        The row numbers or file paths.
    probabilities : numpy.ndarray of float32, shape (N, K)
        The softmax of the network's logits.
    predicted : numpy.ndarray of int64, shape (N,)
        The class numbers of the most probable classes.
    confidence : numpy.ndarray of float32, shape (N,)
        The probability of the predicted class.
    given : numpy.ndarray of int64, shape (N,), or None
        The class number of each example's given label, -1 where it has none; None when the
        data carry no labels at all.
    source : str
        How messages name the data.
    """

    id_column: str
    ids: object
    probabilities: np.ndarray
    predicted: np.ndarray
    confidence: np.ndarray
    given: np.ndarray | None
    source: str

    def verdict(self, class_names=None) -> dict[str, np.ndarray] | None:
        """The run's verdict on the labelled examples (benchmark rule: confident where the
        prediction equals the given label), as
        :func:`memomentum.method.verdicts.verdict_columns` gives it; None without labels."""
        if self.given is None:
            return None
        have = self.given >= 0
        given, predicted = self.given[have], self.predicted[have]
        return verdict_columns(
            given=given,
            predicted=predicted,
            probabilities=self.probabilities[have],
            confident=predicted == given,
            class_names=class_names,
        )


class Predictor:
    """A finished run's best model, predicting as the run predicts (see the module's notes).

    Inputs ``X`` are what ``memomentum predict --dataset`` accepts: the path of a table
    (``.csv``, ``.parquet``), of an ``.npz`` file (array ``x``, optional labels ``y``), of a
    folder of images, of an image file, or of a ``.txt`` file listing image files; a list of
    image file paths; a pandas DataFrame with the run's feature columns (or, for a run on image
    files, a column of image file paths); or a numpy array:
    features (N, D) in the order of the run's feature columns, or images (N, H, W[, C]) with
    pixel values 0..255 (for a run on image files, decoded image files of any size: they are
    resized as the files would be).

    Parameters
    ----------
    run_dir : str or os.PathLike
        A finished run directory.
    device : str or None, default None
        ``"cpu"``, ``"cuda"``, ``"auto"`` or None, as in [`load`][memomentum.entrypoints.predictor.load].

    Attributes
    ----------
    classes_ : numpy.ndarray, shape (K,)
        The run's labels in class-number order (class names, or numbers).
    feature_columns_ : tuple of str or None
        A table run's feature columns, in the order the network reads them (None for other
        runs).
    kind : {"table", "files", "arrays"}
        What the run trained on: a table, image files or arrays.
    run_dir : pathlib.Path
        The run directory.
    """

    def __init__(self, run_dir, *, device: str | None = None):
        run = _read_run(run_dir)
        self._run = run
        self.run_dir = run.directory
        self.kind = run.kind
        self.classes_ = _classes(run.class_names, int(run.saved["num_classes"]))
        self.feature_columns_ = _feature_columns(run) if run.kind == "table" else None
        name = _device_name(device) or ("cuda" if run.device == "cuda" and torch.cuda.is_available() else "cpu")
        self.engine = Engine(
            device=choose_device(name), augment="none", batch_size=1, predict_chunk=run.config.get("predict_chunk")
        )
        self.model = _network(run, self.engine)

    def predict_proba(self, X) -> np.ndarray:
        """Softmax probabilities.

        Parameters
        ----------
        X : str, os.PathLike, list of str, pandas.DataFrame or numpy.ndarray
            The data (see the class's description), N examples.

        Returns
        -------
        numpy.ndarray of float32, shape (N, K)
            Columns in the order of [`classes_`][memomentum.entrypoints.predictor.Predictor].
        """
        return self.predictions(X).probabilities

    def predict(self, X) -> np.ndarray:
        """The predicted label of every example.

        Parameters
        ----------
        X : str, os.PathLike, list of str, pandas.DataFrame or numpy.ndarray
            The data (see the class's description), N examples.

        Returns
        -------
        numpy.ndarray, shape (N,)
            Entries of [`classes_`][memomentum.entrypoints.predictor.Predictor].
        """
        return self.classes_[self.predictions(X).predicted]

    def predictions(self, X, *, label_column: str | None = None, progress: bool = False) -> Predictions:
        """Everything ``memomentum predict`` writes, for ``X``: probabilities, predicted
        classes, and the given labels where the data carry them (a table's label column,
        by default the run's, ``--label-column``; an ``.npz``'s ``y``; the class folders of
        an image folder).

        Parameters
        ----------
        X : str, os.PathLike, list of str, pandas.DataFrame or numpy.ndarray
            The data (see the class's description), N examples.
        label_column : str or None, default None
            A table's column of given labels; default: the run's.
        progress : bool, default False
            Show a progress bar while image files are read.

        Returns
        -------
        Predictions
        """
        inputs = _read_inputs(self, X, label_column)
        source = self._source(inputs)
        probs = self._probabilities(source, progress and self.kind == "files")
        conf, pred = probs.max(dim=1)  # as the run's final predictions
        return Predictions(
            inputs.id_column,
            inputs.ids,
            probs.cpu().numpy(),
            pred.cpu().numpy(),
            conf.cpu().numpy(),
            inputs.given,
            inputs.source,
        )

    def _source(self, inputs):
        s, engine = self._run.saved, self.engine
        kw = dict(mean=s["mean"], std=s["std"], device=engine.device, channels_last=engine.channels_last)
        if inputs.files is not None:  # decoded batch by batch, as a streamed run reads its store
            return StreamedSource(inputs.files, workers=0, **kw)
        return to_device_data(inputs.x, **kw)

    def _probabilities(self, source, progress: bool) -> torch.Tensor:
        threads = torch.get_num_threads()
        if self.engine.device.type == "cpu":
            torch.set_num_threads(self._run.threads)  # the thread count fixes the order of float sums
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(source), desc="predicting", unit="img", file=sys.stderr, dynamic_ncols=True)
            source = _Counted(source, bar)
        try:
            return self.engine.predict_proba(
                self.model, self.model, source, num_classes=int(self._run.saved["num_classes"])
            )
        finally:
            torch.set_num_threads(threads)
            if bar is not None:
                bar.close()


def _device_name(device) -> str | None:
    """``device`` as :func:`~.training.engine.choose_device` takes it: None, ``"auto"``,
    ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or a ``torch.device`` of those; anything else is
    refused here rather than by torch."""
    from ..config import DEVICES

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


class _Counted:
    """A data source that advances a progress bar by every batch it yields."""

    def __init__(self, source, bar):
        self.source, self.bar = source, bar

    def __len__(self) -> int:
        return len(self.source)

    @property
    def example_shape(self):
        return self.source.example_shape

    def batches(self, index, size, **kw):
        for xb in self.source.batches(index, size, **kw):
            self.bar.update(len(xb))
            yield xb


# ----------------------------------------------------------------------------- what goes in


@dataclass
class _Inputs:
    """New data as the network will read it: features or images in memory (``x``) or image
    files read batch by batch (``files``), the examples' ids and their given labels."""

    x: np.ndarray | None
    files: ImageFiles | None
    id_column: str
    ids: object
    given: np.ndarray | None
    source: str


def _read_inputs(pred: Predictor, X, label_column: str | None) -> _Inputs:
    _refuse_non_data(X)
    is_path = isinstance(X, (str, os.PathLike))
    is_table = is_path and (is_table_file(str(X)) or is_table_folder(str(X)))
    if label_column is not None and not _is_frame(X) and not is_table:
        shown = X if is_path else "the given data"
        raise InputError(
            f"--label-column names the label column of a table (.csv, .parquet); {shown} is not a "
            f"table, so it would be ignored; leave --label-column out"
        )
    if is_path:
        return _path_inputs(pred, str(X), label_column)
    if isinstance(X, np.ndarray) and X.ndim == 1 and X.size and all(isinstance(v, str) for v in X.tolist()):
        X = X.tolist()  # image file paths in an array, as in a list
    if isinstance(X, (list, tuple)) and X and all(isinstance(v, (str, os.PathLike)) for v in X):
        not_images = [str(v) for v in X if not image_suffix(str(v))]
        if not_images:
            raise InputError(
                f"{not_images[0]} is not an image file ({', '.join(IMAGE_EXTENSIONS)}); several inputs "
                f"must all be image files"
            )
        return _file_inputs(pred, [str(v) for v in X])
    if _is_frame(X):
        if pred.kind == "files":
            return _frame_image_inputs(pred, X, label_column)
        return _table_inputs(pred, X, "the DataFrame", label_column)
    return _array_inputs(pred, X, None, "the given data", "X")


def _refuse_non_data(X) -> None:
    """What cannot be data at all (None, one number, an empty path) is named as such, not
    taken for an array that "holds no examples" or for the working directory."""
    what = "a path, a list of image files, a DataFrame or an array"
    if isinstance(X, (str, os.PathLike)) and not str(X).strip():
        raise InputError(f"X is an empty path; give {what}")
    if X is None or isinstance(X, (bool, int, float, complex, bytes, dict, set, np.generic)):
        shown = X.item() if isinstance(X, np.generic) else X
        got = "None" if X is None else f"the {type(shown).__name__} {shown!r}"
        raise InputError(f"X must be the data to predict ({what}), got {got}")
    if hasattr(X, "toarray") and hasattr(X, "nnz"):
        raise InputError(f"X is a sparse matrix ({type(X).__name__}); give a dense array (X.toarray())")
    if type(X).__module__.split(".")[0] == "pandas" and not hasattr(X, "columns"):
        raise InputError(
            f"X is a pandas {type(X).__name__}, one column or one row; give a DataFrame (one row of "
            f"a frame: frame.iloc[[i]], with two brackets)"
        )


def _is_frame(X) -> bool:
    return type(X).__module__.split(".")[0] == "pandas" and hasattr(X, "columns")


def _path_inputs(pred: Predictor, text: str, label_column: str | None) -> _Inputs:
    p = Path(text.strip()).expanduser()
    name = text.strip().lower()
    if pred.kind == "files" and ((is_table_file(name) and p.is_file()) or is_table_folder(str(p))):
        return _image_table_inputs(pred, p, label_column)
    if is_table_file(name):
        if not p.is_file():
            raise InputError(f"no table found at {p}")
        if pred.kind != "table":  # before reading it: the run cannot use it anyway
            raise _wrong_kind(pred, str(p), "a table")
        from ..data.tables import read_frame

        return _table_inputs(
            pred, read_frame(p, label_column=_label_column_of(pred, label_column)), str(p), label_column
        )
    if name.endswith(".npz"):
        return _npz_file_inputs(pred, p)
    if p.is_dir():
        return _folder_inputs(pred, p)
    if name.endswith(".txt"):
        return _list_inputs(pred, p)
    if image_suffix(name):
        return _file_inputs(pred, [str(p)])
    raise InputError(
        f"cannot predict from {text}: give a table (.csv, .parquet), an .npz file, a folder of images, "
        f"image files ({', '.join(IMAGE_EXTENSIONS)}) or a .txt file listing image files"
    )


def _describe(pred: Predictor) -> tuple[str, str]:
    """What the run trained on, and what it can predict from, in words."""
    shape = tuple(pred._run.saved["input_shape"])
    if pred.kind == "table":
        cols = _table_columns(pred)
        return (
            f"a table with the feature columns {_names(cols)}",
            f"a table (.csv, .parquet) with those columns, an .npz file or an array of {len(cols)} features",
        )
    if pred.kind == "files":
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


def _wrong_kind(pred: Predictor, where: str, what: str) -> InputError:
    trained, accepts = _describe(pred)
    return InputError(f"{where} is {what}, but the run in {pred.run_dir} trained on {trained}; give {accepts}")


def _names(names, shown: int = _SHOWN) -> str:
    return first_few([str(n) for n in names], shown)


# -- tables


def _table_inputs(pred: Predictor, frame, where: str, label_column: str | None) -> _Inputs:
    if pred.kind != "table":
        raise _wrong_kind(pred, where, "a table")
    from ..data.tables import import_pandas, refuse_duplicate_columns

    pd = import_pandas(where)
    columns = [str(c).strip() for c in frame.columns]  # as the run's reader names them
    refuse_duplicate_columns(columns, where, label_column=_label_column_of(pred, label_column))
    frame = frame.set_axis(columns, axis=1)
    if len(frame) == 0:
        raise InputError(f"{where} has a header but no data rows")
    x = _table_features(_table_columns(pred), frame, where, pd)
    given = _table_labels(pred, frame, where, label_column)
    return _Inputs(x, None, "row", np.arange(len(frame)), given, where)


def _table_features(features: tuple[str, ...], frame, where: str, pd) -> np.ndarray:
    """The run's feature columns, by name, read as :mod:`.data.tables` reads them."""
    missing = [c for c in features if c not in frame.columns]
    if missing:
        hint = ""
        if len(missing) == len(features) and where == "the DataFrame":  # columns unnamed (0, 1, ...) or renamed
            hint = (
                " (none of them is there: name the frame's columns as the run's, or give its values as an "
                "array, in the order of feature_columns_)"
            )
        raise InputError(
            f"{where} has no column {_names([repr(c) for c in missing], 5)}; the run's model reads the "
            f"{len(features)} feature columns {_names(features)}, matched by name{hint}"
        )
    for c in features:
        dtype = frame[c].dtype
        if not (
            pd.api.types.is_bool_dtype(dtype)
            or (pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_complex_dtype(dtype))
        ):
            raise InputError(f"{where}'s column {c!r} is not numeric ({dtype}); the run's feature columns hold numbers")
    return _float32_features(frame[list(features)].to_numpy(dtype=np.float64, na_value=np.nan), features, where)


def _float32_features(x: np.ndarray, columns, where: str) -> np.ndarray:
    """float64 features -> float32, as the table reader converts them; every value finite."""
    bad = ~np.isfinite(x)
    if bad.any():
        r, j = (int(v) for v in np.argwhere(bad)[0])
        raise InputError(
            f"{where} has a missing or infinite value in column {columns[j]!r} at row {r}; every row "
            f"needs a finite number in each of the run's feature columns"
        )
    with np.errstate(over="ignore"):  # values beyond float32 are refused just below, in one sentence
        x32 = x.astype(np.float32)
    if not np.all(np.isfinite(x32)):
        raise InputError(f"{where} holds feature values too large for 32-bit floats (beyond 3.4e38); rescale them")
    return x32


def _table_columns(pred: Predictor) -> tuple[str, ...]:
    """A table run's feature columns (every run of kind "table" has them)."""
    assert pred.feature_columns_ is not None
    return pred.feature_columns_


def _table_labels(pred: Predictor, frame, where: str, label_column: str | None) -> np.ndarray | None:
    """The class numbers of a table's given labels (-1 where a row has none), or None
    when the table has no label column (by default the run's)."""
    column = _label_column_of(pred, label_column)
    if column not in frame.columns:
        if label_column is None:
            return None
        raise InputError(
            f"{where} has no column {column!r} (columns: {_names(list(frame.columns), 20)}); "
            f"--label-column names the column of given labels"
        )
    if column in _table_columns(pred):
        raise InputError(
            f"--label-column {column} is one of the run's feature columns; name the column of given labels"
        )
    col = frame[column]
    return _encode_given(col.to_numpy(dtype=object), col.isna().to_numpy(), pred, where)


# -- labels


def _label_column_of(pred: Predictor, label_column: str | None) -> str:
    """The column of given labels: the one named, else the run's own label column."""
    return (label_column if label_column is not None else pred._run.config.get("label_column") or "label").strip()


def _note_left_out(rows: np.ndarray, where: str, without: str) -> None:
    if len(rows):
        from ..data.tables import row_numbers

        print(
            f"memomentum: note: left out {len(rows)} row{'s' if len(rows) > 1 else ''} of {where} without "
            f"{without} ({row_numbers(rows)})",
            file=sys.stderr,
        )


def _label_keys(pred: Predictor) -> dict:
    """Class number by label: by name (``("s", name)``) and, for names that are numbers or
    for numbered classes, by value (``("n", 3.0)``), so that 3, 3.0 and "3" are one class."""
    names = pred._run.class_names
    if names is None:
        return {("n", float(k)): k for k in range(len(pred.classes_))}
    keys: dict[tuple[str, str | float], int] = {("s", n): k for k, n in reversed(list(enumerate(names)))}
    for k, n in reversed(list(enumerate(names))):
        number = _number(n)
        if number is not None:
            keys[("n", number)] = k
    return keys


def _class_of(value, keys: dict) -> int | None:
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_)):
        return keys.get(("n", float(value)))
    text = str(value).strip()
    k = keys.get(("s", text))
    if k is None and _number(text) is not None:
        k = keys.get(("n", _number(text)))
    return k


def _encode_given(values: np.ndarray, missing: np.ndarray, pred: Predictor, where: str) -> np.ndarray:
    keys = _label_keys(pred)
    out = np.full(len(values), -1, dtype=np.int64)
    for i, v in enumerate(values.tolist()):
        if missing[i]:
            continue
        k = _class_of(v, keys)
        if k is None:
            shown = v.item() if isinstance(v, np.generic) else v
            raise InputError(
                f"{where} has the label {shown!r} in row {i}, which is not one of the run's classes ({_allowed(pred)})"
            )
        out[i] = k
    return out


def _allowed(pred: Predictor) -> str:
    names = pred._run.class_names
    return f"0..{len(pred.classes_) - 1}" if names is None else _names(names)


# -- arrays and .npz files


def _npz_file_inputs(pred: Predictor, p: Path) -> _Inputs:
    from ..data.arrays import check_npz_archive

    check_npz_archive(p, "np.savez(path, x=...) (and y=..., the given labels)")
    try:
        with open(p, "rb") as f, np.load(f, allow_pickle=False) as npz:
            if "x" not in npz.files:
                present = ", ".join(sorted(npz.files)) or "none"
                raise InputError(
                    f"{p} has no array named 'x' (arrays present: {present}); it needs x and optionally "
                    f"y, the given labels"
                )
            x, y = npz["x"], (npz["y"] if "y" in npz.files else None)
    except InputError:
        raise
    except ValueError as e:
        if "pickle" in str(e).lower():  # numpy's advice to allow pickles is not for a user's data file
            raise InputError(f"{p} holds object arrays, which are not accepted; save numeric arrays only") from None
        raise InputError(f"{p} is not a readable .npz file ({e})") from None
    except Exception as e:  # noqa: BLE001 -- truncated members, zlib/CRC errors
        raise InputError(f"{p} is not a readable .npz file (corrupt or truncated: {type(e).__name__}: {e})") from None
    return _array_inputs(pred, x, y, str(p), "x")


def _array_inputs(pred: Predictor, x, y, where: str, key: str) -> _Inputs:
    x = np.asarray(x)
    if x.ndim == 0 or len(x) == 0:
        raise InputError(f"{key} in {where} holds no examples")
    if x.ndim == 1:
        raise InputError(
            f"{key} in {where} is one-dimensional (shape {x.shape}); give the examples as the rows of "
            f"a 2-D array (one example: {key}.reshape(1, -1))"
        )
    x = _decoded_images(pred, x, key, where) if pred.kind == "files" else _run_arrays(pred, x, key, where)
    given = None
    if y is not None:
        y = np.asarray(y)
        y = y[:, 0] if y.ndim == 2 and y.shape[1] == 1 else y
        if y.shape != (len(x),):
            raise InputError(
                f"{where} has {len(x)} examples in {key} but y of shape {y.shape}; give one label per example"
            )
        missing = np.isnan(y) if np.issubdtype(y.dtype, np.floating) else np.zeros(len(y), dtype=bool)
        given = _encode_given(y, missing, pred, f"y in {where}")
    return _Inputs(x, None, "row", np.arange(len(x)), given, where)


def _run_arrays(pred: Predictor, x: np.ndarray, key: str, where: str) -> np.ndarray:
    """Features or images for a table or arrays run, checked against the model's input
    and converted as the run's readers converted its own."""
    from ..data.arrays import npz_inputs

    shape = tuple(pred._run.saved["input_shape"])
    trained, accepts = _describe(pred)
    if len(shape) == 1:
        if x.ndim != 2 or x.shape[1] != shape[0]:
            got = f"{x.shape[1]} features" if x.ndim == 2 else f"shape {x.shape}"
            raise InputError(f"{key} in {where} has {got}, but the run trained on {trained}; give {accepts}")
        if pred.kind == "table":  # the table reader's conversion: float64, then float32
            if not (np.issubdtype(x.dtype, np.number) or x.dtype == np.bool_) or np.iscomplexobj(x):
                raise InputError(f"{key} in {where} has dtype {x.dtype}; it must be real numbers")
            return _float32_features(x.astype(np.float64), pred.feature_columns_, where)
        return npz_inputs(x, key, where)
    if x.ndim not in (3, 4):
        raise InputError(f"{key} in {where} has shape {x.shape}, but the run trained on {trained}; give {accepts}")
    x = npz_inputs(x, key, where)
    c, h, w = shape
    if x.shape[3] != c:
        raise InputError(
            f"{key} in {where} holds images with {x.shape[3]} channel{'s' if x.shape[3] > 1 else ''}, "
            f"but the run trained on {trained}; give images with {c} channel{'s' if c > 1 else ''}"
        )
    if x.shape[1:3] != (h, w):
        raise InputError(
            f"{key} in {where} holds images of {x.shape[1]} x {x.shape[2]} pixels, but the run trained "
            f"on {trained}; give images of {h} x {w} pixels"
        )
    return x


def _decoded_images(pred: Predictor, x: np.ndarray, key: str, where: str) -> np.ndarray:
    """Images in memory for a run on image files: taken as decoded image files, so they go
    the files' way (RGB, resized, stored), and give what the same files would give."""
    from ..data.arrays import npz_inputs
    from ..store.packing import import_pillow

    if x.ndim not in (3, 4) or (x.ndim == 4 and x.shape[3] not in (1, 3, 4)):
        raise InputError(
            f"{key} in {where} has shape {x.shape}, but the run trained on image files; give images "
            f"(N, H, W) or (N, H, W, C) with 1, 3 or 4 channels, or the image files"
        )
    x = npz_inputs(x, key, where)
    Image, files = import_pillow(), _image_files(pred, [])
    mode = {1: "L", 3: "RGB", 4: "RGBA"}[x.shape[3]]

    def stored(image: np.ndarray) -> np.ndarray:
        rgb = Image.fromarray(image[..., 0] if mode == "L" else image, mode).convert("RGB")
        return as_stored(
            np.asarray(rgb.resize((files.side, files.side), Image.Resampling.BILINEAR)),
            files.store_format,
            files.quality,
        )

    with ThreadPoolExecutor(files.threads) as pool:
        return np.stack(list(pool.map(stored, x)))


# -- image files


def _image_files(pred: Predictor, paths: list[str]) -> ImageFiles:
    side = int(pred._run.saved["input_shape"][1])  # the packed side (the images are square)
    return ImageFiles(paths, side=side, store_format=pred._run.config.get("store_format") or "jpeg")


def _file_inputs(pred: Predictor, paths: list[str], source: str | None = None) -> _Inputs:
    if pred.kind != "files":
        raise _wrong_kind(pred, source or paths[0], "image files" if len(paths) > 1 else "an image file")
    paths = [os.path.abspath(Path(p).expanduser()) for p in paths]
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing:
        raise InputError(f"{len(missing)} of the {len(paths)} image files cannot be found: {_names(missing, 3)}")
    source = source or (paths[0] if len(paths) == 1 else f"{len(paths)} image files")
    return _Inputs(None, _image_files(pred, paths), "file", paths, None, source)


def _image_table_inputs(pred: Predictor, p: Path, label_column: str | None) -> _Inputs:
    """A table with an image column (a ``.csv`` or ``.parquet`` file, parquet shards, a ``save_to_disk``
    folder), read as the run reads one (:mod:`.data.image_tables`): every row with an image,
    numbered over the table's parts in order, and its given label where the table has the
    label column (by default the run's)."""
    from ..data.image_tables import read_image_rows

    where = str(p)
    column = _label_column_of(pred, label_column)
    rows = read_image_rows(p, label_column=column)
    if rows is None:
        raise _wrong_kind(pred, where, "a table without an image column")
    if label_column is not None and rows.labels is None:
        raise InputError(f"{where} has no column {column!r}; --label-column names the column of given labels")
    print(f"memomentum: note: {rows.note}", file=sys.stderr)
    return _image_rows_inputs(pred, rows.paths, rows.labels, where, "an image")


def _is_missing_label(v) -> bool:
    """None, NaN (a float of Python's or numpy's) or blank text."""
    return (
        v is None or (isinstance(v, (float, np.floating)) and math.isnan(v)) or (isinstance(v, str) and not v.strip())
    )


def _image_rows_inputs(pred: Predictor, paths: list, labels, where: str, without: str) -> _Inputs:
    """Rows naming image files (None or empty: no image, left out with a note), numbered
    from 0, and their given labels (None: the data have no label column)."""
    keep = np.array([i for i, f in enumerate(paths) if isinstance(f, str) and f.strip()], dtype=np.int64)
    if len(keep) == 0:
        raise InputError(f"{where} has no row with {without}")
    _note_left_out(np.setdiff1d(np.arange(len(paths)), keep), where, without)
    given = None
    if labels is not None:
        labels = np.asarray(labels, dtype=object)
        missing = np.array([_is_missing_label(v) for v in labels], dtype=bool)
        given = _encode_given(labels, missing, pred, where)[keep]
    inputs = _file_inputs(pred, [paths[i].strip() for i in keep], source=where)
    return _Inputs(None, inputs.files, "row", keep, given, where)


def _frame_image_inputs(pred: Predictor, frame, label_column: str | None) -> _Inputs:
    """A DataFrame naming image files, for a run on image files: the column whose first value
    is the path of an image file (absolute, or relative to the working directory), every row
    with a path (numbered from 0 in the ``row`` column), and the given labels where the frame
    has the label column (by default the run's)."""
    where = "the DataFrame"
    columns = [str(c).strip() for c in frame.columns]
    column = _label_column_of(pred, label_column)
    found = [c for c, name in zip(frame.columns, columns) if name != column and _names_image_files(frame[c])]
    if len(found) != 1:
        raise InputError(
            f"{where} has {len(found)} columns of image file paths{_listed(found)}; a run on image "
            f"files predicts from one (paths of existing image files, absolute or relative to "
            f"{os.getcwd()})"
        )
    if column not in columns and label_column is not None:
        raise InputError(f"{where} has no column {column!r}; label_column names the column of given labels")
    labels = frame.iloc[:, columns.index(column)].tolist() if column in columns else None
    return _image_rows_inputs(pred, frame[found[0]].tolist(), labels, where, "an image path")


def _names_image_files(column) -> bool:
    """Whether a DataFrame column names image files (by their extensions; the files are
    looked for, relative to the working directory, once the column is chosen)."""
    from ..data.image_tables import names_image_files

    return names_image_files(iter(column))


def _listed(names) -> str:
    return f" ({', '.join(repr(str(n)) for n in names)})" if names else ""


def _list_inputs(pred: Predictor, p: Path) -> _Inputs:
    """A ``.txt`` file listing image files, one a line (relative to the list's folder)."""
    if not p.is_file():
        raise InputError(f"no list of image files found at {p}")
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"cannot read the list of image files {p}: {e}") from None
    named = [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]
    if not named:
        raise InputError(f"{p} lists no image files; give one path a line")
    missing = [n for n in named if not (p.parent / Path(n).expanduser()).is_file()]
    if missing and all(Path(n).expanduser().is_file() for n in missing):  # written relative to the working directory
        raise InputError(
            f"{len(missing)} of the {len(named)} image files listed in {p} cannot be found relative to "
            f"its folder {p.parent} ({_names(missing, 3)}), but exist relative to the working directory: "
            f"paths in a list are read relative to the list's folder, so write them relative to it, or "
            f"absolute"
        )
    return _file_inputs(pred, [str(p.parent / Path(n).expanduser()) for n in named], source=str(p))


def _folder_inputs(pred: Predictor, root: Path) -> _Inputs:
    where = str(root)  # as given, in messages; the files are named by their absolute paths
    if pred.kind != "files":
        raise _wrong_kind(pred, where, "a folder")
    root = Path(os.path.abspath(root))
    paths, skipped = _walk_images(root)
    if not paths:
        raise InputError(f"{where} holds no image files ({', '.join(IMAGE_EXTENSIONS)}) in it or its sub-folders")
    if skipped:
        print(
            f"memomentum: note: skipped {len(skipped)} file{'s' if len(skipped) > 1 else ''} in {where} that "
            f"{'are' if len(skipped) > 1 else 'is'} not images: {_names(skipped, 5)}",
            file=sys.stderr,
        )
    return _Inputs(None, _image_files(pred, paths), "file", paths, _folder_labels(pred, root, paths, where), where)


def _walk_images(root: Path) -> tuple[list[str], list[str]]:
    """Every image file under ``root`` (hidden files and folders left out), in sorted
    path order as the run's image-folder reader lists them, and the other files."""
    found: list[tuple[str, str]] = []  # (folder, file name)
    others: list[tuple[str, str]] = []

    def fail(e: OSError) -> None:
        raise InputError(f"could not list the folder {e.filename or root}: {e.strerror or e}")

    for dirpath, dirnames, filenames in os.walk(root, onerror=fail):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            if not name.startswith("."):
                (found if image_suffix(name) else others).append((dirpath, name))
    found.sort()
    return [os.path.join(d, n) for d, n in found], sorted(os.path.relpath(os.path.join(d, n), root) for d, n in others)


def _folder_labels(pred: Predictor, root: Path, paths: list[str], where: str) -> np.ndarray | None:
    """Given labels from a labelled folder (one sub-folder per class, optionally inside
    ``train/`` and ``test/``, as the run reads one): when some sub-folder is named after one
    of the run's classes, each image's class folder is its label (none for images beside
    the class folders); otherwise the folder carries no labels."""
    names = pred._run.class_names or tuple(str(k) for k in range(len(pred.classes_)))
    split = (root / "train").is_dir()
    firsts = []
    for path in paths:
        parts = Path(os.path.relpath(path, root)).parts
        if split and parts[0] in ("train", "test"):
            parts = parts[1:]
        firsts.append(parts[0] if len(parts) > 1 else None)
    index = {n: k for k, n in enumerate(names)}
    if not any(f in index for f in firsts if f is not None):
        return None
    unknown = sorted({f for f in firsts if f is not None and f not in index})
    if unknown:
        raise InputError(
            f"{where} has the class folder {unknown[0]!r}, which is not one of the run's classes "
            f"({_allowed(pred)}); in a folder of labelled images every sub-folder names a class"
        )
    return np.array([-1 if f is None else index[f] for f in firsts], dtype=np.int64)


# ----------------------------------------------------------------------------- image files


# The packed store's JPEG quality: what pack_images uses when the run's loader names none.
def _store_quality() -> int:
    from ..store.packing import pack_images

    return inspect.signature(pack_images).parameters["quality"].default


class ImageFiles:
    """Image files seen as the run's packed store holds them: uint8 (N, S, S, 3), each read
    (decoded, resized and, for a JPEG store, re-encoded) when a batch asks for it, by a few
    threads at once. Indexes as :class:`~.training.sources.StreamedSource` reads it."""

    ndim = 4
    dtype = np.dtype(np.uint8)

    def __init__(self, paths: list[str], *, side: int, store_format: str, threads: int | None = None):
        self.paths = list(paths)
        self.side = side
        self.store_format = store_format
        self.quality = _store_quality()
        self.threads = threads or max(1, min(available_cores(), 16))
        self.shape = (len(self.paths), side, side, 3)

    def __len__(self) -> int:
        return len(self.paths)

    def read(self, rows, out=None):
        rows = np.asarray(rows, dtype=np.int64)
        if out is None:
            out = np.empty((rows.size, *self.shape[1:]), dtype=np.uint8)
        view = out if isinstance(out, np.ndarray) else out.numpy()
        with ThreadPoolExecutor(min(self.threads, max(1, rows.size))) as pool:
            for i, pixels in enumerate(pool.map(self._pixels, [self.paths[r] for r in rows.tolist()])):
                view[i] = pixels
        return out

    def __getitem__(self, key) -> np.ndarray:
        return self.read(np.arange(len(self))[key])

    def _pixels(self, path: str) -> np.ndarray:
        from ..store.packing import decode_resized, error_reason, import_pillow

        try:
            pixels, _ = decode_resized(path, self.side, import_pillow())
        except InputError:
            raise
        except Exception as e:  # noqa: BLE001 -- decoders raise many types
            raise InputError(
                f"{path} cannot be decoded as an image ({error_reason(e)}); remove it or give only image files"
            ) from None
        return as_stored(pixels, self.store_format, self.quality)


def as_stored(pixels: np.ndarray, store_format: str, quality: int) -> np.ndarray:
    """Resized pixels as the packed store gives them back: the same array for a raw store,
    the store's JPEG (4:4:4, ``quality``) decoded again for a JPEG store."""
    if store_format != "jpeg":
        return pixels
    from ..store.packing import JPEG_SUBSAMPLING, import_simplejpeg

    sj = import_simplejpeg()
    blob = sj.encode_jpeg(
        np.ascontiguousarray(pixels), quality=quality, colorspace="RGB", colorsubsampling=JPEG_SUBSAMPLING
    )
    return sj.decode_jpeg(blob, colorspace="RGB")


def image_suffix(path: str) -> bool:
    return path.lower().endswith(IMAGE_EXTENSIONS)


# ----------------------------------------------------------------------------- writing


def _check_out(out: str, run_dir: Path, inputs: list[str | os.PathLike]) -> Path:
    if not isinstance(out, (str, os.PathLike)) or not str(out).strip():
        raise InputError(f"--out must be the path of the file to write (.csv or .parquet), got {out!r}")
    path = Path(out).expanduser()
    if not path.name.lower().endswith(OUT_SUFFIXES):
        raise InputError(
            f"--out {out}: predictions are written as a .csv or .parquet file; end the file name in one of them"
        )
    if path.resolve().parent == run_dir.resolve() and path.name in RUN_FILES:
        raise InputError(f"--out {out} is one of the run's own files; choose another --out")
    if path.is_dir():
        raise InputError(f"--out {out} is a directory; give the path of the file to write")
    _refuse_input_as_out(out, path, inputs)
    _refuse_out_in_run_dir(out, path)
    if path.name.lower().endswith(".parquet"):
        from ..data.tables import import_pandas

        import_pandas(out)
        try:
            import pyarrow  # noqa: F401 -- pandas' parquet engine
        except ImportError:
            raise InputError(
                f'writing {out} needs pyarrow, which is not installed; pip install "memomentum[tables]"'
            ) from None
    return path


def _refuse_input_as_out(out: str, path: Path, inputs: list[str | os.PathLike]) -> None:
    """--out must not be the data predicted (the same path, another spelling, a link to it),
    nor lie inside a table given as a folder of parquet shards, where it would become a
    shard of the table."""
    resolved = path.resolve()
    for given in inputs:
        source = Path(str(given).strip()).expanduser()
        if resolved == source.resolve() or (path.exists() and source.exists() and os.path.samefile(path, source)):
            raise InputError(
                f"--out {out} is the file given to --dataset; writing there would overwrite the input, "
                f"so choose another --out"
            )
        if source.is_dir() and is_table_folder(str(source)) and source.resolve() in resolved.parents:
            raise InputError(
                f"--out {out} lies inside the table {given} given to --dataset, where it would be read "
                f"as part of the table next time; choose another --out"
            )


def _refuse_out_in_run_dir(out: str, path: Path) -> None:
    """--out must not lie in a run directory (one holding summary.json, checkpoint.pt or
    run.lock; the predicting run's too): it would overwrite the run's files, or add a file
    that --overwrite and the report do not expect; nor below a file, where it cannot go."""
    for folder in path.resolve().parents:
        if _is(folder, "exists") and not _is(folder, "is_dir"):
            raise InputError(f"--out {out} cannot be written: {folder} is a file, not a folder; choose another --out")
        marker = next((name for name in (SUMMARY, CHECKPOINT, LOCK) if _is(folder / name, "is_file")), None)
        if marker is not None:
            raise InputError(
                f"--out {out} lies inside the run directory {folder} (it holds {marker}); predictions "
                f"are written outside run directories, so that no run's files are overwritten: choose "
                f"another --out"
            )


def _is(path: Path, test: str) -> bool:
    """``path.exists()`` / ``is_dir()`` / ``is_file()``, False where the folder cannot be
    looked into (a folder of another user): writing there fails later with its own reason."""
    try:
        return getattr(path, test)()
    except OSError:
        return False


def _columns(p: Predictions, classes: np.ndarray, *, probabilities: bool) -> dict[str, list]:
    """The output table's columns: the example's row or file, the prediction, its
    confidence, the probabilities on request, and the verdict where labels are given."""
    names = [str(c) for c in classes]
    cols: dict[str, list] = {
        p.id_column: list(np.asarray(p.ids).tolist()),
        "predicted_label": classes[p.predicted].tolist(),
        "confidence": p.confidence.astype(np.float64).tolist(),
    }
    if probabilities:
        for k, name in enumerate(names):
            cols[f"p_{name}"] = p.probabilities[:, k].astype(np.float64).tolist()
    verdict = p.verdict(classes)
    if verdict is not None and p.given is not None:  # (a verdict is there exactly when labels are given)
        have = np.flatnonzero(p.given >= 0)
        for name, values in (
            ("given_label", verdict["given_label"]),
            ("is_label_issue", verdict["is_label_issue"].astype(np.int64)),
            ("label_quality", verdict["label_quality"]),
        ):
            column = [None] * len(p.predicted)
            for i, v in zip(have.tolist(), np.asarray(values).tolist()):
                column[i] = v.item() if isinstance(v, np.generic) else v  # 3, not numpy's np.int64(3)
            cols[name] = column
    return cols


def _write(path: Path, cols: dict[str, list]) -> None:
    floats = {name for name in cols if name in ("confidence", "label_quality") or name.startswith("p_")}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.name.lower().endswith(".parquet"):
            _write_parquet(path, cols)
            return
        with atomic_file(path) as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(list(cols))
            for row in zip(*cols.values()):
                w.writerow(["" if v is None else f"{v:.6f}" if name in floats else v for name, v in zip(cols, row)])
    except OSError as e:
        raise InputError(f"cannot write {path}: {e.strerror or e}") from None


def _write_parquet(path: Path, cols: dict[str, list]) -> None:
    import io

    import pandas as pd

    def whole(values) -> bool:  # a column of whole numbers with gaps: nullable integers, not floats
        return all(v is None or isinstance(v, int) for v in values) and None in values

    frame = pd.DataFrame(
        {
            name: pd.array(values, dtype="Int64") if name == "is_label_issue" or whole(values) else values
            for name, values in cols.items()
        }
    )
    buf = io.BytesIO()
    frame.to_parquet(buf, index=False)
    with atomic_file(path, "wb") as f:
        f.write(buf.getbuffer())


def predict_to_file(
    run_dir,
    datasets,
    out: str,
    *,
    probabilities: bool = False,
    label_column: str | None = None,
    progress: bool = True,
    device: str | None = None,
) -> str:
    """``memomentum predict``: predict ``datasets`` (one path, or several image files) with
    the run's best model and write ``out`` (CSV, or parquet for ``.parquet``), atomically.
    Returns the line the command prints."""
    paths = [datasets] if isinstance(datasets, (str, os.PathLike)) else list(datasets or [])
    if not paths:
        raise InputError(
            f"no data given to predict ({datasets!r}); give the path of the data (--dataset), or several image files"
        )
    path = _check_out(out, _run_directory(run_dir), [p for p in paths if isinstance(p, (str, os.PathLike))])
    predictor = Predictor(run_dir, device=device)
    X = paths[0] if len(paths) == 1 else paths
    p = predictor.predictions(X, label_column=label_column, progress=progress)
    _write(path, _columns(p, predictor.classes_, probabilities=probabilities))
    n = len(p.predicted)
    line = f"predicted {n} example{'s' if n != 1 else ''} of {p.source} with the best model of {predictor.run_dir}"
    if p.given is not None and (p.given >= 0).any():
        have = p.given >= 0
        agree = int((p.predicted[have] == p.given[have]).sum())
        issues = int(have.sum()) - agree
        line += (
            f"; {agree} of {int(have.sum())} given label{'s' if have.sum() != 1 else ''} "
            f"{'agrees' if agree == 1 else 'agree'} with the prediction, {issues} "
            f"{'is a label issue' if issues == 1 else 'are label issues'}"
        )
    return line + f"; wrote {path}"

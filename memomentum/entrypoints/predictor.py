"""Predicting with a finished run: its best model on new data, exactly as the run predicts.

``memomentum predict RUN_DIR --dataset NEW --out FILE`` and ``memomentum.load(RUN_DIR)`` land
here. A finished run directory holds the best model (``model.pt``: the network's name, the
number of classes, the input shape, the normalisation and the weights), the class names
(``classes.json``) and the resolved configuration (``config.json``); :mod:`.predict.run` reads
them. The new data go the way the run's own data went, so that the same examples give the
same probabilities, bit for bit on the CPU:

* the network is built as the run builds it (:func:`~.training.models.create_model`, then
  :meth:`Engine.prepare <.training.engine.Engine.prepare>` for the memory layout, then the
  weights), and the probabilities come from :meth:`Engine.predict_proba
  <.training.engine.Engine.predict_proba>` with the run's prediction chunk and CPU thread count;
* the data are read by the run's own readers (:mod:`.predict.read` sends each kind to them):
  a table's feature columns matched by name and read as :mod:`.data.tables` reads them, an
  image folder listed as :mod:`.data.folders` lists one, a table of images read by
  :mod:`.data.image_tables`, arrays converted as the ``.npz`` reader converts them;
* image files are decoded into the pixels the run's packed store holds
  (:class:`~.store.unpacked.UnpackedImages`: Pillow, RGB, bilinear to the run's side, and
  the store's JPEG when the run's store was JPEG), batch by batch (a folder of any size),
  and normalised by the streamed source.

One caveat on "bit for bit": the CPU's matrix kernels are chosen by the number of rows in a
prediction chunk, so a chunk of a handful of examples (measured here: 10 or fewer, against
128) can differ from a full one in the last bits. The run predicts its training part in chunks
of 128; an example predicted in a chunk of more than 10 examples gets exactly the run's
probabilities.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

import numpy as np
import torch

from ..base.errors import InputError
from ..method.verdicts import verdict_columns
from ..training.engine import Engine, choose_device
from ..training.sources import StreamedSource, to_device_data
from .predict.output import check_out, write
from .predict.read import read_inputs
from .predict.run import device_name, network, read_run, run_directory

__all__ = ["Predictions", "Predictor", "load", "predict_to_file"]


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
        run = read_run(run_dir)
        self._run = run
        self.run_dir = run.directory
        self.kind = run.kind
        self.classes_ = run.classes
        self.feature_columns_ = run.feature_columns
        name = device_name(device) or ("cuda" if run.device == "cuda" and torch.cuda.is_available() else "cpu")
        self.engine = Engine(
            device=choose_device(name), augment="none", batch_size=1, predict_chunk=run.config.get("predict_chunk")
        )
        self.model = network(run, self.engine)

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
        inputs = read_inputs(self._run, X, label_column)
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


# ----------------------------------------------------------------------------- memomentum predict


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
    path = check_out(out, run_directory(run_dir), [p for p in paths if isinstance(p, (str, os.PathLike))])
    predictor = Predictor(run_dir, device=device)
    X = paths[0] if len(paths) == 1 else paths
    p = predictor.predictions(X, label_column=label_column, progress=progress)
    write(path, _columns(p, predictor.classes_, probabilities=probabilities))
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

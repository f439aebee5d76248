"""A scikit-learn estimator for practitioners with their own arrays or tables.

>>> from memomentum.entrypoints.estimator import MeMomentumClassifier
>>> clf = MeMomentumClassifier(epochs=30).fit(X, y_noisy)          # a small MLP, trained by Me-Momentum
>>> clf.predict(X_new)
>>> clf.verdict_[clf.verdict_["is_label_issue"]]                    # the examples whose label is disputed
>>> MeMomentumClassifier(HistGradientBoostingClassifier()).fit(X, y_noisy)  # any scikit-learn classifier

Needs scikit-learn (``pip install "memomentum[sklearn]"``); ``verdict_`` is a pandas
DataFrame when pandas is installed.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import time
import warnings

import numpy as np
from torch import nn

from ..base.checks import check_seed
from ..base.errors import InputError
from ..config import RunConfig
from ..noise.split import training_part_size

try:
    from sklearn.base import BaseEstimator, ClassifierMixin
    from sklearn.utils.multiclass import check_classification_targets
    from sklearn.utils.validation import check_is_fitted, validate_data
except ImportError:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        'MeMomentumClassifier needs scikit-learn 1.6 or later: pip install "memomentum[sklearn]"'
    ) from None

from ..method.sklearn_rounds import fit_rounds, sklearn_proba  # after the check: it needs scikit-learn too

__all__ = ["MeMomentumClassifier"]

DEFAULT_SEED = 1  # the seed when random_state is None: runs stay reproducible, as RunConfig's default
_NOT_GIVEN = "deprecated"  # the default of the deprecated ``seed``, as scikit-learn marks a deprecated parameter


def _refuse_mixed_label_kinds(y) -> None:
    """Labels that mix text and numbers (or True/False) have no order, and numpy would turn
    a list's numbers into text (1 would come back as "1"); scikit-learn refuses an object
    array of them too, but calls it an "unknown label type". A missing label (None, NaN)
    is named by its row: scikit-learn would talk of a regression target."""
    if isinstance(y, (list, tuple)):
        values = list(y)
    elif getattr(y, "dtype", None) == np.dtype(object) and hasattr(y, "tolist"):  # arrays, pandas Series
        values = y.tolist()
    else:  # None: scikit-learn's own check says that y is required
        return
    row = next((i for i, v in enumerate(values) if v is None or (isinstance(v, float) and math.isnan(v))), None)
    if row is not None:
        raise InputError(
            f"y has no label in row {row} ({values[row]!r}); every example needs a label: leave out the "
            f"rows without one"
        )
    text = next((v for v in values if isinstance(v, str)), None)
    other = next((v for v in values if isinstance(v, (numbers.Number, np.number, np.bool_))), None)
    if text is not None and other is not None:
        kind = "True/False" if isinstance(other, (bool, np.bool_)) else "numbers"
        raise InputError(
            f"y mixes text and {kind} as labels (for example {_shown(text)!r} and {_shown(other)!r}); "
            f"give every label the same kind, e.g. all as text"
        )


def _shown(value):
    """A label as the user gave it in a message ('wolf', 7), not numpy's np.str_('wolf')."""
    return value.item() if isinstance(value, np.generic) else value


class MeMomentumClassifier(ClassifierMixin, BaseEstimator):
    """Train a classifier on noisily labelled data with Me-Momentum, the scikit-learn way.

    The labels may be any hashable values (strings, integers, ...): ``classes_`` holds them
    sorted, and every output shows them. A seeded tenth of the rows (``val_fraction``) is held
    out with its noisy labels for early stopping and model selection, as in the paper.

    Parameters
    ----------
    model : None, str, callable or scikit-learn classifier, default None
        The classifier to train:

        * ``None``: the data's default network (an MLP with two hidden layers of 256 for
          feature tables, LeNet for images);
        * a name, one of `memomentum.training.models.MODELS`;
        * a factory ``model(n_features, n_classes) -> torch.nn.Module`` for your own
          network: it is called for every outer loop (under the seed), gets normalised
          float32 inputs of shape (batch, n_features) (images: (batch, C, H, W), and
          ``n_features`` is C*H*W) and returns logits (batch, n_classes); it must be a
          picklable function or object to pickle or clone the estimator;
        * any scikit-learn classifier (e.g. ``HistGradientBoostingClassifier()``). Its
          Me-Momentum rounds refit a clone of it: the first phase fits all training rows,
          each round fits the rows whose given label the outer loop's best model predicts
          (the confident set), and the signal that ends the rounds and picks the model is
          the balanced accuracy on the noisy validation rows after each fit (no epochs:
          ``epochs``, ``lr``, ``batch_size`` and ``weight_decay`` do not apply). Because
          such a model, unlike an early-stopped network, predicts nearly every label it was
          fitted on, its predictions on training rows are cross-fitted (``cv`` folds), for
          the confident sets and for ``verdict_``. A clone whose ``random_state`` is None
          gets the run's seed. Probabilities come from its ``predict_proba`` (or one-hot
          from ``predict`` when it has none).
    method : {"memomentum", "ce"}, default "memomentum"
        ``"ce"`` is the baseline: the first phase only, i.e. the model trained on the noisy
        labels with early stopping.
    epochs, max_outer_loop, max_inner_loop : int or None, default None
        The schedule, as in [`RunConfig`][memomentum.config.RunConfig].
    lr : float or None, default None
        Learning rate, as in [`RunConfig`][memomentum.config.RunConfig].
    batch_size : int or None, default None
        As in [`RunConfig`][memomentum.config.RunConfig]; for a scikit-learn model about a
        twentieth of the training rows, between 8 and 128, and never more than the training
        rows.
    weight_decay : float, default 1e-4
        As in [`RunConfig`][memomentum.config.RunConfig].
    val_fraction : float, default 0.1
        The share of rows held out, with their noisy labels, for early stopping and model
        selection.
    random_state : int or None, default None
        The run's seed ([`RunConfig`][memomentum.config.RunConfig]'s ``seed``): a whole number in
        0..4294967295, or ``None`` for the fixed default seed 1 (never a random one: the same
        call gives the same numbers). A numpy ``RandomState`` is not accepted, since the run
        is seeded by a number.
    device : {"auto", "cpu", "cuda"}, default "auto"
        Where a network trains.
    threads : int or None, default None
        CPU threads, as in [`RunConfig`][memomentum.config.RunConfig]; for a scikit-learn model it
        caps its OpenMP and BLAS threads (``None`` takes the default for the data).
    n_jobs : int or None, default None
        scikit-learn's name for ``threads``: ``None`` leaves ``threads`` in charge, a
        positive number is the thread count, ``-1`` every available core and ``-2`` all but
        one (as joblib counts). Giving both with different counts is an error. The thread
        count sets the order of float sums, so a network's numbers follow it (``-1`` gives a
        machine's own numbers).
    progress : bool, default False
        Show a progress bar (networks only).
    cv : int, default 5
        scikit-learn models only: the folds of the cross-fitted predictions on the training
        rows (at least 2; at most one per training row).
    seed : int or None
        Deprecated alias of ``random_state`` (it warns with a ``FutureWarning`` in
        [`fit`][memomentum.entrypoints.estimator.MeMomentumClassifier.fit] and will be removed in the next release); giving both with different
        values is an error.

    Attributes
    ----------
    classes_ : numpy.ndarray, shape (K,)
        The labels, sorted; column ``k`` of [`predict_proba`][memomentum.entrypoints.estimator.MeMomentumClassifier.predict_proba] is ``classes_[k]``.
    n_features_in_ : int
        The number of features (columns) seen in fit.
    feature_names_in_ : numpy.ndarray of str, shape (n_features_in_,)
        The column names, when ``X`` was a DataFrame with string names.
    estimator_ : torch.nn.Module or scikit-learn classifier
        The fitted model: a network (in evaluation mode) or the scikit-learn classifier
        (trained on the final confident set it was chosen on).
    verdict_ : pandas.DataFrame or dict of numpy.ndarray
        One row per training example (a dict of numpy columns without pandas):
        ``given_label``, ``predicted_label`` (the fitted model's, as labels of ``classes_``;
        for a scikit-learn model, cross-fitted on the rows it was trained on),
        ``confidence`` (its probability), ``is_label_issue`` (the model disputes the given
        label: outside the confident set), ``is_confident`` (the opposite),
        ``label_quality`` (a score in [0, 1], higher = more likely correct, made as
        `memomentum.method.verdicts` says).
    confident_ : numpy.ndarray of bool, shape (n_train,)
        Mask over the training examples: the confident set.
    summary_ : dict
        The run summary (validation accuracy, rounds, history, timings).

    Examples
    --------
    >>> from memomentum import MeMomentumClassifier
    >>> clf = MeMomentumClassifier(epochs=30).fit(X, y)
    >>> clf.verdict_.sort_values("label_quality").head(20)  # the 20 most likely label errors
    >>> from sklearn.ensemble import HistGradientBoostingClassifier
    >>> MeMomentumClassifier(HistGradientBoostingClassifier()).fit(X, y).predict(X_new)
    """

    def __init__(
        self,
        model=None,
        *,
        method: str = "memomentum",
        epochs: int | None = None,
        max_outer_loop: int | None = None,
        max_inner_loop: int | None = None,
        lr: float | None = None,
        batch_size: int | None = None,
        weight_decay: float = 1e-4,
        val_fraction: float = 0.1,
        random_state: int | None = None,
        device: str = "auto",
        threads: int | None = None,
        n_jobs: int | None = None,
        progress: bool = False,
        cv: int = 5,
        seed=_NOT_GIVEN,
    ):
        self.model = model
        self.method = method
        self.epochs = epochs
        self.max_outer_loop = max_outer_loop
        self.max_inner_loop = max_inner_loop
        self.lr = lr
        self.batch_size = batch_size
        self.weight_decay = weight_decay
        self.val_fraction = val_fraction
        self.random_state = random_state
        self.device = device
        self.threads = threads
        self.n_jobs = n_jobs
        self.progress = progress
        self.cv = cv
        self.seed = seed  # deprecated: stored unchanged, resolved (and warned about) in fit

    # -- scikit-learn's contract ---------------------------------------------------------
    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        if _is_sklearn_model(self.model):  # missing values pass through when the model takes them
            from sklearn.utils import get_tags

            tags.input_tags.allow_nan = get_tags(self.model).input_tags.allow_nan
        return tags

    def _validate_X(self, X, y=None, *, reset: bool):
        allow_nan = self.__sklearn_tags__().input_tags.allow_nan
        kw = dict(
            accept_sparse=False,
            dtype="numeric",
            allow_nd=True,
            ensure_all_finite="allow-nan" if allow_nan else True,
            ensure_min_samples=1,
        )
        if y is None:
            return validate_data(self, X, reset=reset, **kw), None
        return validate_data(self, X, y, reset=reset, **kw)

    # -- fitting --------------------------------------------------------------------------
    def fit(self, X, y) -> MeMomentumClassifier:
        """Fit with Me-Momentum on noisily labelled data.

        Parameters
        ----------
        X : array_like, shape (N, D) or (N, H, W[, C])
            Features, or images with values in the uint8 range; a pandas DataFrame too.
        y : array_like of shape (N,)
            The given (possibly noisy) labels: any hashable values, at least two classes.

        Returns
        -------
        MeMomentumClassifier
            ``self``, fitted.

        Raises
        ------
        ValueError
            (scikit-learn's messages, or [`InputError`][memomentum.base.errors.InputError]) bad inputs or
            settings, fewer than two classes.
        """
        _refuse_mixed_label_kinds(y)  # before validation turns a list's numbers into text
        X, y = self._validate_X(X, y, reset=True)
        check_classification_targets(y)
        self.classes_, y_index = np.unique(y, return_inverse=True)
        if self.classes_.size < 2:
            raise InputError(f"y holds one class only ({_shown(self.classes_[0])!r}); at least two classes are needed")
        self._input_shape = X.shape[1:]  # (D,) for features, (H, W[, C]) for images
        X = _as_model_input(X)
        config = self._config(n_rows=X.shape[0])
        started = time.perf_counter()
        if _is_sklearn_model(self.model):
            with _thread_limit(config.threads):
                self.estimator_, self.summary_, proba = fit_rounds(self.model, X, y_index, config, cv=self.cv)
        else:
            self.estimator_, self._norm, self.summary_, proba = _fit_network(self.model, X, y_index, config)
        self.summary_["wall_time_s"] = round(time.perf_counter() - started, 2)
        self.confident_ = proba.argmax(1) == y_index
        self.verdict_ = _verdict(self.classes_, y_index, proba, self.confident_)
        return self

    def _config(self, *, n_rows: int) -> RunConfig:
        """The settings as a validated :class:`RunConfig` (validated here, not in __init__,
        as scikit-learn asks)."""
        name = self.model if isinstance(self.model, str) else None
        if isinstance(self.model, type) and hasattr(self.model, "fit"):
            raise InputError(
                f"model is the class {self.model.__name__}; pass an instance, e.g. {self.model.__name__}()"
            )
        if isinstance(self.model, nn.Module):
            raise InputError(
                "model is a network instance; pass a function (n_features, n_classes) -> nn.Module that "
                "builds a fresh one, so every outer loop starts from new weights"
            )
        if not (self.model is None or name is not None or _is_sklearn_model(self.model) or _is_factory(self.model)):
            raise InputError(
                f"model must be None, a model name, a scikit-learn classifier or a function "
                f"(n_features, n_classes) -> torch.nn.Module, got {self.model!r}"
            )
        if _is_sklearn_model(self.model) and not hasattr(self.model, "predict"):
            raise InputError(f"model {type(self.model).__name__} has no predict method; it must be a classifier")
        cfg = RunConfig(
            dataset="arrays",
            noise_type="none",
            noise_rate=0.0,
            seed=self._seed(),
            method=self.method,
            model=name,
            epochs=self.epochs,
            max_outer_loop=self.max_outer_loop,
            max_inner_loop=self.max_inner_loop,
            lr=self.lr,
            batch_size=self.batch_size,
            weight_decay=self.weight_decay,
            val_fraction=self.val_fraction,
            device=self.device,
            threads=_resolve_threads(self.threads, self.n_jobs),
            progress=bool(self.progress),
        )
        cfg.validate()
        if isinstance(self.cv, bool) or not isinstance(self.cv, (int, np.integer)) or self.cv < 2:
            raise InputError(f"cv must be a whole number of folds of at least 2, got {_shown(self.cv)!r}")
        n_train = training_part_size(n_rows, self.val_fraction)
        if n_rows < 2 or n_train < 1 or n_train >= n_rows:
            raise InputError(
                f"{n_rows} rows are too few to hold out a validation part of val_fraction "
                f"{self.val_fraction:g} and train on the rest; give more rows"
            )
        # default: a twentieth of the training part, 8..128; never more than the whole part
        # (so that a small fold of cross-validation still trains)
        batch = min(128, max(8, n_train // 20)) if cfg.batch_size is None else cfg.batch_size
        cfg = dataclasses.replace(cfg, batch_size=min(batch, n_train))
        return cfg

    def _seed(self) -> int:
        """The run's seed from ``random_state`` and the deprecated ``seed`` (warned about here,
        in fit, as scikit-learn deprecates a parameter)."""
        random_state = _check_seed("random_state", self.random_state)
        if isinstance(self.seed, str) and self.seed == _NOT_GIVEN:
            return DEFAULT_SEED if random_state is None else random_state
        warnings.warn(
            "seed is deprecated and will be removed in the next release; use random_state", FutureWarning, stacklevel=4
        )  # at the caller of fit
        seed = _check_seed("seed", self.seed)
        if seed is not None and random_state is not None and seed != random_state:
            raise InputError(
                f"seed={seed} and random_state={random_state} disagree; give random_state only "
                f"(seed is its deprecated name)"
            )
        return next((s for s in (random_state, seed) if s is not None), DEFAULT_SEED)

    # -- prediction ---------------------------------------------------------------------
    def _proba(self, X: np.ndarray) -> np.ndarray:
        """Probabilities (N, K) for validated model inputs."""
        if isinstance(self.estimator_, nn.Module):
            return _network_proba(self.estimator_, X, self._norm)
        with _thread_limit(_resolve_threads(self.threads, self.n_jobs)):
            return sklearn_proba(self.estimator_, X, self.classes_.size)

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities.

        Parameters
        ----------
        X : array_like, shape (N, D) or (N, H, W[, C])
            Examples of the shape seen in [`fit`][memomentum.entrypoints.estimator.MeMomentumClassifier.fit].

        Returns
        -------
        numpy.ndarray, shape (N, K)
            Columns in the order of ``classes_``.
        """
        check_is_fitted(self)
        X, _ = self._validate_X(X, reset=False)
        if X.shape[1:] != self._input_shape:
            raise InputError(
                f"X has examples of shape {X.shape[1:]} but the model was fitted on examples of "
                f"shape {self._input_shape}"
            )
        return self._proba(_as_model_input(X))

    def predict(self, X) -> np.ndarray:
        """The most probable class of each example.

        Parameters
        ----------
        X : array_like, shape (N, D) or (N, H, W[, C])
            Examples of the shape seen in [`fit`][memomentum.entrypoints.estimator.MeMomentumClassifier.fit].

        Returns
        -------
        numpy.ndarray, shape (N,)
            Labels of ``classes_``.
        """
        proba = self.predict_proba(X)  # first: it says when the estimator is not fitted
        return self.classes_[proba.argmax(1)]


# -- the kinds of model ------------------------------------------------------------------


def _is_sklearn_model(model) -> bool:
    return model is not None and not isinstance(model, (str, type)) and hasattr(model, "fit")


def _is_factory(model) -> bool:
    return callable(model) and not isinstance(model, (str, nn.Module)) and not hasattr(model, "fit")


def _check_seed(name: str, value) -> int | None:
    """``value`` as a seed (None stays None), or a one-sentence error naming ``name``."""
    if value is None:
        return None
    why = " (a numpy RandomState or Generator is not accepted: the run is seeded by a number)"
    return check_seed(value, name, allowed="None or a whole number", why=why)


def _resolve_threads(threads, n_jobs):
    """The thread count from ``threads`` and its scikit-learn name ``n_jobs`` (None: ``threads``
    decides; -1: every available core, -2: all but one, as joblib counts)."""
    if n_jobs is None:
        return threads
    if isinstance(n_jobs, (bool, np.bool_)) or not isinstance(n_jobs, numbers.Integral) or n_jobs == 0:
        raise InputError(
            f"n_jobs must be None, a whole number of threads of at least 1, or -1 for every "
            f"available core, got {_shown(n_jobs)!r}"
        )
    from ..training.threads import available_cores

    count = int(n_jobs) if int(n_jobs) > 0 else max(1, available_cores() + 1 + int(n_jobs))
    if threads is not None and not (isinstance(threads, numbers.Integral) and threads == count):
        raise InputError(
            f"threads={_shown(threads)!r} and n_jobs={_shown(n_jobs)!r} ({count} threads) disagree; give one of "
            f"them (n_jobs is threads' scikit-learn name)"
        )
    return count


def _thread_limit(threads: int | None):
    """For a scikit-learn model: at most ``threads`` threads in its OpenMP and BLAS pools
    (nothing changes when None): a small fit split over threads on a busy machine spends
    its time waiting for cores."""
    import contextlib

    if threads is None:
        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=threads)


def _as_model_input(X: np.ndarray) -> np.ndarray:
    """Features as float32; images (N, H, W[, C]) as validated uint8 (N, H, W, C)."""
    if X.ndim == 2:
        with np.errstate(over="ignore"):
            out = X.astype(np.float32)
        if np.isinf(out).any() and not np.isinf(X).any():
            raise InputError("X holds values too large for 32-bit floats (beyond 3.4e38); rescale them")
        return out
    from ..data.arrays import npz_inputs

    return npz_inputs(X, "X", "the data")


# -- networks: the package's procedure ---------------------------------------------------


def _fit_network(model, X: np.ndarray, y: np.ndarray, cfg: RunConfig):
    """Me-Momentum (or the baseline) with a torch network, through :func:`memomentum.entrypoints.api.run`
    (nothing written); returns the best network, the input normalisation, the summary and
    the best network's probabilities for every row (the run's own for the training part)."""
    from ..data import dataset_from_arrays
    from .api import run

    ds = dataset_from_arrays(X, y, name="arrays", where="the data given to fit")
    network = _user_network(model) if _is_factory(model) else None
    result = run(cfg, write=False, dataset=ds, network=network)
    summary = dict(result.summary)
    if network is not None:
        summary["model"] = "custom"
    best = result.procedure.best_model().eval()
    norm = dict(mean=ds.mean, std=ds.std, channels_last=result.procedure.engine.channels_last)
    proba = np.empty((X.shape[0], ds.num_classes), dtype=np.float32)
    proba[result.data.train_index] = result.final.probabilities.cpu().numpy()
    val = result.data.val_index
    proba[val] = _network_proba(best, X[val], norm)
    return best, norm, summary, proba


def _user_network(factory):
    """The run's network function for a user's ``(n_features, n_classes) -> nn.Module``."""

    def network(input_shape: tuple, num_classes: int) -> nn.Module:
        built = factory(int(np.prod(input_shape)), num_classes)
        if not isinstance(built, nn.Module):
            raise InputError(f"the model function returned {type(built).__name__}, not a torch.nn.Module")
        return built

    return network


def _network_proba(network: nn.Module, X: np.ndarray, norm: dict) -> np.ndarray:
    """Softmax probabilities of the fitted network, through the engine's prediction pass."""
    from ..training.engine import Engine
    from ..training.sources import to_device_data

    device = next(network.parameters()).device
    engine = Engine(device=device, augment="none", batch_size=1)
    data = to_device_data(X, device=device, **norm)
    return engine.predict_proba(network, network, data).cpu().numpy()


# -- the verdict ---------------------------------------------------------------------------


def _verdict(classes: np.ndarray, given: np.ndarray, proba: np.ndarray, confident: np.ndarray):
    """Per training example: given and predicted label (the user's), confidence, label
    issue and label quality (:func:`memomentum.method.verdicts.verdict_columns`)."""
    from ..method.verdicts import verdict_columns

    predicted = proba.argmax(1)
    columns = verdict_columns(given=given, predicted=predicted, probabilities=proba, confident=confident)
    # the user's labels with their own type (numbers stay numbers), as predict returns them
    columns = {
        **columns,
        "given_label": classes[given],
        "predicted_label": classes[predicted],
        "is_confident": confident.copy(),
    }
    try:
        import pandas as pd
    except ImportError:
        return columns
    return pd.DataFrame(columns)

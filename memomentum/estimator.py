"""A scikit-learn-style estimator for practitioners with their own arrays.

>>> clf = MeMomentumClassifier(epochs=30).fit(X, y_noisy)
>>> clf.predict(X_new)
>>> clf.verdict_["is_confident"]   # per training example: does the model agree with its label?
"""
from __future__ import annotations

import numpy as np

from .config import RunConfig
from .data import dataset_from_arrays
from .sources import to_device_data
from .errors import InputError


class MeMomentumClassifier:
    """Train a classifier on noisily labelled arrays with Me-Momentum.

    All arguments are keyword-only and mirror :class:`memomentum.RunConfig`; ``None``
    takes the default for the data (a small MLP for feature tables, LeNet for images).

    After :meth:`fit`:
        ``verdict_``: dict of arrays over all N training examples: ``given_label``,
        ``predicted_label``, ``confidence`` (softmax probability of the prediction) and
        ``is_confident`` (prediction equals the given label: the examples to trust;
        the others are suspect).
        ``summary_``: the run summary (validation accuracy, rounds, timings).
        ``n_classes_``: number of classes K (labels are 0..K-1).
    """

    def __init__(self, *, method: str = "memomentum", model: str | None = None, epochs: int | None = None,
                 max_outer_loop: int | None = None, max_inner_loop: int | None = None, lr: float | None = None,
                 batch_size: int | None = None, weight_decay: float = 1e-4, val_fraction: float = 0.1,
                 seed: int = 1, device: str = "auto", progress: bool = False):
        self.method = method
        self.model = model
        self.epochs = epochs
        self.max_outer_loop = max_outer_loop
        self.max_inner_loop = max_inner_loop
        self.lr = lr
        self.batch_size = batch_size
        self.weight_decay = weight_decay
        self.val_fraction = val_fraction
        self.seed = seed
        self.device = device
        self.progress = progress

    _PARAMS = ("method", "model", "epochs", "max_outer_loop", "max_inner_loop", "lr", "batch_size",
               "weight_decay", "val_fraction", "seed", "device", "progress")

    def get_params(self, deep: bool = True) -> dict:
        return {k: getattr(self, k) for k in self._PARAMS}

    def set_params(self, **params) -> "MeMomentumClassifier":
        for k, v in params.items():
            if k not in self._PARAMS:
                raise InputError(f"unknown parameter {k!r}; valid: {', '.join(self._PARAMS)}")
            setattr(self, k, v)
        return self

    def fit(self, X, y) -> "MeMomentumClassifier":
        """Fit on features (N, D) or uint8 images (N, H, W[, C]) with labels 0..K-1."""
        from .api import run  # late import: api imports this package's heavier modules

        ds = dataset_from_arrays(X, y, name="arrays", where="the arrays given to fit")
        batch = self.batch_size or min(128, max(8, len(ds.y_train) // 20))
        cfg = RunConfig(dataset="arrays", noise_type="none", noise_rate=0.0, seed=self.seed, method=self.method,
                        model=self.model, epochs=self.epochs, max_outer_loop=self.max_outer_loop,
                        max_inner_loop=self.max_inner_loop, lr=self.lr, batch_size=batch,
                        weight_decay=self.weight_decay, val_fraction=self.val_fraction, device=self.device,
                        progress=self.progress)
        result = run(cfg, write=False, dataset=ds)
        proc = result.procedure
        self.model_ = proc.best_model()
        self.engine_ = proc.engine
        self._norm = dict(mean=ds.mean, std=ds.std)
        self._input_shape = ds.x_train.shape[1:]
        self.n_classes_ = ds.num_classes
        self.summary_ = result.summary
        proba = self.predict_proba(ds.x_train)
        pred = proba.argmax(1)
        self.verdict_ = {
            "given_label": ds.y_train,
            "predicted_label": pred,
            "confidence": proba[np.arange(pred.size), pred],
            "is_confident": pred == ds.y_train,
        }
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise InputError("this MeMomentumClassifier is not fitted yet; call fit(X, y) first")

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities, (N, K)."""
        self._check_fitted()
        X = np.asarray(X)
        if X.ndim == 3 and len(self._input_shape) == 3:
            X = X[..., None]
        if X.shape[1:] != self._input_shape:
            raise InputError(f"X has examples of shape {X.shape[1:]} but the model was fitted on {self._input_shape}")
        data = to_device_data(X if X.ndim == 4 else X.astype(np.float32), device=self.engine_.device,
                              channels_last=self.engine_.channels_last, **self._norm)
        if len(data) == 0:
            return np.zeros((0, self.n_classes_), dtype=np.float32)
        return self.engine_.predict_proba(self.model_, self.model_, data).cpu().numpy()

    def predict(self, X) -> np.ndarray:
        """Predicted class for each example."""
        return self.predict_proba(X).argmax(1)

    def score(self, X, y) -> float:
        """Accuracy (0..1) against labels ``y``."""
        return float(np.mean(self.predict(X) == np.asarray(y)))

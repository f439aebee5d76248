"""Me-Momentum's rounds with a scikit-learn classifier: the outer loops and rounds of
:class:`memomentum.entrypoints.estimator.MeMomentumClassifier` when its model is a
scikit-learn classifier, one fit in place of each phase's epochs.

They decide by the same rules as the benchmark procedure (:mod:`.rules`); the estimator
only adapts scikit-learn's contract (validation, labels, threads) around them. Needs
scikit-learn (``pip install "memomentum[sklearn]"``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from sklearn.base import clone

from ..config import REFERENCE_SCHEDULE, RunConfig
from ..noise.split import train_val_split
from ..training.engine import balanced_accuracy
from . import rules

__all__ = ["SklearnRounds", "fit_rounds", "sklearn_proba"]


def fit_rounds(base, X: np.ndarray, y: np.ndarray, cfg: RunConfig, *, cv: int):
    """Me-Momentum's outer loops and rounds with a scikit-learn classifier.

    As :class:`memomentum.method.procedure.Procedure` in the benchmark mode, deciding by the
    same rules (:mod:`memomentum.method.rules`), with one fit in place of each phase's
    epochs. Each outer loop fits its training set S (all training rows T in the first, the
    last round's confident set after that). Each round takes as its confident set the rows
    of T whose given label is predicted by the outer loop's best model, and fits on them;
    the rounds go on while the best noisy-validation balanced accuracy rises (at most
    max_inner_loop - 1 of them), and the model with the best validation accuracy of the
    whole run is kept.

    "Predicted by the model" is cross-fitted: a network stopped early has not memorised its
    noisy labels, but a scikit-learn model fitted to convergence (boosted trees, forests,
    nearest neighbours) predicts nearly every label it was trained on, right or wrong. So
    the rows of T are split into ``cv`` seeded folds, and a row's prediction comes from a
    clone fitted on the model's training set without that row's fold (cv extra fits per
    round, as cleanlab's cross-validated ``pred_probs``).

    Returns the best model, the summary, and the probabilities the verdict is made from: for
    T cross-fitted as above (the best model's training set without each row's fold), for
    the validation rows the best model's own.
    """
    return SklearnRounds(base, X, y, cfg, cv=cv).run()


class SklearnRounds:
    """The state of :func:`fit_rounds`: the split, the folds, the history and the best model."""

    def __init__(self, base, X: np.ndarray, y: np.ndarray, cfg: RunConfig, *, cv: int):
        self.base, self.X, self.y, self.cfg = base, X, y, cfg
        self.max_outer = cfg.max_outer_loop or REFERENCE_SCHEDULE["max_outer_loop"]
        self.max_inner = cfg.max_inner_loop or REFERENCE_SCHEDULE["max_inner_loop"]
        self.k = int(y.max()) + 1
        self.train, self.val = train_val_split(y.size, seed=cfg.seed, train_fraction=1 - cfg.val_fraction)
        self.folds = np.random.RandomState(cfg.seed).permutation(self.train.size) % max(2, min(cv, self.train.size))
        self.history: list[dict] = []
        self.rounds: list[dict] = []
        self.best: dict[str, Any] = {"val": -1.0, "model": None, "rows": self.train, "where": None}

    def run(self):
        rows = self.train
        for outer in range(1, self.max_outer + 1):
            outer_model, outer_best = self.fit_and_score(rows, outer, 0)
            if rules.goes_on_to_rounds(self.cfg.method, self.max_inner):
                rows = self.inner_rounds(outer, rows, outer_model, outer_best)
            if rules.run_is_done(self.cfg.method, outer, self.max_outer):
                break
        best = self.best
        proba = sklearn_proba(best["model"], self.X, self.k)
        proba[self.train] = self.cross_fitted(best["rows"], best["model"])
        summary = {
            "method": self.cfg.method,
            "model": type(self.base).__name__,
            "best_val_accuracy": best["val"],
            "best_at": best["where"],
            "fits": len(self.history),
            "cv": int(self.folds.max()) + 1,
            "history": self.history,
            "rounds": self.rounds,
            "n_train": int(self.train.size),
            "n_val": int(self.val.size),
        }
        return best["model"], summary, proba

    def inner_rounds(self, outer: int, outer_rows: np.ndarray, outer_model, outer_best: float) -> np.ndarray:
        """The rounds of one outer loop; returns the last round's confident set (rows of T)."""
        y, train = self.y, self.train
        rows, last_round_best = outer_rows, 0.0
        for inner in range(1, self.max_inner):
            predicted = self.cross_fitted(outer_rows, outer_model).argmax(1)
            rows = train[rules.agrees_with_label(predicted, y[train])]
            self.rounds.append({"outer": outer, "inner": inner, "n_confident": int(rows.size)})
            if np.unique(y[rows]).size < 2:  # nothing left to learn a classifier from
                break
            model, score = self.fit_and_score(rows, outer, inner)
            if rules.is_new_best(score, outer_best):
                outer_model, outer_best, outer_rows = model, score, rows
            self.rounds[-1]["best_val_accuracy"] = outer_best
            if not rules.another_round(outer_best, last_round_best, inner, self.max_inner):
                break
            last_round_best = outer_best
        return rows

    def fit(self, rows: np.ndarray):
        model = clone(self.base)
        params = model.get_params(deep=False)
        if "random_state" in params and params["random_state"] is None:
            model.set_params(random_state=self.cfg.seed)
        return model.fit(self.X[rows], self.y[rows])

    def fit_and_score(self, rows: np.ndarray, outer: int, inner: int):
        model = self.fit(rows)
        predicted = sklearn_proba(model, self.X[self.val], self.k).argmax(1)
        score = balanced_accuracy(torch.from_numpy(predicted), torch.from_numpy(self.y[self.val]), self.k)
        self.history.append({"outer": outer, "inner": inner, "n_train": int(rows.size), "val_accuracy": score})
        if rules.is_new_best(score, self.best["val"]):
            self.best.update(val=score, model=model, rows=rows, where={"outer": outer, "inner": inner})
        return model, score

    def cross_fitted(self, rows: np.ndarray, model) -> np.ndarray:
        """(|T|, K) probabilities for T, each row's from a clone fitted on ``rows`` without
        its fold (``model``, fitted on all of ``rows``, where that leaves one class)."""
        train, folds = self.train, self.folds
        in_rows = np.isin(train, rows)
        out = np.empty((train.size, self.k))
        for f in np.unique(folds):
            fitting = train[in_rows & (folds != f)]
            clone_f = self.fit(fitting) if np.unique(self.y[fitting]).size >= 2 else model
            out[folds == f] = sklearn_proba(clone_f, self.X[train[folds == f]], self.k)
        return out


def sklearn_proba(model, X: np.ndarray, k: int) -> np.ndarray:
    """(N, K) probabilities from a fitted scikit-learn classifier that may have seen only
    some of the K classes (a confident set can lose one): the others get probability 0."""
    seen = np.asarray(model.classes_, dtype=np.int64)
    out = np.zeros((X.shape[0], k), dtype=np.float64)
    if hasattr(model, "predict_proba"):
        out[:, seen] = model.predict_proba(X)
    else:
        out[np.arange(X.shape[0]), np.asarray(model.predict(X), dtype=np.int64)] = 1.0
    return out

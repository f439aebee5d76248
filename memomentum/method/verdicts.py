"""Per-example verdicts in the terms users of cleanlab know: ``is_label_issue``,
``label_quality``, ``given_label``, ``predicted_label``, and the ranking of the suspects.
Pure arithmetic on arrays; :func:`memomentum.entrypoints.api.find_label_issues` runs the training.

How ``label_quality`` is made
-----------------------------
From two things the run already has: the final confident set (Me-Momentum's verdict) and
``p``, the final network's softmax probability of the *given* label (cleanlab calls this
score "self-confidence"). Confident examples get ``0.5 + p / 2`` (in [0.5, 1]), the others
``p / 2`` (in [0, 0.5]). Why not ``p`` alone: the verdict and the ranking then never
disagree. The ``n`` label issues are exactly the ``n`` lowest-ranked examples (up to ties at
0.5), so a user who reads the ranked list from the bottom meets every flagged example before
any confident one; and in the clothing1m mode the confident set comes from the per-class
extraction, not from the single best network, and ``p`` alone could rank an example the
method kept below one it rejected. Within each group the order is cleanlab's
self-confidence, which is monotone in ``label_quality``: ``p = 2 * label_quality - 1`` for
confident examples and ``p = 2 * label_quality`` for the others.
"""

from __future__ import annotations

import numpy as np

RANKINGS = (None, "label_quality")


def label_quality(*, confident: np.ndarray, given_probability: np.ndarray) -> np.ndarray:
    """The label quality score in [0, 1] (higher = more likely correct; see the module's
    docstring): ``0.5 + p / 2`` for confident examples, ``p / 2`` for the others.

    Args:
        confident: boolean (N,), the final confident set.
        given_probability: (N,), the final network's softmax probability of each given label.
    """
    p = np.clip(np.asarray(given_probability, dtype=np.float64), 0.0, 1.0)
    return np.where(np.asarray(confident, dtype=bool), 0.5 + p / 2, p / 2)


def verdict_columns(
    *, given: np.ndarray, predicted: np.ndarray, probabilities: np.ndarray, confident: np.ndarray, class_names=None
) -> dict[str, np.ndarray]:
    """The verdict for each example, as columns of equal length N.

    Args:
        given: the given (possibly noisy) labels, class numbers 0..K-1, shape (N,).
        predicted: the final network's predicted class numbers, shape (N,).
        probabilities: the final network's softmax probabilities, shape (N, K).
        confident: boolean (N,), the final confident set: the examples Me-Momentum trusts.
        class_names: the user's names of the classes in class-number order, or None to
            show the class numbers.

    Returns:
        A dict with ``given_label`` and ``predicted_label`` (the user's class names when
        given, else the class numbers), ``confidence`` (the probability of the predicted
        class), ``is_label_issue`` (boolean: not in the final confident set) and
        ``label_quality`` (see :func:`label_quality`).
    """
    given = np.asarray(given, dtype=np.int64)
    predicted = np.asarray(predicted, dtype=np.int64)
    probabilities = np.asarray(probabilities)
    confident = np.asarray(confident, dtype=bool)
    n = given.size
    if predicted.shape != (n,) or confident.shape != (n,) or probabilities.ndim != 2 or probabilities.shape[0] != n:
        raise ValueError(
            f"verdict_columns needs N labels, predictions and confident flags and (N, K) probabilities; "
            f"got {given.shape}, {predicted.shape}, {confident.shape} and {probabilities.shape}"
        )
    rows = np.arange(n)
    names = None if class_names is None else np.asarray(list(class_names), dtype=object)
    show = (lambda c: c) if names is None else (lambda c: names[c])
    return {
        "given_label": show(given),
        "predicted_label": show(predicted),
        "confidence": probabilities[rows, predicted].astype(np.float64),
        "is_label_issue": ~confident,
        "label_quality": label_quality(confident=confident, given_probability=probabilities[rows, given]),
    }


def rank_by_quality(quality: np.ndarray, confidence: np.ndarray | None = None) -> np.ndarray:
    """The order of the examples from the most likely label error to the least: the lowest
    ``label_quality`` first; ties (``examples.csv`` keeps 6 decimals, so many suspects tie
    at 0) go to the most confident prediction first (the network is surest of another
    class), then to the examples' order. NaN qualities come last."""
    quality = np.where(np.isnan(quality), np.inf, np.asarray(quality, dtype=np.float64))
    confidence = np.zeros_like(quality) if confidence is None else np.nan_to_num(confidence, nan=0.0)
    return np.lexsort((-confidence, quality))  # stable: the last tie-break is the position


def ranked_issues(is_label_issue: np.ndarray, quality: np.ndarray, confidence: np.ndarray | None = None) -> np.ndarray:
    """Indices of the label issues in the order of :func:`rank_by_quality`."""
    issues = np.flatnonzero(is_label_issue)
    return issues[rank_by_quality(quality[issues], None if confidence is None else confidence[issues])]

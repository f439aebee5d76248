"""The reference's seeded 90/10 split of the (noisy) training set into training and validation.

The validation part keeps its noisy labels: no clean data is used for model selection.
"""

from __future__ import annotations

import math

import numpy as np

from ..base.checks import check_seed
from ..base.errors import InputError

__all__ = ["largest_val_fraction", "split_for_validation", "train_val_split", "training_part_size"]


def train_val_split(num_examples: int, *, seed: int, train_fraction: float = 0.9) -> tuple[np.ndarray, np.ndarray]:
    """Split example indices into a training and a validation part, as the reference does.

    The reference (``dataset_split``) reseeds numpy with ``seed`` after generating the
    noise and takes ``np.random.choice(N, int(N * train_fraction), replace=False)`` as
    the training indices; the remaining indices, in ascending order, form the validation
    part. The same indices come back here, from a local generator (the global numpy
    random state is neither read nor changed).

    Parameters
    ----------
    num_examples : int
        ``N``, the size of the whole (noisy) training set, at least 2.
    seed : int
        Seed in ``0 .. 2**32 - 1`` (the reference uses the run's seed, 1 by default).
    train_fraction : float, default 0.9
        Fraction of examples in the training part, strictly between 0 and 1; the part
        has ``int(N * train_fraction)`` examples, and both parts must be non-empty.

    Returns
    -------
    train_index : numpy.ndarray
        int64 indices of the training part, in the reference's (random) order.
    val_index : numpy.ndarray
        int64 indices of the validation part, ascending.

    Raises
    ------
    InputError
        If ``num_examples``, ``seed`` or ``train_fraction`` is invalid or would leave one
        part empty.
    """
    if isinstance(num_examples, bool) or not isinstance(num_examples, (int, np.integer)) or num_examples < 2:
        raise InputError(f"num_examples must be an integer of at least 2, got {num_examples!r}")
    check_seed(seed)
    try:
        fraction = float(train_fraction)
    except (TypeError, ValueError):
        raise InputError(f"train_fraction must be a number strictly between 0 and 1, got {train_fraction!r}") from None
    if isinstance(train_fraction, bool) or not 0.0 < fraction < 1.0:
        raise InputError(f"train_fraction must be a number strictly between 0 and 1, got {train_fraction!r}")
    n = int(num_examples)
    n_train = int(n * fraction)
    if n_train < 1 or n_train >= n:
        raise InputError(
            f"train_fraction {train_fraction!r} of {n} examples gives {n_train} training and "
            f"{n - n_train} validation examples; both parts must be non-empty"
        )
    train = np.random.RandomState(int(seed)).choice(n, n_train, replace=False).astype(np.int64)
    val = np.delete(np.arange(n, dtype=np.int64), train)
    return train, val


def training_part_size(num_examples: int, val_fraction: float) -> int:
    """How many of ``num_examples`` examples a run trains on when it holds out
    ``val_fraction`` for validation: ``int(N * (1 - val_fraction))``, as the reference counts."""
    return int(num_examples * (1 - val_fraction))


def largest_val_fraction(num_examples: int) -> float:
    """The largest validation share (to 4 decimals, rounded down) that leaves at least one
    of ``num_examples`` examples for training (as ``int(N * (1 - share))`` counts them)."""
    top = math.floor(1e4 * (1 - 1 / num_examples)) / 1e4
    while top > 0 and int(num_examples * (1 - top)) < 1:  # float rounding may take one away
        top = round(top - 1e-4, 4)
    return top


def split_for_validation(num_examples: int, *, seed: int, val_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """:func:`train_val_split` for a run's ``--val-fraction`` (the share held out for
    validation): a share that leaves one of the parts empty is refused in the option's
    own terms, with the range this training set allows.

    Raises
    ------
    InputError
        If the training set is too small to split, or ``val_fraction`` leaves a part empty.
    """
    n = int(num_examples)
    if n < 2:
        raise InputError(
            f"the training set has {n} example{'s' if n != 1 else ''}: too few to split into training "
            f"and validation parts (--val-fraction)"
        )
    n_train = training_part_size(n, val_fraction)
    if not 1 <= n_train < n:
        top = largest_val_fraction(n)
        raise InputError(
            f"--val-fraction {val_fraction:g} leaves {n_train} of the {n} training examples for "
            f"training and {n - n_train} for validation; both parts need one at least, so choose "
            f"--val-fraction above 0 and at most {top:g}"
        )
    return train_val_split(n, seed=seed, train_fraction=1 - val_fraction)

"""Synthetic label noise, bit-for-bit equal to the reference implementation, but vectorised:
the public entry (:func:`make_noisy_labels`, :func:`transition_matrix`, :data:`NOISE_TYPES`),
the checks on its inputs and the reference's transition matrices.

The authors' reference code draws every noisy label in a Python loop. These modules give
the same labels from the same seed, computed for the whole training set at once: the
class-dependent types (``symmetric``, ``pairflip``, ``asymmetric``, ``transition``) flip each
label with a row of a transition matrix (:mod:`.flips`), ``instance`` noise projects every
example with a random tensor (:mod:`.instance`). Label and matrix files are read and
written by :mod:`.files`.

No global random state is read or changed: every generator is a local
``numpy.random.RandomState(seed)``, seeded exactly as the reference seeds the global one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..base.checks import check_seed
from ..base.errors import InputError
from .files import as_int_labels
from .flips import flip_with_matrix
from .instance import instance_noise

__all__ = [
    "NOISE_TYPES",
    "NoisyLabels",
    "make_noisy_labels",
    "transition_matrix",
]

NOISE_TYPES = ("none", "symmetric", "pairflip", "instance", "asymmetric", "transition")

# Asymmetric CIFAR-10 noise (Patrini et al. 2017): truck -> automobile, bird -> airplane,
# deer -> horse, cat <-> dog.
_ASYMMETRIC_CIFAR10_FLIPS = ((9, 1), (2, 0), (4, 7), (3, 5), (5, 3))

# Rows of the transition matrix must sum to one within this tolerance (the reference
# asserts ``assert_array_almost_equal(P.sum(axis=1), 1)``, i.e. 6 decimals).
_ROW_SUM_TOLERANCE = 1e-6

# How messages name the inputs: as Python parameters, or as the options of `memomentum noise`
# (a command-line user never sees noise_rate or features=...).
_PYTHON_NAMES = {
    "noise_type": "noise_type",
    "noise_rate": "noise_rate",
    "num_classes": "num_classes",
    "seed": "seed",
    "features": "features",
    "give_features": "features=...",
    "transition": "transition=...",
    "type_is": lambda t: f"noise_type={t!r}",
}
_CLI_NAMES = {
    "noise_type": "--noise-type",
    "noise_rate": "--noise-rate",
    "num_classes": "--num-classes",
    "seed": "--seed",
    "features": "the --features array",
    "give_features": "--features PATH",
    "transition": "--transition PATH",
    "type_is": lambda t: f"--noise-type {t}",
}


@dataclass(frozen=True)
class NoisyLabels:
    """Noisy labels and what produced them.

    Attributes:
        labels: int64 array (N,) of noisy labels in ``0..num_classes-1``.
        realised_rate: the fraction of labels that differ from the clean ones (report it
            next to the requested rate: they differ by sampling noise, and for instance
            noise also by design).
        transition_matrix: the (K, K) float64 matrix ``T[i, j] = P(noisy = j | clean = i)``
            that was used, or None for instance-dependent noise (which has one
            distribution per example, not per class).
    """

    labels: np.ndarray
    realised_rate: float
    transition_matrix: np.ndarray | None


# --------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------


def transition_matrix(*, noise_type: str, noise_rate: float, num_classes: int) -> np.ndarray:
    """Build the class-conditional transition matrix of a class-dependent noise type.

    The matrices are built with exactly the floating-point operations of the reference,
    so that the noisy labels drawn from them match it bit for bit.

    Parameters
    ----------
    noise_type : str
        One of ``"none"`` (identity), ``"symmetric"`` (diagonal ``1 - n``, every
        off-diagonal entry ``n / (K - 1)``), ``"pairflip"`` (``T[i, i] = 1 - n``,
        ``T[i, (i + 1) % K] = n``) or ``"asymmetric"`` (CIFAR-10 only: truck -> automobile,
        bird -> airplane, deer -> horse, cat <-> dog, each with probability ``n``).
    noise_rate : float
        The rate ``n``, with ``0 <= n < 1``. A rate of 0 gives the identity.
    num_classes : int
        The number of classes ``K`` (at least 2; exactly 10 for ``"asymmetric"``).

    Returns
    -------
    numpy.ndarray
        A float64 (K, K) row-stochastic matrix with ``T[i, j] = P(noisy = j | clean = i)``.

    Raises
    ------
    InputError
        If the noise type has no single transition matrix (``"instance"``, or
        ``"transition"`` whose matrix the user supplies), or the rate or number of classes
        is invalid.
    """
    noise_type = _check_noise_type(noise_type)
    if noise_type in ("instance", "transition"):
        raise InputError(
            f"noise type {noise_type!r} has no built-in transition matrix; "
            "use one of 'none', 'symmetric', 'pairflip' or 'asymmetric'"
        )
    noise_rate = _check_rate(noise_rate)
    num_classes = _check_num_classes(num_classes)
    return _builtin_matrix(noise_type, noise_rate, num_classes)


def make_noisy_labels(
    labels,
    *,
    noise_type: str,
    noise_rate: float | None = None,
    seed: int,
    num_classes: int,
    features=None,
    transition=None,
) -> NoisyLabels:
    """Corrupt clean labels with synthetic noise, exactly as the reference implementation.

    The reference generates noise for the *whole* training set (before splitting off the
    validation part), so pass all training labels here and split afterwards with
    :func:`memomentum.noise.split.train_val_split`.

    Parameters
    ----------
    labels : array_like of int, shape (N,)
        Clean labels in ``0..num_classes-1``.
    noise_type : str
        One of :data:`NOISE_TYPES`:

        * ``"none"``: labels unchanged;
        * ``"symmetric"``: keep with probability ``1 - n``, otherwise a uniformly chosen
          other class;
        * ``"pairflip"``: class ``i`` becomes ``(i + 1) % K`` with probability ``n``;
        * ``"asymmetric"``: CIFAR-10 class swaps (truck -> automobile, bird -> airplane,
          deer -> horse, cat <-> dog) with probability ``n``; needs ``num_classes == 10``;
        * ``"transition"``: any user matrix given as ``transition``;
        * ``"instance"``: instance-dependent (part-dependent) noise of Xia et al. 2020 as
          in the reference: per-example flip rate ~ normal(n, 0.1) truncated to [0, 1], a
          random ``K x D x K`` projection of the raw features, needs ``features``.
    noise_rate : float, optional
        The requested rate ``n``, ``0 <= n < 1`` (default 0: the labels are returned
        unchanged). ``"transition"`` takes no rate (its matrix sets the flip rates) and
        ``"none"`` only 0: a rate they would ignore is refused.
    seed : int
        Seed in ``0 .. 2**32 - 1``; the same seed as the reference gives the same labels.
    num_classes : int
        The number of classes ``K`` (at least 2).
    features : array_like, shape (N, ...), optional
        Required for ``"instance"``: the training inputs exactly as stored (uint8 images in
        height-width-channel order, or float features). They are flattened per example in
        C order and projected *without* normalisation, as the reference does. Ignored by
        the other noise types.
    transition : array_like, shape (K, K), optional
        Required for ``"transition"``: ``T[i, j] = P(noisy = j | clean = i)``; each row
        (clean class) must be non-negative and sum to 1.

    Returns
    -------
    NoisyLabels
        The int64 noisy labels, the realised noise rate and the transition matrix used
        (None for instance noise).

    Raises
    ------
    InputError
        For an unknown noise type, a rate outside ``[0, 1)``, labels that are not integers
        in ``0..K-1``, features or a matrix of the wrong shape, or a matrix row that is
        not a probability distribution.
    """
    return _make_noisy_labels(
        labels,
        noise_type=noise_type,
        noise_rate=noise_rate,
        seed=seed,
        num_classes=num_classes,
        features=features,
        transition=transition,
        names=_PYTHON_NAMES,
    )


def make_noisy_labels_for_cli(labels, **options) -> NoisyLabels:
    """:func:`make_noisy_labels` for ``memomentum noise``: the same labels, with messages
    that name the command's options (``--noise-rate``, ``--features PATH``)."""
    return _make_noisy_labels(labels, names=_CLI_NAMES, **options)


def _make_noisy_labels(
    labels, *, noise_type, noise_rate, seed, num_classes, features, transition, names: dict
) -> NoisyLabels:
    noise_type = _check_noise_type(noise_type, names)
    noise_rate = _check_rate_applies(noise_type, noise_rate, names)
    num_classes = _check_num_classes(num_classes, names)
    seed = check_seed(seed, names["seed"])
    y = _check_labels(labels, num_classes)
    if noise_type != "transition" and transition is not None:
        raise InputError(
            f"a transition matrix was given but {names['noise_type']} is {noise_type!r}; "
            f"use {names['type_is']('transition')} to apply it"
        )

    if noise_type == "transition":
        if transition is None:
            raise InputError(f"{names['type_is']('transition')} needs a transition matrix ({names['transition']})")
        matrix = _check_transition(transition, num_classes)
    elif noise_type == "instance":
        x = _check_features(features, len(y), names)
        if noise_rate == 0.0 or len(y) == 0:
            return NoisyLabels(labels=y.copy(), realised_rate=0.0, transition_matrix=None)
        noisy = instance_noise(y, x, noise_rate, seed, num_classes)
        return NoisyLabels(labels=noisy, realised_rate=_rate(y, noisy), transition_matrix=None)
    else:
        matrix = _builtin_matrix(noise_type, noise_rate, num_classes, names)
        if noise_rate == 0.0 or noise_type == "none":
            return NoisyLabels(labels=y.copy(), realised_rate=0.0, transition_matrix=matrix)

    noisy = flip_with_matrix(y, matrix, seed)
    return NoisyLabels(labels=noisy, realised_rate=_rate(y, noisy), transition_matrix=matrix)


# --------------------------------------------------------------------------------------
# Validation helpers
# --------------------------------------------------------------------------------------


def _check_noise_type(noise_type, names: dict = _PYTHON_NAMES) -> str:
    if not isinstance(noise_type, str) or noise_type not in NOISE_TYPES:
        raise InputError(f"{names['noise_type']} must be one of {', '.join(NOISE_TYPES)}; got {noise_type!r}")
    return noise_type


def _check_rate(noise_rate, names: dict = _PYTHON_NAMES) -> float:
    try:
        rate = float(noise_rate)
    except (TypeError, ValueError):
        raise InputError(f"{names['noise_rate']} must be a number in [0, 1), got {noise_rate!r}") from None
    if isinstance(noise_rate, bool) or not (0.0 <= rate < 1.0):
        raise InputError(f"{names['noise_rate']} must be a number in [0, 1), got {noise_rate!r}")
    return rate


def _check_rate_applies(noise_type: str, noise_rate, names: dict) -> float:
    """The rate to use (0 when none is given); a rate the noise type would ignore is refused."""
    if noise_rate is None:
        return 0.0
    rate = _check_rate(noise_rate, names)
    if noise_type == "transition":
        raise InputError(
            f"{names['type_is']('transition')} takes its "
            f"flip rates from the transition matrix, so {names['noise_rate']} {noise_rate!r} would be "
            f"ignored; leave {names['noise_rate']} out"
        )
    if noise_type == "none" and rate != 0.0:
        raise InputError(
            f"{names['type_is']('none')} keeps the labels, so "
            f"{names['noise_rate']} {noise_rate!r} would be ignored; leave {names['noise_rate']} out"
        )
    return rate


def _check_num_classes(num_classes, names: dict = _PYTHON_NAMES) -> int:
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or num_classes < 2:
        raise InputError(f"{names['num_classes']} must be an integer of at least 2, got {num_classes!r}")
    return int(num_classes)


def _check_labels(labels, num_classes: int) -> np.ndarray:
    try:
        arr = np.asarray(labels)
    except Exception as e:  # anything unconvertible is a user error
        raise InputError(f"labels must be a one-dimensional integer array ({e})") from e
    if arr.ndim != 1:
        raise InputError(f"labels must be one-dimensional, got shape {arr.shape}")
    y = as_int_labels(arr, "labels")
    if y.size and (y.min() < 0 or y.max() >= num_classes):
        bad = int(y[(y < 0) | (y >= num_classes)][0])
        raise InputError(f"labels must lie in 0..{num_classes - 1} for {num_classes} classes; found {bad}")
    return y


def _check_transition(transition, num_classes: int) -> np.ndarray:
    try:
        t = np.array(transition, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise InputError(f"the transition matrix must be a numeric (K, K) array ({e})") from e
    if t.shape != (num_classes, num_classes):
        raise InputError(
            f"the transition matrix must have shape ({num_classes}, {num_classes}) for "
            f"{num_classes} classes, got {t.shape}"
        )
    for i, row in enumerate(t):
        if not np.all(np.isfinite(row)) or np.any(row < 0) or np.any(row > 1):
            raise InputError(f"row {i} of the transition matrix (clean class {i}) must hold probabilities in [0, 1]")
        s = float(row.sum())
        if abs(s - 1.0) > _ROW_SUM_TOLERANCE or float(row[:-1].sum()) > 1.0 + 1e-12:
            raise InputError(
                f"row {i} of the transition matrix (clean class {i}) sums to {s!r}; "
                "each row must sum to 1 (T[i, j] = P(noisy = j | clean = i))"
            )
    return t


def _check_features(features, n: int, names: dict = _PYTHON_NAMES) -> np.ndarray:
    what = names["features"]
    if features is None:
        raise InputError(f"{names['type_is']('instance')} needs the training inputs ({names['give_features']})")
    try:
        x = np.asarray(features)
    except Exception as e:
        raise InputError(f"{what} must be a numeric array ({e})") from e
    if x.ndim < 2 or x.shape[0] != n:
        raise InputError(f"{what} must have shape (N, ...) with N = {n} (one row per label), got {x.shape}")
    if x.dtype.kind not in "iuf":
        raise InputError(f"{what} must be numeric, got dtype {x.dtype}")
    if x[0].size == 0:
        raise InputError(f"{what} must have at least one value per example, got shape {x.shape}")
    if x.dtype.kind == "f" and not np.all(np.isfinite(x)):
        raise InputError(f"{what} must be finite; found NaN or infinity")
    return x


def _rate(clean: np.ndarray, noisy: np.ndarray) -> float:
    return float(np.mean(clean != noisy)) if clean.size else 0.0


# --------------------------------------------------------------------------------------
# The reference's transition matrices
# --------------------------------------------------------------------------------------


def _builtin_matrix(noise_type: str, n: float, k: int, names: dict = _PYTHON_NAMES) -> np.ndarray:
    """The reference's matrices, built with its floating-point operations."""
    if noise_type == "asymmetric" and k != 10:
        raise InputError(
            f"{names['type_is']('asymmetric')} is defined for the 10 CIFAR-10 classes only, got "
            f"{k} classes ({names['num_classes']})"
        )
    if noise_type == "none" or n == 0.0:
        return np.eye(k)
    if noise_type == "symmetric":
        t = (n / (k - 1)) * np.ones((k, k))
        t[np.arange(k), np.arange(k)] = 1.0 - n
        return t
    if noise_type == "pairflip":
        t = np.eye(k)
        t[np.arange(k), np.arange(k)] = 1.0 - n
        t[np.arange(k), (np.arange(k) + 1) % k] = n
        return t
    if noise_type == "asymmetric":
        t = np.eye(k)
        for src, dst in _ASYMMETRIC_CIFAR10_FLIPS:
            t[src, src] = 1.0 - n
            t[src, dst] = n
        return t
    raise AssertionError(noise_type)

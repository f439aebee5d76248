"""The user's own data as numpy arrays: a ``.npz`` file with arrays ``x``, ``y`` and
optionally ``x_test``, ``y_test``, or arrays given in memory (:func:`dataset_from_arrays`),
checked and wrapped as a :class:`Dataset`; and :func:`load_array_dataset`, which reads a
benchmark by name (its reader in :mod:`.benchmarks`, through :mod:`.registry`) or such a file.

Images are kept exactly as given: ``uint8`` arrays of shape (N, H, W, C) in
height-width-channel order. Flat feature tables are ``float32`` arrays of shape (N, D).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..base.errors import InputError
from .dataset import Dataset
from .registry import BENCHMARK, find_spec, unknown_dataset_message

# --------------------------------------------------------------------------- entry point


def load_array_dataset(name: str, *, data_dir: str | None = None) -> Dataset:
    """Load a benchmark data set by name, or the user's own ``.npz`` file.

    Args:
        name: a benchmark's name (``memomentum.data.DATASETS``, in any spelling that
            :func:`.registry.find_spec` knows: ``fashion_mnist``, ``cifar-10``, ...) or a
            path ending in ``.npz``.
        data_dir: where the files are. Defaults: the spec's ``default_dir``
            (``./data/mnist`` for MNIST, ``/usr/share/datasets/fashion-mnist``, Debian's
            package, for Fashion-MNIST, ``./data/cifar-10-batches-py`` and
            ``./data/cifar-100-python`` for CIFAR, where a directory *containing* those
            folders is accepted too). Ignored for ``digits``, which is embedded. For a
            relative ``.npz`` path, ``data_dir`` is the directory it is resolved against.

    Returns:
        The :class:`Dataset`.

    Raises:
        InputError: unknown name, missing or malformed files.
    """
    if not isinstance(name, str) or not name.strip():
        raise InputError(f"dataset name must be a non-empty string, got {name!r}")
    if name.strip().lower().endswith(".npz"):
        path = Path(name.strip()).expanduser()
        if data_dir is not None and not path.is_absolute():
            path = Path(data_dir).expanduser() / path
        return load_npz(path)
    spec = find_spec(name)
    if spec is None or spec.kind != BENCHMARK:
        raise InputError(unknown_dataset_message(name))
    return spec.read_function()(spec, data_dir)


# --------------------------------------------------------------------------- shared with the benchmarks


def channel_stats(x: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and (population) std of uint8 images (N, H, W, C) on the 0..1
    scale, computed exactly from a 256-bin histogram (no float copy of the images)."""
    levels = np.arange(256, dtype=np.float64) / 255.0
    means, stds = [], []
    for c in range(x.shape[-1]):
        counts = np.bincount(x[..., c].ravel(), minlength=256).astype(np.float64)
        total = counts.sum()
        m = float((counts * levels).sum() / total)
        var = float((counts * (levels - m) ** 2).sum() / total)
        means.append(m)
        stds.append(max(var**0.5, 1e-6))
    return tuple(means), tuple(stds)


# --------------------------------------------------------------------------- user .npz


def check_labels(y: np.ndarray, what: str) -> np.ndarray:
    """Validate a label array: 1-D (or (N, 1)), integer-valued, non-negative -> int64.
    ``what`` names it in messages, e.g. ``"y in /data/t.npz"``."""
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise InputError(f"{what} must be a 1-D array of labels, got shape {y.shape}")
    if y.dtype == np.bool_:
        y = y.astype(np.int64)
    if np.issubdtype(y.dtype, np.floating):
        if not np.all(np.isfinite(y)):
            raise InputError(f"{what} contains NaN or infinite labels; labels must be integers 0..K-1")
        bad = y[y != np.round(y)]
        if bad.size:
            raise InputError(f"{what} contains the non-integer label {float(bad[0]):g}; labels must be integers 0..K-1")
    elif not np.issubdtype(y.dtype, np.integer):
        raise InputError(f"{what} has dtype {y.dtype}; labels must be integers 0..K-1")
    if y.size and y.min() < 0:
        raise InputError(f"{what} contains the negative label {int(y.min())}; labels must be integers 0..K-1")
    if y.size and y.max() >= 2**31:
        raise InputError(
            f"{what} contains the label {float(y.max()):g}, which is far too large; labels must be integers 0..K-1"
        )
    return y.astype(np.int64)


def _missing_classes(y: np.ndarray, k: int, limit: int = 10) -> tuple[list[int], int]:
    """The first ``limit`` classes in 0..k-1 absent from ``y``, and how many are absent
    (without allocating anything of size k, which may be huge for a stray label)."""
    present = np.unique(y)
    bounds = np.concatenate([[-1], present, [k]])
    missing: list[int] = []
    for i in np.flatnonzero(np.diff(bounds) > 1):
        start, stop = int(bounds[i]) + 1, int(bounds[i + 1])
        missing.extend(range(start, min(stop, start + limit - len(missing))))
        if len(missing) >= limit:
            break
    return missing, k - len(present)


def npz_inputs(x: np.ndarray, key: str, where: str) -> np.ndarray:
    """Validate an input array: uint8-range images (N, H, W[, C]) or numeric features (N, D)."""
    if not (np.issubdtype(x.dtype, np.number) or x.dtype == np.bool_) or np.iscomplexobj(x):
        raise InputError(f"{key} in {where} has dtype {x.dtype}; it must be real numbers")
    if x.ndim == 2:
        with np.errstate(over="ignore", invalid="ignore"):
            x = x.astype(np.float32)
        if not np.all(np.isfinite(x)):
            raise InputError(f"{key} in {where} contains NaN or infinite values (after conversion to float32)")
        return x
    if x.ndim not in (3, 4):
        raise InputError(
            f"{key} in {where} has shape {x.shape}; expected features (N, D) or images (N, H, W) or (N, H, W, C)"
        )
    given_ndim = x.ndim  # as the user gave it: (N, H, W) is 3-D, though a channel axis is added
    if x.ndim == 3:
        x = x[..., None]
    if x.shape[1] in (1, 3) and x.shape[3] not in (1, 3, 4):
        raise InputError(
            f"{key} in {where} has shape {x.shape}, which looks channel-first; images must be (N, H, W, C), "
            f"e.g. x.transpose(0, 2, 3, 1)"
        )
    if x.dtype != np.uint8:
        if x.size and (not np.all(np.isfinite(x)) or x.min() < 0 or x.max() > 255 or np.any(x != np.round(x))):
            raise InputError(
                f"{key} in {where} is a {given_ndim}-D {x.dtype} array but images must hold integer pixel values "
                f"0..255 (save them as uint8), or reshape to (N, D) to use them as features"
            )
        x = x.astype(np.uint8)
    return np.ascontiguousarray(x)


def check_npz_archive(path: Path, how: str) -> None:
    """Refuse a file named ``.npz`` that is missing or not a zip archive (numpy would
    otherwise try it as a pickle and advise loading it "unsafely"); ``how`` says how to
    save a right one."""
    if not path.is_file():
        raise InputError(f"no .npz file found at {path}")
    try:
        with open(path, "rb") as f:
            head = f.read(6)
    except OSError as e:
        raise InputError(f"could not read {path}: {e.strerror or e}") from None
    if head == b"\x93NUMPY":
        raise InputError(f"{path} holds a single .npy array, not a .npz archive; save with {how}")
    if head[:2] != b"PK":
        raise InputError(f"{path} is not a readable .npz file (it is not a zip archive)")


def read_npz(
    path: Path,
    required: tuple[str, ...],
    optional: tuple[str, ...] = (),
    *,
    needs: str,
    how: str,
    pairs: tuple[tuple[str, str], ...] = (),
) -> dict[str, np.ndarray]:
    """The arrays ``required``, and those of ``optional`` the file holds, of the ``.npz`` file at
    ``path``, read without pickles: the one reader of a user's ``.npz`` (a run's data and new data to
    predict alike). One sentence for a file that is missing or not an archive (``how`` says how to
    save a right one), that lacks a required array (``needs`` says what it must hold), that holds one
    array of a pair in ``pairs`` but not the other, holds object arrays, or is corrupt."""
    where = str(path)
    check_npz_archive(path, how)
    try:
        with open(path, "rb") as f, np.load(f, allow_pickle=False) as npz:
            keys = set(npz.files)
            missing = [k for k in required if k not in keys]
            if missing:
                raise InputError(
                    f"{where} has no array named {' or '.join(repr(m) for m in missing)} "
                    f"(arrays present: {', '.join(sorted(keys)) or 'none'}); it needs {needs}"
                )
            for a, b in pairs:
                if (a in keys) != (b in keys):
                    have, lack = (a, b) if a in keys else (b, a)
                    raise InputError(f"{where} has {have} but no {lack}; give both or neither")
            return {k: npz[k] for k in (*required, *optional) if k in keys}
    except InputError:
        raise
    except ValueError as e:
        if "pickle" in str(e).lower():  # numpy's advice to allow pickles is not for a user's data file
            raise InputError(f"{where} holds object arrays, which are not accepted; save numeric arrays only") from None
        raise InputError(f"{where} is not a readable .npz file ({e})") from None
    except Exception as e:  # noqa: BLE001 -- BadZipFile, truncated member, zlib/CRC errors, ...
        raise InputError(
            f"{where} is not a readable .npz file (corrupt or truncated: {type(e).__name__}: {e})"
        ) from None


def load_npz(path: Path) -> Dataset:
    """The user's own data set from ``x``, ``y`` and optional ``x_test``, ``y_test``."""
    arrays = read_npz(
        path,
        ("x", "y"),
        ("x_test", "y_test"),
        needs="x, y and optionally x_test, y_test",
        how="np.savez(path, x=..., y=...)",
        pairs=(("x_test", "y_test"),),
    )
    return dataset_from_arrays(
        arrays["x"], arrays["y"], arrays.get("x_test"), arrays.get("y_test"), name=path.name, where=str(path)
    )


def dataset_from_arrays(
    x, y, x_test=None, y_test=None, *, name: str = "arrays", where: str = "the given arrays"
) -> Dataset:
    """Validate the user's own arrays and wrap them as a :class:`Dataset`.

    Args:
        x: uint8-range images (N, H, W) or (N, H, W, C), or numeric features (N, D).
        y: integer labels (N,), classes 0..K-1 with K = max label + 1, each present.
        x_test, y_test: an optional labelled test set in the same layout.
        name: what reports call the data set.
        where: how error messages name the data's origin.
    """
    x, y, x_test, y_test = _checked_arrays(x, y, x_test, y_test, where)
    num_classes = _checked_num_classes(y, y_test, where)
    mean, std, model = _input_stats_and_model(x)
    return Dataset(
        name=name,
        x_train=x,
        y_train=y,
        x_test=x_test,
        y_test=y_test,
        num_classes=num_classes,
        mean=mean,
        std=std,
        augment="none",
        default_model=model,
        labels_are_clean=False,
    )


def _checked_arrays(x, y, x_test, y_test, where: str):
    """The training and optional test arrays, validated and converted (see
    :func:`npz_inputs` and :func:`_check_labels`), with matching lengths and shapes."""
    x = npz_inputs(np.asarray(x), "x", where)
    y = check_labels(np.asarray(y), f"y in {where}")
    if len(x) != len(y):
        raise InputError(f"{where} has {len(x)} rows in x but {len(y)} labels in y; they must match")
    if len(x) == 0:
        raise InputError(f"{where} holds an empty data set (x has no rows)")
    if (x_test is None) != (y_test is None):
        raise InputError(f"{where}: give both x_test and y_test, or neither")
    if x_test is not None:
        x_test = npz_inputs(np.asarray(x_test), "x_test", where)
        y_test = check_labels(np.asarray(y_test), f"y_test in {where}")
        if len(x_test) != len(y_test):
            raise InputError(
                f"{where} has {len(x_test)} rows in x_test but {len(y_test)} labels in y_test; they must match"
            )
        if len(x_test) == 0:
            raise InputError(f"{where} has an empty test set (x_test has no rows); leave x_test and y_test out instead")
        if x_test.shape[1:] != x.shape[1:]:
            raise InputError(
                f"{where} has x_test examples of shape {x_test.shape[1:]} but x examples of shape {x.shape[1:]}; "
                f"they must match"
            )
    return x, y, x_test, y_test


def _checked_num_classes(y: np.ndarray, y_test: np.ndarray | None, where: str) -> int:
    """K = max training label + 1, once every class 0..K-1 has a training example and every
    test label is one of them (a test label outside the training classes is refused)."""
    num_classes = int(y.max()) + 1
    if num_classes < 2:
        raise InputError(f"{where} has only one class (label 0); at least two classes are needed")
    missing, n_missing = _missing_classes(y, num_classes)
    if n_missing:
        shown = ", ".join(str(c) for c in missing) + (", ..." if n_missing > len(missing) else "")
        raise InputError(
            f"{where} has no training example of class{'es' if n_missing > 1 else ''} {shown}; "
            f"labels must cover 0..{num_classes - 1} (K = max label + 1)"
        )
    if y_test is not None:
        unseen = np.setdiff1d(np.unique(y_test), np.arange(num_classes))
        if unseen.size:
            shown = ", ".join(str(c) for c in unseen[:10]) + (", ..." if unseen.size > 10 else "")
            raise InputError(
                f"y_test in {where} holds the class{'es' if unseen.size > 1 else ''} {shown}, which y never has; "
                f"test labels must be classes of the training labels (0..{num_classes - 1})"
            )
    return num_classes


def _input_stats_and_model(x: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...], str]:
    """The normalisation statistics of the training inputs (per channel for images, per
    feature for tables of numbers) and the default model for inputs of their shape."""
    if x.ndim == 4:
        mean, std = channel_stats(x)
        h, w, c = x.shape[1:]
        if min(h, w) < 12:
            model = "mlp"  # too small for LeNet's two 5x5 convolutions and poolings
        elif c == 3 and min(h, w) >= 32:
            model = "resnet18"
        else:
            model = "lenet"
    else:
        xd = x.astype(np.float64)
        mean = tuple(float(v) for v in xd.mean(axis=0))
        std = tuple(float(max(v, 1e-6)) for v in xd.std(axis=0))
        model = "mlp"
    return mean, std, model

"""Datasets: read from disk (or the embedded default) into plain numpy arrays.

Every loader returns a :class:`Dataset`. Images are kept exactly as stored on disk:
``uint8`` arrays of shape (N, H, W, C) in height-width-channel order, because the
instance-dependent noise of the reference projects those raw values in that order.
Flat feature tables are ``float32`` arrays of shape (N, D).

Supported sources (see :func:`load_dataset`):

* ``digits``: scikit-learn's 8x8 handwritten digits, embedded in the package;
* ``mnist`` / ``fashion-mnist``: the official idx files (plain or gzipped);
* ``cifar10`` / ``cifar100``: the official "python version" pickles, read with a
  restricted unpickler that only rebuilds plain containers and numpy arrays;
* any ``.npz`` file with arrays ``x``, ``y`` and optionally ``x_test``, ``y_test``.

:func:`load_human_labels` reads the CIFAR-10N / CIFAR-100N human label files.
"""

from __future__ import annotations

import functools
import gzip
import io
import math
import pickle
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..base.errors import InputError
from .dataset import Dataset
from .names import TABLE_SUFFIXES

DATASETS = ("digits", "mnist", "fashion-mnist", "cifar10", "cifar100")

# Spellings accepted for the benchmark names (after lower-casing and "_" -> "-").
_ALIASES = {
    "fashionmnist": "fashion-mnist",
    "fmnist": "fashion-mnist",
    "cifar-10": "cifar10",
    "cifar-100": "cifar100",
}


# --------------------------------------------------------------------------- entry point


def load_array_dataset(name: str, *, data_dir: str | None = None) -> Dataset:
    """Load a benchmark data set by name, or the user's own ``.npz`` file.

    Args:
        name: one of :data:`DATASETS` (case-insensitive; ``fashion_mnist``, ``cifar-10``
            and similar spellings are accepted) or a path ending in ``.npz``.
        data_dir: where the files are. Defaults: ``./data/mnist`` for MNIST,
            ``/usr/share/datasets/fashion-mnist`` (Debian's package) for Fashion-MNIST,
            ``./data/cifar-10-batches-py`` and ``./data/cifar-100-python`` for CIFAR (a
            directory *containing* those folders is accepted too). Ignored for
            ``digits``, which is embedded. For a relative ``.npz`` path, ``data_dir`` is
            the directory it is resolved against.

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
        return _load_npz(path)
    key = name.strip().lower().replace("_", "-")
    key = _ALIASES.get(key, key)
    if key == "digits":
        return _load_digits()
    if key in ("mnist", "fashion-mnist"):
        return _load_mnist_like(key, data_dir)
    if key in ("cifar10", "cifar100"):
        return _load_cifar(key, data_dir)
    raise InputError(
        f"unknown dataset {name!r}: choose one of {', '.join(DATASETS)}, clothing1m, the path of a .npz file, "
        f"a table ({', '.join(TABLE_SUFFIXES)}), or a folder of images with one sub-folder per class"
    )


# --------------------------------------------------------------------------- shared helpers


def _find(dirs: Sequence[Path], names: Sequence[str]) -> Path | None:
    """The first existing file ``d / n`` (directories in order, then names in order)."""
    for d in dirs:
        for n in names:
            p = d / n
            if p.is_file():
                return p
    return None


def _describe_dirs(dirs: Sequence[Path]) -> str:
    """The directories searched, as shown in messages (only those that exist, if any)."""
    existing = [str(d.absolute()) for d in dirs if d.is_dir()]
    if not existing:
        return f"{dirs[0].absolute()} (no such directory)"
    return " or ".join(dict.fromkeys(existing))


def _require(dirs: Sequence[Path], names: Sequence[str], what: str, hint: str = "") -> Path:
    """Find one of ``names`` in ``dirs`` or raise the standard "not found" InputError
    (``hint``, if given, is appended in parentheses)."""
    found = _find(dirs, names)
    if found is None:
        raise _not_found(dirs, names, what, hint)
    return found


def _not_found(dirs: Sequence[Path], names: Sequence[str], what: str, hint: str = "") -> InputError:
    """The standard "not found" error for ``names`` looked for in ``dirs``."""
    extra = f" ({hint})" if hint else ""
    return InputError(f"no {what} found: looked for {' or '.join(names)} in {_describe_dirs(dirs)}{extra}")


def _candidate_dirs(data_dir: str | None, default: str, subdirs: Iterable[str]) -> list[Path]:
    """``data_dir`` (or the default) followed by the known sub-folders inside it."""
    base = Path(data_dir).expanduser() if data_dir is not None else Path(default)
    return [base] + [base / s for s in subdirs]


def _channel_stats(x: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
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


# --------------------------------------------------------------------------- digits

_DIGITS_FILE = Path(__file__).resolve().parent.parent / "_data" / "digits.csv.gz"
_DIGITS_TEST_SIZE = 360  # a fixed 20 % of the 1797 images


def _load_digits() -> Dataset:
    """The embedded 8x8 digits (scikit-learn's copy), split 1437 train / 360 test.

    The test set is ``np.random.RandomState(0).permutation(1797)[:360]`` (independent of
    any run seed); both parts are kept in file order.
    """
    raw = np.loadtxt(_DIGITS_FILE, delimiter=",", dtype=np.float64)
    if raw.shape != (1797, 65):  # the package itself is broken, not the user's input
        raise RuntimeError(f"embedded digits file {_DIGITS_FILE} has shape {raw.shape}, expected (1797, 65)")
    images = raw[:, :64].astype(np.uint8).reshape(-1, 8, 8, 1)
    labels = raw[:, 64].astype(np.int64)
    perm = np.random.RandomState(0).permutation(len(raw))
    test_idx = np.sort(perm[:_DIGITS_TEST_SIZE])
    train_idx = np.sort(perm[_DIGITS_TEST_SIZE:])
    x_train = np.ascontiguousarray(images[train_idx])
    mean, std = _channel_stats(x_train)
    return Dataset(
        name="digits",
        x_train=x_train,
        y_train=labels[train_idx],
        x_test=np.ascontiguousarray(images[test_idx]),
        y_test=labels[test_idx],
        num_classes=10,
        mean=mean,
        std=std,
        augment="none",
        default_model="mlp",
    )


# --------------------------------------------------------------------------- idx (MNIST)

_IDX_IMAGES_MAGIC = 2051  # 0x00000803: unsigned bytes, 3 dimensions
_IDX_LABELS_MAGIC = 2049  # 0x00000801: unsigned bytes, 1 dimension

# Mean / std of the training images on the 0..1 scale.
_MNIST_STATS = ((0.1307,), (0.3081,))  # the reference's constants
# Computed once from Debian's train-images-idx3-ubyte.gz (60,000 images) as
# x = pixels / 255; (x.mean(), x.std()) = (0.28604, 0.35302).
_FASHION_STATS = ((0.2860,), (0.3530,))


def _read_bytes(path: Path, what: str) -> bytes:
    """The file's content, gunzipped if it is gzip-compressed (detected by content)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise InputError(f"could not read {what} {path}: {e.strerror or e}") from e
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as e:
            raise InputError(f"{what} {path} is a corrupt or truncated gzip file ({e})") from e
    return data


def _read_idx(path: str | Path, *, kind: str, what: str = "idx file") -> np.ndarray:
    """Read one idx file (plain or gzipped) into a uint8 array.

    Args:
        path: the file.
        kind: ``"images"`` (magic 2051, 3 dimensions; returns (N, H, W)) or ``"labels"``
            (magic 2049, 1 dimension; returns (N,)).
        what: how the file is named in error messages.

    Raises:
        InputError: unreadable file, wrong magic number, or a payload whose length does
            not match the header (e.g. a truncated download).
    """
    path = Path(path)
    magic_expected, ndim = (_IDX_IMAGES_MAGIC, 3) if kind == "images" else (_IDX_LABELS_MAGIC, 1)
    data = _read_bytes(path, what)
    header_len = 4 + 4 * ndim
    if len(data) < 4:
        raise InputError(f"{what} {path} is too short to be an idx file ({len(data)} bytes)")
    magic = int.from_bytes(data[:4], "big")
    if magic != magic_expected:
        raise InputError(
            f"{what} {path} has idx magic number {magic}, expected {magic_expected} "
            f"(uint8 {kind} with {ndim} dimension{'s' if ndim > 1 else ''})"
        )
    if len(data) < header_len:
        raise InputError(f"{what} {path} is truncated inside its header ({len(data)} of {header_len} bytes)")
    dims = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = math.prod(dims)  # Python ints: a corrupt header cannot overflow
    payload = len(data) - header_len
    if payload != expected:
        raise InputError(
            f"{what} {path} holds {payload} bytes of data but its header {dims} announces {expected} "
            f"({'truncated' if payload < expected else 'trailing bytes'})"
        )
    if kind == "images" and (dims[1] == 0 or dims[2] == 0):
        raise InputError(f"{what} {path} has empty images of size {dims[1]}x{dims[2]}")
    return np.frombuffer(data, dtype=np.uint8, offset=header_len).reshape(dims).copy()


def _idx_names(stem: str) -> tuple[str, str]:
    return (stem, stem + ".gz")


def _load_mnist_like(key: str, data_dir: str | None) -> Dataset:
    """MNIST or Fashion-MNIST from the four idx files (test files optional)."""
    title = "MNIST" if key == "mnist" else "Fashion-MNIST"
    default = "./data/mnist" if key == "mnist" else "/usr/share/datasets/fashion-mnist"
    subdirs = ("MNIST/raw", "raw") if key == "mnist" else ("FashionMNIST/raw", "raw")
    dirs = _candidate_dirs(data_dir, default, subdirs)

    def load_pair(prefix: str, part: str, required: bool):
        img_names, lab_names = _idx_names(f"{prefix}-images-idx3-ubyte"), _idx_names(f"{prefix}-labels-idx1-ubyte")
        img_path: Path | None
        lab_path: Path | None
        if required:
            hint = ""
            if _find(dirs, _idx_names("t10k-images-idx3-ubyte")) is not None:
                hint = "only the t10k test files are there, but the training files are required"
            img_path = _require(dirs, img_names, f"{title} {part} images", hint)
            lab_path = _require(dirs, lab_names, f"{title} {part} labels")
        else:
            img_path, lab_path = _find(dirs, img_names), _find(dirs, lab_names)
            if img_path is None and lab_path is not None:
                raise _not_found([lab_path.parent], img_names, f"{title} {part} images to go with {lab_path.name}")
            if lab_path is None and img_path is not None:
                raise _not_found([img_path.parent], lab_names, f"{title} {part} labels to go with {img_path.name}")
            if img_path is None or lab_path is None:  # neither
                return None, None
        x = _read_idx(img_path, kind="images", what=f"{title} {part} images")
        y = _read_idx(lab_path, kind="labels", what=f"{title} {part} labels")
        if len(x) != len(y):
            raise InputError(
                f"{title} {part} files disagree: {img_path} holds {len(x)} images but {lab_path} holds {len(y)} labels"
            )
        if len(x) == 0:
            raise InputError(f"{title} {part} images file {img_path} holds no images")
        if y.max() > 9:
            raise InputError(f"{title} {part} labels file {lab_path} holds label {int(y.max())}; labels must be 0..9")
        return x[..., None], y.astype(np.int64)

    x_train, y_train = load_pair("train", "training", required=True)
    x_test, y_test = load_pair("t10k", "test", required=False)
    if x_test is not None and x_test.shape[1:] != x_train.shape[1:]:
        raise InputError(
            f"{title} test images are {x_test.shape[1]}x{x_test.shape[2]} but training images are "
            f"{x_train.shape[1]}x{x_train.shape[2]}; both must have the same size"
        )
    mean, std = _MNIST_STATS if key == "mnist" else _FASHION_STATS
    return Dataset(
        name=key,
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        num_classes=10,
        mean=mean,
        std=std,
        augment="none",
        default_model="lenet",
    )


# --------------------------------------------------------------------------- safe pickles


@functools.cache
def _allowed_globals() -> dict[tuple[str, str], Any]:
    """The only globals a data pickle may reference: what numpy needs to rebuild arrays
    (under both its numpy 1 and numpy 2 module names) and ``_codecs.encode``, which
    protocol-2 pickles use to store bytes. None of them can run arbitrary code."""
    import codecs

    try:  # numpy >= 2
        from numpy._core import multiarray as ma
        from numpy._core import numeric as nm
    except ImportError:  # numpy 1.x
        from numpy.core import multiarray as ma  # type: ignore[no-redef]
        from numpy.core import numeric as nm  # type: ignore[no-redef]
    allowed: dict[tuple[str, str], Any] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): codecs.encode,
    }
    for module in ("numpy.core", "numpy._core"):
        allowed[(f"{module}.multiarray", "_reconstruct")] = ma._reconstruct
        allowed[(f"{module}.multiarray", "scalar")] = ma.scalar
        if hasattr(nm, "_frombuffer"):
            allowed[(f"{module}.numeric", "_frombuffer")] = nm._frombuffer
    return allowed


class _Disallowed(Exception):
    """A pickle referenced a global outside the allow-list."""


class _SafeUnpickler(pickle.Unpickler):
    """Unpickler that rebuilds dicts, lists, strings, bytes, numbers and numpy arrays only."""

    def find_class(self, module: str, name: str) -> Any:
        obj = _allowed_globals().get((module, name))
        if obj is None:
            raise _Disallowed(f"{module}.{name}")
        return obj


def _safe_pickle_load(path: Path, what: str) -> Any:
    """Unpickle ``path`` (bytes keys kept as bytes) with :class:`_SafeUnpickler`."""
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise InputError(f"could not read {what} {path}: {e.strerror or e}") from e
    try:
        return _SafeUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except _Disallowed as e:
        raise InputError(
            f"refusing to load {what} {path}: the pickle references {e}, but only plain data and "
            f"numpy arrays are allowed"
        ) from None
    except Exception as e:  # noqa: BLE001 -- any other failure means a malformed or truncated pickle
        raise InputError(
            f"{what} {path} is not a readable pickle (corrupt or truncated: {type(e).__name__}: {e})"
        ) from None


# --------------------------------------------------------------------------- CIFAR

_CIFAR_STATS = {
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)),
    "cifar100": ((0.507, 0.487, 0.441), (0.267, 0.256, 0.276)),
}


def _get(batch: dict, key: str) -> Any:
    """``batch[b'key']`` (official files) or ``batch['key']`` (re-saved with str keys)."""
    if key.encode() in batch:
        return batch[key.encode()]
    return batch.get(key)


def _read_cifar_batch(path: Path, label_key: str, num_classes: int, what: str) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR pickle -> uint8 (n, 32, 32, 3) HWC images and int64 labels."""
    batch = _safe_pickle_load(path, what)
    if not isinstance(batch, dict):
        raise InputError(
            f"{what} {path} holds a {type(batch).__name__}, expected a dict with b'data' and b'{label_key}'"
        )
    data, labels = _get(batch, "data"), _get(batch, label_key)
    for key, value in (("data", data), (label_key, labels)):
        if value is None:
            present = ", ".join(repr(k) for k in batch)
            raise InputError(f"{what} {path} has no b'{key}' entry (keys present: {present})")
    data = np.asarray(data) if isinstance(data, np.ndarray) else None
    if data is None or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        got = "not an array" if data is None else f"{data.dtype} array of shape {data.shape}"
        raise InputError(f"{what} {path} has b'data' {got}, expected a uint8 array of shape (n, 3072)")
    try:
        y = np.asarray(labels)
    except Exception:  # noqa: BLE001 -- ragged or otherwise unconvertible
        y = np.asarray([], dtype=object)
    if y.ndim != 1 or not (np.issubdtype(y.dtype, np.integer) or y.size == 0):
        raise InputError(f"{what} {path} has b'{label_key}' that is not a flat list of integer labels")
    if len(y) != len(data):
        raise InputError(f"{what} {path} holds {len(data)} images but {len(y)} labels in b'{label_key}'")
    if len(y) and (y.min() < 0 or y.max() >= num_classes):
        bad = int(y.min()) if y.min() < 0 else int(y.max())
        raise InputError(f"{what} {path} holds label {bad}; labels must be 0..{num_classes - 1}")
    # Exactly torchvision: each row is 1024 R, 1024 G, 1024 B values (CHW) -> HWC.
    x = np.ascontiguousarray(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
    return x, y.astype(np.int64)


def _load_cifar(key: str, data_dir: str | None) -> Dataset:
    """CIFAR-10 (``data_batch_1..5`` + ``test_batch``) or CIFAR-100 (``train`` + ``test``);
    the test file is optional."""
    if key == "cifar10":
        folder, title, label_key, k = "cifar-10-batches-py", "CIFAR-10", "labels", 10
        train_files, test_file = [f"data_batch_{i}" for i in range(1, 6)], "test_batch"
    else:
        folder, title, label_key, k = "cifar-100-python", "CIFAR-100", "fine_labels", 100
        train_files, test_file = ["train"], "test"
    dirs = _candidate_dirs(data_dir, f"./data/{folder}", () if data_dir is None else (folder,))
    # Use the first directory that holds any training file, so batches are not mixed.
    base = next((d for d in dirs if any((d / f).is_file() for f in train_files)), None)
    if base is None:
        raise _not_found(dirs, train_files[:1], f"{title} training batches")
    xs, ys = [], []
    for f in train_files:
        p = _require([base], [f], f"{title} training batch")
        x, y = _read_cifar_batch(p, label_key, k, f"{title} training batch")
        xs.append(x)
        ys.append(y)
    x_train, y_train = np.concatenate(xs), np.concatenate(ys)
    if len(x_train) == 0:
        raise InputError(f"{title} training batches in {base} hold no images")
    x_test = y_test = None
    if (base / test_file).is_file():
        x_test, y_test = _read_cifar_batch(base / test_file, label_key, k, f"{title} test batch")
    mean, std = _CIFAR_STATS[key]
    return Dataset(
        name=key,
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        num_classes=k,
        mean=mean,
        std=std,
        augment="crop_flip",
        default_model="resnet18" if key == "cifar10" else "resnet34",
    )


# --------------------------------------------------------------------------- user .npz


def _check_labels(y: np.ndarray, what: str) -> np.ndarray:
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


def _load_npz(path: Path) -> Dataset:
    """The user's own data set from ``x``, ``y`` and optional ``x_test``, ``y_test``."""
    where = str(path)
    check_npz_archive(path, "np.savez(path, x=..., y=...)")
    try:
        with open(path, "rb") as f, np.load(f, allow_pickle=False) as npz:
            keys = set(npz.files)
            missing = [k for k in ("x", "y") if k not in keys]
            if missing:
                raise InputError(
                    f"{where} has no array named {' or '.join(repr(m) for m in missing)} "
                    f"(arrays present: {', '.join(sorted(keys)) or 'none'}); it needs x, y and optionally x_test, y_test"
                )
            if ("x_test" in keys) != ("y_test" in keys):
                have, lack = ("x_test", "y_test") if "x_test" in keys else ("y_test", "x_test")
                raise InputError(f"{where} has {have} but no {lack}; give both or neither")
            arrays = {k: npz[k] for k in ("x", "y", "x_test", "y_test") if k in keys}
    except InputError:
        raise
    except ValueError as e:
        if "pickle" in str(e).lower():
            raise InputError(f"{where} holds object arrays, which are not accepted; save numeric arrays only") from None
        raise InputError(f"{where} is not a readable .npz file ({e})") from None
    except Exception as e:  # noqa: BLE001 -- BadZipFile, truncated member, zlib/CRC errors, ...
        raise InputError(
            f"{where} is not a readable .npz file (corrupt or truncated: {type(e).__name__}: {e})"
        ) from None

    return dataset_from_arrays(
        arrays["x"], arrays["y"], arrays.get("x_test"), arrays.get("y_test"), name=path.name, where=where
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
    y = _check_labels(np.asarray(y), f"y in {where}")
    if len(x) != len(y):
        raise InputError(f"{where} has {len(x)} rows in x but {len(y)} labels in y; they must match")
    if len(x) == 0:
        raise InputError(f"{where} holds an empty data set (x has no rows)")
    if (x_test is None) != (y_test is None):
        raise InputError(f"{where}: give both x_test and y_test, or neither")
    if x_test is not None:
        x_test = npz_inputs(np.asarray(x_test), "x_test", where)
        y_test = _check_labels(np.asarray(y_test), f"y_test in {where}")
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
        mean, std = _channel_stats(x)
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


# --------------------------------------------------------------------------- CIFAR-N labels

_DEFAULT_HUMAN_KEYS = ("worse_label", "noisy_label")  # CIFAR-10N, CIFAR-100N


def _torch_safe_globals() -> list[Callable[..., Any] | tuple[Callable[..., Any], str]]:
    """The allow-list in the form ``torch.serialization.safe_globals`` takes, plus the
    numeric numpy dtype classes (torch's weights-only loader also checks the type of
    every object whose state is set)."""
    safe: list[Callable[..., Any] | tuple[Callable[..., Any], str]]
    safe = [(obj, f"{module}.{name}") for (module, name), obj in _allowed_globals().items()]
    for code in "?bBhHiIlLqQefdg":
        cls = type(np.dtype(code))
        safe.append((cls, f"{cls.__module__}.{cls.__qualname__}"))
    return safe


# How a file torch.save wrote begins: a zip archive (since torch 1.6) or a pickle (before).
_TORCH_FILE_STARTS = (b"PK\x03\x04", b"\x80")


def _first_sentence(text: str) -> str:
    """The first sentence of an error text (torch's go on with advice that does not apply here,
    such as loading with weights_only=False, which would run the file's code)."""
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line.split(". ")[0].rstrip(".")


def _load_pt(path: Path) -> Any:
    import torch

    try:
        with open(path, "rb") as f:
            start = f.read(64)
    except OSError as e:
        raise InputError(f"could not read the label file {path}: {e.strerror or e}") from None
    if not start.startswith(_TORCH_FILE_STARTS):
        what = "is empty" if not start else f"is not a file written by torch.save (it begins {start[:24]!r})"
        raise InputError(f"label file {path} {what}; give CIFAR-N's .pt file, or the labels as a .npy or .npz array")
    try:
        with torch.serialization.safe_globals(_torch_safe_globals()):
            return torch.load(path, weights_only=True, map_location="cpu")
    except pickle.UnpicklingError as e:
        msg = str(e)
        if "Unsupported global" in msg or "not an allowed global" in msg or "blocked" in msg:
            detail = next((ln.strip() for ln in msg.splitlines() if "Unsupported global" in ln), "").split(
                " was not", 1
            )[0]
            raise InputError(
                f"refusing to load label file {path}: it needs pickled code ({detail or 'a disallowed global'}), "
                f"but only dicts of label arrays are accepted"
            ) from None
        raise InputError(
            f"label file {path} is not a readable torch file (corrupt or truncated: {_first_sentence(msg)})"
        ) from None
    except Exception as e:  # noqa: BLE001 -- bad zip, truncated file, unexpected content, ...
        raise InputError(
            f"label file {path} is not a readable torch file (corrupt or truncated: {type(e).__name__}: "
            f"{_first_sentence(str(e))})"
        ) from None


@dataclass(frozen=True)
class HumanLabels:
    """One set of human labels read from a CIFAR-N style file, with what the file says
    about itself: the key the labels came from (None for a single array), the file's keys,
    and its clean labels (``clean_label``, or ``clean_coarse_label`` for a coarse key)."""

    labels: np.ndarray
    key: str | None
    keys: tuple[str, ...]
    clean: np.ndarray | None


_CIFAR10N_KEYS = frozenset({"worse_label", "aggre_label", "random_label1", "random_label2", "random_label3"})
_CIFAR100N_KEYS = frozenset({"noisy_label", "noisy_coarse_label", "clean_coarse_label"})


def read_human_labels(path: str, *, key: str | None = None) -> HumanLabels:
    """:func:`load_human_labels` with what the file says about itself (:class:`HumanLabels`);
    the file's clean labels are returned as they are, checked by :func:`check_human_labels`."""
    content, p = _read_human_file(path, key)
    if not isinstance(content, dict):
        return HumanLabels(_human_array(content, f"labels in {p}"), None, (), None)
    names = [str(k) for k in content]
    if key is None:
        key = next((k for k in _DEFAULT_HUMAN_KEYS if k in content), None)
        if key is None:
            raise InputError(
                f"label file {p} has neither 'worse_label' nor 'noisy_label'; choose a key from: {', '.join(names)}"
            )
    if key not in content:
        raise InputError(f"label file {p} has no key {key!r}; keys present: {', '.join(names)}")
    clean_key = "clean_coarse_label" if "coarse" in key else "clean_label"
    clean = content.get(clean_key)
    clean = None if clean is None or clean_key == key else _human_array(clean, f"labels {clean_key!r} in {p}")
    return HumanLabels(_human_array(content[key], f"labels {key!r} in {p}"), key, tuple(names), clean)


def check_human_labels(
    human: HumanLabels, *, path: str, y_train: np.ndarray, num_classes: int, dataset_name: str
) -> None:
    """Refuse, in one sentence, human labels that do not belong to this training set: a
    CIFAR-10N file on CIFAR-100 (or the reverse), a coarse-label key on fine classes, a
    count or range that does not match, or a ``clean_label`` that differs from the
    training labels.

    Raises:
        InputError: the first mismatch found.
    """
    noisy, n = human.labels, y_train.size
    keys = set(human.keys)
    kind = "CIFAR-10N" if keys & _CIFAR10N_KEYS else "CIFAR-100N" if keys & _CIFAR100N_KEYS else None
    expected = {"cifar10": "CIFAR-10N", "cifar100": "CIFAR-100N"}.get(dataset_name)
    if kind is not None and expected is not None and kind != expected:
        raise InputError(
            f"the human label file {path} is a {kind} file (keys {', '.join(sorted(keys))}), but the "
            f"dataset is {dataset_name}, whose human labels are {expected}"
        )
    if human.key is not None and "coarse" in human.key and num_classes != 20:
        raise InputError(
            f"the key {human.key!r} of {path} holds CIFAR-100's 20 coarse (superclass) labels, but "
            f"{dataset_name} has {num_classes} classes; choose noisy_label (--human-labels-key)"
        )
    if noisy.shape != y_train.shape:
        raise InputError(f"the human label file {path} has {noisy.size} labels but the training set has {n} examples")
    if noisy.size and (noisy.min() < 0 or noisy.max() >= num_classes):
        bad = int(noisy.min()) if noisy.min() < 0 else int(noisy.max())
        raise InputError(
            f"the human label file {path} holds the label {bad}, but {dataset_name} "
            f"has {num_classes} classes: labels must be 0..{num_classes - 1}"
        )
    if human.clean is not None:
        differ = int(np.sum(human.clean != y_train)) if human.clean.shape == y_train.shape else n
        if differ:
            raise InputError(
                f"the clean labels in the human label file {path} differ from the training labels of "
                f"{dataset_name} at {differ} of {n} examples, so its noisy labels belong to other images "
                f"(another data set, or another order)"
            )
    used = np.unique(noisy).size
    if num_classes >= 4 and used <= num_classes // 2:
        raise InputError(
            f"the human label file {path} uses only {used} of the {num_classes} classes of "
            f"{dataset_name}, so it belongs to another data set"
        )


def load_human_labels(path: str, *, key: str | None = None) -> np.ndarray:
    """Read one set of human (noisy) labels, e.g. from CIFAR-10N / CIFAR-100N.

    Args:
        path: ``CIFAR-10_human.pt`` / ``CIFAR-100_human.pt`` (a dict saved with
            ``torch.save``, loaded with ``weights_only=True``; keys such as
            ``worse_label``, ``aggre_label``, ``random_label1..3``, ``clean_label`` for
            CIFAR-10N and ``noisy_label``, ``clean_label`` for CIFAR-100N), a ``.npz``
            with the same kind of keys, or a ``.npy`` holding a single label array.
        key: which labels to take from a dict. Default: ``worse_label`` if present
            (CIFAR-10N), else ``noisy_label`` (CIFAR-100N). Not allowed for ``.npy``.

    Returns:
        int64 (N,) labels, in the order of the official training set (for CIFAR-N:
        ``data_batch_1..5`` / ``train`` order, which is what :func:`load_dataset`
        returns). The caller checks that N and the label range match its data set.

    Raises:
        InputError: missing or unreadable file, unknown key, or labels that are not
            non-negative integers.
    """
    return read_human_labels(path, key=key).labels


def _read_human_file(path: str, key: str | None) -> tuple[Any, Path]:
    """The content of a human label file (a dict of arrays, or one array) and its path."""
    p = Path(path).expanduser()
    if p.is_dir():
        raise InputError(
            f"the human label file {p} is a folder; give the label file itself (CIFAR-N's .pt, or a .npy or .npz array)"
        )
    if not p.is_file():
        raise InputError(f"no human label file found at {p}")
    suffix = p.suffix.lower()
    if suffix == ".npy":
        if key is not None:
            raise InputError(f"key={key!r} was given but {p} is a .npy file holding a single label array; omit the key")
        try:
            with open(p, "rb") as f:
                content: Any = np.load(f, allow_pickle=False)
            if not isinstance(content, np.ndarray):
                raise ValueError("it is not a single .npy array")
        except Exception as e:  # noqa: BLE001 -- numpy raises many types for a damaged file
            raise InputError(
                f"label file {p} is not a readable .npy file of numbers ({type(e).__name__}: {e})"
            ) from None
    elif suffix == ".npz":
        try:
            with open(p, "rb") as f, np.load(f, allow_pickle=False) as npz:
                content = {k: npz[k] for k in npz.files}
        except Exception as e:  # noqa: BLE001 -- numpy and zipfile raise many types for a damaged file
            raise InputError(
                f"label file {p} is not a readable .npz file of numbers ({type(e).__name__}: {e})"
            ) from None
    else:
        content = _load_pt(p)
    if not isinstance(content, dict) and key is not None:
        raise InputError(
            f"key={key!r} was given but {p} holds a single {type(content).__name__}, not a dict; omit the key"
        )
    return content, p


def _human_array(labels: Any, label_name: str) -> np.ndarray:
    if hasattr(labels, "numpy") and callable(labels.numpy):  # a torch tensor
        labels = labels.detach().cpu().numpy()
    try:
        arr = np.asarray(labels)
    except Exception:  # noqa: BLE001 -- ragged or otherwise unconvertible
        arr = np.asarray([], dtype=object)
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise InputError(f"{label_name} are not numeric (got {type(labels).__name__} of {arr.dtype})")
    return _check_labels(arr, label_name)

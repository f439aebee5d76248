"""The benchmarks' readers: the embedded ``digits``, MNIST and Fashion-MNIST from their idx
files (plain or gzipped), CIFAR-10 and CIFAR-100 from the "python version" pickles (read
with :func:`.pickles.safe_pickle_load`, which only rebuilds plain containers and numpy
arrays).

Each reader is called as ``reader(spec, data_dir)`` with its :class:`.registry.DatasetSpec`,
which names the release's files, where they are by default, the classes, the normalisation
statistics and the default network. Images are kept exactly as stored on disk: ``uint8``
arrays of shape (N, H, W, C) in height-width-channel order, because the instance-dependent
noise of the reference projects those raw values in that order.
"""

from __future__ import annotations

import gzip
import math
import zlib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..base.errors import InputError
from .arrays import channel_stats
from .dataset import Dataset
from .pickles import safe_pickle_load
from .registry import DatasetSpec

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


# --------------------------------------------------------------------------- digits

_DIGITS_FILE = Path(__file__).resolve().parent.parent / "_data" / "digits.csv.gz"
_DIGITS_TEST_SIZE = 360  # a fixed 20 % of the 1797 images


def read_digits(spec: DatasetSpec, data_dir: str | None = None) -> Dataset:
    """The embedded 8x8 digits (scikit-learn's copy), split 1437 train / 360 test.

    The test set is ``np.random.RandomState(0).permutation(1797)[:360]`` (independent of
    any run seed); both parts are kept in file order. ``data_dir`` is not used: the images
    are embedded.
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
    mean, std = channel_stats(x_train)
    return Dataset(
        name=spec.name,
        x_train=x_train,
        y_train=labels[train_idx],
        x_test=np.ascontiguousarray(images[test_idx]),
        y_test=labels[test_idx],
        num_classes=spec.num_classes,
        mean=mean,
        std=std,
        augment="none",
        default_model=spec.default_model,
    )


# --------------------------------------------------------------------------- idx (MNIST)

_IDX_IMAGES_MAGIC = 2051  # 0x00000803: unsigned bytes, 3 dimensions
_IDX_LABELS_MAGIC = 2049  # 0x00000801: unsigned bytes, 1 dimension


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


def read_idx(path: str | Path, *, kind: str, what: str = "idx file") -> np.ndarray:
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


def read_idx_dataset(spec: DatasetSpec, data_dir: str | None) -> Dataset:
    """MNIST or Fashion-MNIST (``spec``) from its four idx files (the test files optional),
    in ``data_dir`` (default: the spec's) or its sub-folders ``spec.files["folders"]``."""
    title, k = spec.title, spec.num_classes
    dirs = _candidate_dirs(data_dir, spec.default_dir or ".", spec.file_group("folders"))

    def load_pair(split: str, part: str, required: bool):
        img_names, lab_names = _idx_names(spec.file(f"{split}_images")), _idx_names(spec.file(f"{split}_labels"))
        img_path: Path | None
        lab_path: Path | None
        if required:
            hint = ""
            if _find(dirs, _idx_names(spec.file("test_images"))) is not None:
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
        x = read_idx(img_path, kind="images", what=f"{title} {part} images")
        y = read_idx(lab_path, kind="labels", what=f"{title} {part} labels")
        if len(x) != len(y):
            raise InputError(
                f"{title} {part} files disagree: {img_path} holds {len(x)} images but {lab_path} holds {len(y)} labels"
            )
        if len(x) == 0:
            raise InputError(f"{title} {part} images file {img_path} holds no images")
        if y.max() > k - 1:
            raise InputError(
                f"{title} {part} labels file {lab_path} holds label {int(y.max())}; labels must be 0..{k - 1}"
            )
        return x[..., None], y.astype(np.int64)

    x_train, y_train = load_pair("train", "training", required=True)
    x_test, y_test = load_pair("test", "test", required=False)
    if x_test is not None and x_test.shape[1:] != x_train.shape[1:]:
        raise InputError(
            f"{title} test images are {x_test.shape[1]}x{x_test.shape[2]} but training images are "
            f"{x_train.shape[1]}x{x_train.shape[2]}; both must have the same size"
        )
    mean, std = spec.stats or channel_stats(x_train)
    return Dataset(
        name=spec.name,
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        num_classes=k,
        mean=mean,
        std=std,
        augment="none",
        default_model=spec.default_model,
    )


# --------------------------------------------------------------------------- CIFAR


def _get(batch: dict, key: str) -> Any:
    """``batch[b'key']`` (official files) or ``batch['key']`` (re-saved with str keys)."""
    if key.encode() in batch:
        return batch[key.encode()]
    return batch.get(key)


def _read_cifar_batch(path: Path, label_key: str, num_classes: int, what: str) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR pickle -> uint8 (n, 32, 32, 3) HWC images and int64 labels."""
    batch = safe_pickle_load(path, what)
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


def read_cifar(spec: DatasetSpec, data_dir: str | None) -> Dataset:
    """CIFAR-10 (``data_batch_1..5`` + ``test_batch``) or CIFAR-100 (``train`` + ``test``),
    as ``spec`` names its files, in ``data_dir`` (default: the spec's) or its sub-folder
    ``spec.files["folder"]``; the test file is optional."""
    folder, title, label_key, k = spec.file("folder"), spec.title, spec.file("labels"), spec.num_classes
    train_files, test_file = spec.file_group("train"), spec.file("test")
    dirs = _candidate_dirs(data_dir, spec.default_dir or ".", () if data_dir is None else (folder,))
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
    mean, std = spec.stats or channel_stats(x_train)
    return Dataset(
        name=spec.name,
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        num_classes=k,
        mean=mean,
        std=std,
        augment="crop_flip",
        default_model=spec.default_model,
    )

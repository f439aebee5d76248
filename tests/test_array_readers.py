"""The array readers (memomentum.data.arrays: the embedded digits, MNIST idx files, the CIFAR
pickles, .npz files, CIFAR-N human labels): round trips through files written in exactly the
official formats, and one test per kind of malformed input (each must be an InputError, never a
traceback)."""

from __future__ import annotations

import gzip
import os
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import fixture_dir, require_fashion_mnist, skip_or_fail

from memomentum.base.errors import InputError
from memomentum.data import DATASETS, Dataset, load_dataset, load_human_labels
from memomentum.data.benchmarks import read_idx

# --------------------------------------------------------------------------- writers


def write_idx(
    path: Path,
    arr: np.ndarray,
    *,
    magic: int | None = None,
    gz: bool = False,
    cut: int = 0,
    dims: tuple[int, ...] | None = None,
) -> Path:
    """Write ``arr`` (uint8) as an idx file: big-endian magic, big-endian uint32 dims,
    raw bytes. ``cut`` drops that many bytes from the end (a truncated download)."""
    arr = np.ascontiguousarray(arr, dtype=np.uint8)
    if magic is None:
        magic = 0x800 + arr.ndim  # 2051 for 3-D images, 2049 for 1-D labels
    dims = arr.shape if dims is None else dims
    raw = struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in dims) + arr.tobytes()
    if cut:
        raw = raw[:-cut]
    if gz:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(raw))
    else:
        path.write_bytes(raw)
    return path


def make_mnist(d: Path, *, n_train: int = 6, n_test: int = 4, gz: bool = False, test: bool = True):
    d.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    xtr = rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8)
    ytr = np.arange(n_train, dtype=np.uint8) % 10
    write_idx(d / "train-images-idx3-ubyte", xtr, gz=gz)
    write_idx(d / "train-labels-idx1-ubyte", ytr, gz=gz)
    xte = rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8)
    yte = (np.arange(n_test, dtype=np.uint8) + 3) % 10
    if test:
        write_idx(d / "t10k-images-idx3-ubyte", xte, gz=gz)
        write_idx(d / "t10k-labels-idx1-ubyte", yte, gz=gz)
    return xtr, ytr, xte, yte


def cifar_rows(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 3072), dtype=np.uint8)


def make_cifar10(d: Path, *, n: int = 2, test: bool = True) -> tuple[np.ndarray, list[int]]:
    """Five training batches and a test batch, as pickle dicts with bytes keys."""
    d.mkdir(parents=True, exist_ok=True)
    rows, labels = [], []
    for i in range(1, 6):
        data = cifar_rows(n, i)
        lab = [(i + j) % 10 for j in range(n)]
        with open(d / f"data_batch_{i}", "wb") as f:
            pickle.dump(
                {
                    b"batch_label": f"training batch {i} of 5".encode(),
                    b"labels": lab,
                    b"data": data,
                    b"filenames": [b"x.png"] * n,
                },
                f,
            )
        rows.append(data)
        labels += lab
    if test:
        with open(d / "test_batch", "wb") as f:
            pickle.dump(
                {
                    b"batch_label": b"testing batch 1 of 1",
                    b"labels": [9] * n,
                    b"data": cifar_rows(n, 99),
                    b"filenames": [b"y.png"] * n,
                },
                f,
            )
    return np.concatenate(rows), labels


def make_cifar100(d: Path, *, n: int = 3) -> tuple[np.ndarray, list[int]]:
    d.mkdir(parents=True, exist_ok=True)
    data = cifar_rows(n, 5)
    fine = [0, 57, 99][:n]
    for name, rows in (("train", data), ("test", cifar_rows(2, 6))):
        with open(d / name, "wb") as f:
            pickle.dump(
                {
                    b"filenames": [b"a"] * len(rows),
                    b"batch_label": b"x",
                    b"fine_labels": fine[: len(rows)],
                    b"coarse_labels": [0] * len(rows),
                    b"data": rows,
                },
                f,
            )
    return data, fine


def py2_cifar_pickle(data: np.ndarray, labels: list[int]) -> bytes:
    """A pickle laid out like the official files, which Python 2 wrote (protocol 2,
    ``str`` = BINSTRING, numpy 1 global names)."""

    def s(b: bytes) -> bytes:  # Python 2 str
        return b"U" + bytes([len(b)]) + b if len(b) < 256 else b"T" + struct.pack("<i", len(b)) + b

    def i(v: int) -> bytes:
        return b"J" + struct.pack("<i", v)

    arr = (
        b"cnumpy.core.multiarray\n_reconstruct\n"
        + b"cnumpy\nndarray\n"
        + i(0)
        + b"\x85"
        + s(b"b")
        + b"\x87R("
        + i(1)
        + i(data.shape[0])
        + i(data.shape[1])
        + b"\x86"
        + b"cnumpy\ndtype\n"
        + s(b"u1")
        + i(0)
        + i(1)
        + b"\x87R("
        + i(3)
        + s(b"|")
        + b"NNN"
        + i(-1)
        + i(-1)
        + i(0)
        + b"tb"
        + b"\x89"
        + s(data.tobytes())
        + b"tb"
    )
    lab = b"](" + b"".join(i(v) for v in labels) + b"e"
    return b"\x80\x02}(" + s(b"data") + arr + s(b"labels") + lab + s(b"batch_label") + s(b"b") + b"u."


class RunsShell:
    """Pickles to a call of os.system that would create ``marker``."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


# --------------------------------------------------------------------------- names


def test_unknown_name_lists_choices():
    with pytest.raises(
        InputError, match=r"unknown dataset 'imagenet'.*digits, mnist, fashion-mnist, cifar10, cifar100.*\.npz"
    ):
        load_dataset("imagenet")


def test_datasets_tuple():
    assert DATASETS == ("digits", "mnist", "fashion-mnist", "cifar10", "cifar100")


# --------------------------------------------------------------------------- digits


def test_digits_embedded_split():
    ds = load_dataset("digits")
    assert isinstance(ds, Dataset) and ds.name == "digits" and ds.is_image
    assert ds.x_train.shape == (1437, 8, 8, 1) and ds.x_test.shape == (360, 8, 8, 1)
    assert ds.x_train.dtype == np.uint8 and ds.y_train.dtype == np.int64
    assert ds.x_train.max() == 16 and ds.x_train.min() == 0
    assert ds.num_classes == 10 and set(ds.y_train) == set(range(10))
    assert (ds.augment, ds.default_model, ds.labels_are_clean) == ("none", "mlp", True)
    # the fixed held-out 20 %: RandomState(0).permutation(1797)[:360]
    raw = np.loadtxt(Path(__file__).parents[1] / "memomentum/_data/digits.csv.gz", delimiter=",")
    test_idx = np.sort(np.random.RandomState(0).permutation(1797)[:360])
    np.testing.assert_array_equal(ds.x_test.reshape(360, 64), raw[test_idx, :64])
    np.testing.assert_array_equal(ds.y_test, raw[test_idx, 64])
    # mean / std from the training images on the x/255 scale
    x = ds.x_train.astype(np.float64) / 255
    assert ds.mean == pytest.approx((x.mean(),)) and ds.std == pytest.approx((x.std(),))
    # independent of anything else: a second load is identical
    np.testing.assert_array_equal(load_dataset("DIGITS").y_train, ds.y_train)


# --------------------------------------------------------------------------- idx


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_round_trip(tmp_path, gz):
    xtr, ytr, xte, yte = make_mnist(tmp_path, gz=gz)
    ds = load_dataset("mnist", data_dir=str(tmp_path))
    assert ds.x_train.shape == (6, 28, 28, 1) and ds.x_train.dtype == np.uint8
    np.testing.assert_array_equal(ds.x_train[..., 0], xtr)
    np.testing.assert_array_equal(ds.y_train, ytr)
    np.testing.assert_array_equal(ds.x_test[..., 0], xte)
    np.testing.assert_array_equal(ds.y_test, yte)
    assert ds.y_train.dtype == np.int64
    assert (ds.mean, ds.std) == ((0.1307,), (0.3081,))
    assert (ds.num_classes, ds.augment, ds.default_model) == (10, "none", "lenet")


def test_fashion_mnist_custom_dir_and_torchvision_layout(tmp_path):
    make_mnist(tmp_path / "FashionMNIST" / "raw", gz=True, test=False)
    ds = load_dataset("fashion_mnist", data_dir=str(tmp_path))
    assert ds.name == "fashion-mnist" and ds.x_test is None and ds.y_test is None
    assert ds.mean == (0.2860,) and ds.std == (0.3530,)


def test_idx_truncated(tmp_path):
    make_mnist(tmp_path)
    write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((6, 28, 28)), cut=5)
    with pytest.raises(
        InputError, match=r"train.*holds 4699 bytes of data but its header \(6, 28, 28\) announces 4704 \(truncated\)"
    ):
        load_dataset("mnist", data_dir=str(tmp_path))


def test_idx_truncated_gzip(tmp_path):
    make_mnist(tmp_path, gz=True)
    p = tmp_path / "train-labels-idx1-ubyte.gz"
    p.write_bytes(p.read_bytes()[:-10])
    with pytest.raises(InputError, match="corrupt or truncated gzip"):
        load_dataset("mnist", data_dir=str(tmp_path))


def test_idx_bad_magic(tmp_path):
    make_mnist(tmp_path)
    # labels written where images belong: magic 2049, not 2051
    write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros(6))
    with pytest.raises(InputError, match="magic number 2049, expected 2051"):
        load_dataset("mnist", data_dir=str(tmp_path))


def test_idx_count_mismatch(tmp_path):
    make_mnist(tmp_path)
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(5))
    with pytest.raises(InputError, match=r"6 images but .* 5 labels"):
        load_dataset("mnist", data_dir=str(tmp_path))


def test_idx_label_out_of_range(tmp_path):
    make_mnist(tmp_path)
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.full(6, 10))
    with pytest.raises(InputError, match=r"label 10; labels must be 0\.\.9"):
        load_dataset("mnist", data_dir=str(tmp_path))


def test_idx_missing_training_files(tmp_path):
    with pytest.raises(
        InputError,
        match=r"no MNIST training images found: looked for train-images-idx3-ubyte or "
        r"train-images-idx3-ubyte.gz in .*\(no such directory\)",
    ):
        load_dataset("mnist", data_dir=str(tmp_path / "nowhere"))
    make_mnist(tmp_path)
    (tmp_path / "train-labels-idx1-ubyte").unlink()
    with pytest.raises(InputError, match="no MNIST training labels found"):
        load_dataset("mnist", data_dir=str(tmp_path))


def test_idx_test_half_present(tmp_path):
    make_mnist(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(InputError, match="no MNIST test labels to go with t10k-images-idx3-ubyte found"):
        load_dataset("mnist", data_dir=str(tmp_path))


def test_real_mnist_test_only_dir():
    d = fixture_dir("mnist")
    if not (d / "t10k-images-idx3-ubyte.gz").is_file():
        skip_or_fail(f"real MNIST test files not present in {d}")
    with pytest.raises(InputError, match=r"no MNIST training images found.*only the t10k test files are there"):
        load_dataset("mnist", data_dir=str(d))
    x = read_idx(d / "t10k-images-idx3-ubyte.gz", kind="images")
    y = read_idx(d / "t10k-labels-idx1-ubyte.gz", kind="labels")
    assert x.shape == (10000, 28, 28) and x.dtype == np.uint8
    assert y.shape == (10000,) and set(np.unique(y)) == set(range(10))


def test_real_fashion_mnist():
    require_fashion_mnist()
    ds = load_dataset("fashion-mnist")
    assert ds.x_train.shape == (60000, 28, 28, 1) and ds.y_train.shape == (60000,)
    assert ds.x_test.shape == (10000, 28, 28, 1) and ds.y_test.shape == (10000,)
    assert np.bincount(ds.y_train).tolist() == [6000] * 10
    x = ds.x_train.astype(np.float32) / 255
    assert ds.mean[0] == pytest.approx(float(x.mean()), abs=1e-4)
    assert ds.std[0] == pytest.approx(float(x.std()), abs=1e-4)


# --------------------------------------------------------------------------- CIFAR


def test_cifar10_round_trip_and_hwc_order(tmp_path):
    d = tmp_path / "cifar-10-batches-py"
    rows, labels = make_cifar10(d)
    ds = load_dataset("cifar10", data_dir=str(d))
    assert ds.x_train.shape == (10, 32, 32, 3) and ds.x_train.dtype == np.uint8
    assert ds.x_train.flags.c_contiguous
    assert ds.y_train.tolist() == labels and ds.y_train.dtype == np.int64
    assert ds.x_test.shape == (2, 32, 32, 3) and ds.y_test.tolist() == [9, 9]
    # row layout: 1024 R, 1024 G, 1024 B, each plane row-major over (h, w)
    for i, h, w, c in [(0, 0, 0, 0), (3, 5, 7, 1), (9, 31, 30, 2), (4, 17, 0, 2)]:
        assert ds.x_train[i, h, w, c] == rows[i, c * 1024 + h * 32 + w]
    np.testing.assert_array_equal(ds.x_train, rows.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
    assert ds.mean == (0.4914, 0.4822, 0.4465) and ds.std == (0.2023, 0.1994, 0.2010)
    assert (ds.num_classes, ds.augment, ds.default_model) == (10, "crop_flip", "resnet18")
    # the parent folder is accepted too
    again = load_dataset("CIFAR-10", data_dir=str(tmp_path))
    np.testing.assert_array_equal(again.x_train, ds.x_train)


def test_cifar_known_planes(tmp_path):
    d = tmp_path / "c"
    make_cifar10(d, n=1)
    plane = np.zeros((1, 3072), np.uint8)
    plane[0, :1024], plane[0, 1024:2048], plane[0, 2048:] = 10, 20, 30  # R, G, B
    plane[0, 2048 + 2 * 32 + 3] = 99  # blue at h=2, w=3
    with open(d / "data_batch_1", "wb") as f:
        pickle.dump({b"data": plane, b"labels": [1]}, f)
    x = load_dataset("cifar10", data_dir=str(d)).x_train
    assert x[0, 0, 0].tolist() == [10, 20, 30] and x[0, 2, 3].tolist() == [10, 20, 99]
    assert x[0, 3, 2].tolist() == [10, 20, 30]


def test_cifar10_official_python2_pickle(tmp_path):
    d = tmp_path / "c"
    make_cifar10(d, n=2, test=False)
    rows = cifar_rows(2, 42)
    (d / "data_batch_1").write_bytes(py2_cifar_pickle(rows, [3, 4]))
    ds = load_dataset("cifar10", data_dir=str(d))
    assert ds.x_test is None
    np.testing.assert_array_equal(ds.x_train[:2], rows.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
    assert ds.y_train[:2].tolist() == [3, 4]


def test_cifar100_round_trip(tmp_path):
    rows, fine = make_cifar100(tmp_path / "cifar-100-python")
    ds = load_dataset("cifar100", data_dir=str(tmp_path))
    assert ds.x_train.shape == (3, 32, 32, 3) and ds.y_train.tolist() == fine
    np.testing.assert_array_equal(ds.x_train, rows.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
    assert ds.x_test.shape == (2, 32, 32, 3)
    assert ds.mean == (0.507, 0.487, 0.441) and ds.std == (0.267, 0.256, 0.276)
    assert (ds.num_classes, ds.augment, ds.default_model) == (100, "crop_flip", "resnet34")


def test_cifar_missing_files(tmp_path):
    with pytest.raises(InputError, match="no CIFAR-10 training batches found: looked for data_batch_1"):
        load_dataset("cifar10", data_dir=str(tmp_path))
    make_cifar10(tmp_path)
    (tmp_path / "data_batch_4").unlink()
    with pytest.raises(InputError, match="no CIFAR-10 training batch found: looked for data_batch_4"):
        load_dataset("cifar10", data_dir=str(tmp_path))


def test_cifar_corrupt_pickle(tmp_path):
    make_cifar10(tmp_path)
    p = tmp_path / "data_batch_2"
    p.write_bytes(p.read_bytes()[:1000])
    with pytest.raises(InputError, match="data_batch_2 is not a readable pickle"):
        load_dataset("cifar10", data_dir=str(tmp_path))
    p.write_bytes(b"this is not a pickle at all")
    with pytest.raises(InputError, match="not a readable pickle"):
        load_dataset("cifar10", data_dir=str(tmp_path))


def test_cifar_pickle_smuggling_code_is_refused(tmp_path):
    make_cifar10(tmp_path)
    marker = tmp_path / "pwned"
    with open(tmp_path / "data_batch_1", "wb") as f:
        pickle.dump({b"data": RunsShell(marker), b"labels": [0]}, f)
    with pytest.raises(InputError, match=r"refusing to load .*data_batch_1.*references (posix|nt|os)\.system"):
        load_dataset("cifar10", data_dir=str(tmp_path))
    assert not marker.exists()


@pytest.mark.parametrize(
    "batch, message",
    [
        ({b"labels": [0, 1]}, r"has no b'data' entry \(keys present: b'labels'\)"),
        ({b"data": cifar_rows(2, 0)}, "has no b'labels' entry"),
        (
            {b"data": cifar_rows(2, 0)[:, :3000], b"labels": [0, 1]},
            r"uint8 array of shape \(2, 3000\), expected .*\(n, 3072\)",
        ),
        ({b"data": cifar_rows(2, 0).astype(np.float32), b"labels": [0, 1]}, "float32 array"),
        ({b"data": cifar_rows(2, 0), b"labels": [0]}, "2 images but 1 labels"),
        ({b"data": cifar_rows(2, 0), b"labels": [0, 10]}, "label 10; labels must be 0..9"),
        ([1, 2, 3], "holds a list, expected a dict"),
    ],
)
def test_cifar_malformed_batch(tmp_path, batch, message):
    make_cifar10(tmp_path)
    with open(tmp_path / "data_batch_3", "wb") as f:
        pickle.dump(batch, f)
    with pytest.raises(InputError, match=message):
        load_dataset("cifar10", data_dir=str(tmp_path))


def test_cifar100_missing_fine_labels(tmp_path):
    make_cifar100(tmp_path)
    with open(tmp_path / "train", "wb") as f:
        pickle.dump({b"data": cifar_rows(1, 0), b"coarse_labels": [0]}, f)
    with pytest.raises(InputError, match="has no b'fine_labels' entry"):
        load_dataset("cifar100", data_dir=str(tmp_path))


# --------------------------------------------------------------------------- npz


def npz(tmp_path, name="t.npz", **arrays) -> str:
    p = tmp_path / name
    np.savez(p, **arrays)
    return str(p)


def test_npz_features(tmp_path):
    x = np.array([[1.0, 10.0], [3.0, 10.0], [5.0, 10.0], [7.0, 10.0]])
    p = npz(
        tmp_path,
        "table.npz",
        x=x,
        y=np.array([0.0, 1.0, 2.0, 1.0]),
        x_test=np.ones((2, 2), np.int32),
        y_test=np.array([2, 0]),
    )
    ds = load_dataset(p)
    assert ds.name == "table.npz" and not ds.is_image
    assert ds.x_train.dtype == np.float32 and ds.x_test.dtype == np.float32
    assert ds.y_train.dtype == np.int64 and ds.y_train.tolist() == [0, 1, 2, 1]
    assert ds.num_classes == 3
    assert ds.mean == pytest.approx((4.0, 10.0)) and ds.std == pytest.approx((np.sqrt(5.0), 1e-6))
    assert (ds.augment, ds.default_model, ds.labels_are_clean) == ("none", "mlp", False)


def test_npz_relative_to_data_dir(tmp_path):
    npz(tmp_path, x=np.zeros((2, 3)), y=np.array([0, 1]))
    assert load_dataset("t.npz", data_dir=str(tmp_path)).num_classes == 2


def test_npz_images(tmp_path):
    x3 = np.random.default_rng(0).integers(0, 256, (4, 28, 28), dtype=np.uint8)
    ds = load_dataset(npz(tmp_path, x=x3, y=np.array([0, 1, 0, 1])))
    assert ds.x_train.shape == (4, 28, 28, 1) and ds.x_train.dtype == np.uint8
    np.testing.assert_array_equal(ds.x_train[..., 0], x3)
    assert ds.mean == pytest.approx((x3.mean() / 255,)) and ds.std == pytest.approx((x3.std() / 255,))
    assert ds.default_model == "lenet" and ds.augment == "none"
    x4 = np.random.default_rng(1).integers(0, 256, (2, 32, 32, 3)).astype(np.int64)  # int pixels are OK
    ds = load_dataset(npz(tmp_path, x=x4, y=np.array([1, 0])))
    assert ds.x_train.dtype == np.uint8 and ds.default_model == "resnet18" and len(ds.mean) == 3
    np.testing.assert_array_equal(ds.x_train, x4)
    small = np.zeros((2, 8, 8), np.uint8)
    assert load_dataset(npz(tmp_path, x=small, y=np.array([1, 0]))).default_model == "mlp"


@pytest.mark.parametrize(
    "arrays, message",
    [
        (dict(y=np.array([0, 1])), r"no array named 'x' \(arrays present: y\)"),
        (dict(x=np.zeros((2, 2))), "no array named 'y'"),
        (dict(x=np.zeros((3, 2)), y=np.array([0, 1])), "3 rows in x but 2 labels in y"),
        (dict(x=np.zeros((0, 2)), y=np.zeros(0, np.int64)), "empty data set"),
        (dict(x=np.zeros((2, 2)), y=np.array([0, 1.5])), "non-integer label 1.5"),
        (dict(x=np.zeros((2, 2)), y=np.array([0, -1])), "negative label -1"),
        (dict(x=np.array([[0.0, np.nan], [1, 1]]), y=np.array([0, 1])), "x in .* contains NaN or infinite"),
        (dict(x=np.array([[0.0, np.inf], [1, 1]]), y=np.array([0, 1])), "NaN or infinite"),
        (dict(x=np.array([[0.0, 1e300], [1, 1]]), y=np.array([0, 1])), r"after conversion to float32"),
        (dict(x=np.zeros((2, 2)), y=np.array([0, 1]), x_test=np.zeros((1, 2))), "has x_test but no y_test"),
        (dict(x=np.zeros((2, 2)), y=np.array([0, 1]), y_test=np.zeros(1)), "has y_test but no x_test"),
        (dict(x=np.zeros((3, 2)), y=np.array([0, 2, 2])), "no training example of class 1;"),
        (
            dict(x=np.zeros((3, 2)), y=np.array([0, 1, 1]), x_test=np.zeros((1, 2)), y_test=np.array([3])),
            r"^y_test in .*t\.npz holds the class 3, which y never has; test labels must be classes of the training "
            r"labels \(0\.\.1\)$",
        ),
        (
            dict(x=np.zeros((2, 2)), y=np.array([0, 10**6])),
            r"no training example of classes 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, \.\.\.; labels must cover 0\.\.1000000",
        ),
        (dict(x=np.zeros((2, 2)), y=np.array([0, 0])), "only one class"),
        (dict(x=np.zeros((2, 2)), y=np.array(["a", "b"])), "labels must be integers"),
        (dict(x=np.zeros(2), y=np.array([0, 1])), r"shape \(2,\); expected features"),
        (dict(x=np.zeros((2, 3, 8, 8), np.uint8), y=np.array([0, 1])), "looks channel-first"),
        (dict(x=np.full((2, 8, 8), 0.5), y=np.array([0, 1])), "integer pixel values 0..255"),
        (
            dict(x=np.zeros((2, 2)), y=np.array([0, 1]), x_test=np.zeros((1, 3)), y_test=np.array([0])),
            r"x_test examples of shape \(3,\) but x examples of shape \(2,\)",
        ),
        (
            dict(x=np.zeros((2, 2)), y=np.array([0, 1]), x_test=np.zeros((2, 2)), y_test=np.array([0])),
            "2 rows in x_test but 1 labels in y_test",
        ),
    ],
)
def test_npz_problems(tmp_path, arrays, message):
    with pytest.raises(InputError, match=message):
        load_dataset(npz(tmp_path, **arrays))


def test_npz_float_integer_labels_ok(tmp_path):
    ds = load_dataset(npz(tmp_path, x=np.zeros((2, 2)), y=np.array([[1.0], [0.0]])))
    assert ds.y_train.tolist() == [1, 0] and ds.y_train.dtype == np.int64


def test_npz_object_array_refused(tmp_path):
    p = tmp_path / "obj.npz"
    np.savez(p, x=np.array([[1, 2], [3, 4]], dtype=object), y=np.array([0, 1]))
    with pytest.raises(InputError, match="object arrays"):
        load_dataset(str(p))


def test_npz_corrupt(tmp_path):
    with pytest.raises(InputError, match=r"no \.npz file found at"):
        load_dataset(str(tmp_path / "missing.npz"))
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip file")
    with pytest.raises(InputError, match=r"bad\.npz is not a readable \.npz file"):
        load_dataset(str(bad))
    good = npz(tmp_path, x=np.random.default_rng(0).normal(size=(200, 5)), y=np.arange(200) % 2)
    trunc = tmp_path / "trunc.npz"
    trunc.write_bytes(Path(good).read_bytes()[:3000])
    with pytest.raises(InputError, match=r"trunc\.npz is not a readable \.npz file"):
        load_dataset(str(trunc))


# --------------------------------------------------------------------------- CIFAR-N


def test_human_labels_cifar10n(tmp_path):
    rng = np.random.default_rng(0)
    labels = {
        k: rng.integers(0, 10, 50)
        for k in ("clean_label", "worse_label", "aggre_label", "random_label1", "random_label2", "random_label3")
    }
    p = tmp_path / "CIFAR-10_human.pt"
    torch.save(labels, p)
    out = load_human_labels(str(p))
    assert out.dtype == np.int64 and out.shape == (50,)
    np.testing.assert_array_equal(out, labels["worse_label"])
    np.testing.assert_array_equal(load_human_labels(str(p), key="aggre_label"), labels["aggre_label"])
    with pytest.raises(InputError, match="has no key 'bogus'; keys present: clean_label, worse_label, aggre_label"):
        load_human_labels(str(p), key="bogus")


def test_human_labels_cifar100n_and_npy(tmp_path):
    p = tmp_path / "CIFAR-100_human.pt"
    noisy = np.array([5, 99, 0], dtype=np.int32)
    torch.save({"clean_label": np.array([5, 98, 0]), "noisy_label": noisy}, p)
    np.testing.assert_array_equal(load_human_labels(str(p)), noisy)
    q = tmp_path / "labels.npy"
    np.save(q, noisy)
    np.testing.assert_array_equal(load_human_labels(str(q)), noisy)
    with pytest.raises(InputError, match="omit the key"):
        load_human_labels(str(q), key="noisy_label")
    r = tmp_path / "other.pt"
    torch.save({"a": np.zeros(3, np.int64)}, r)
    with pytest.raises(InputError, match="neither 'worse_label' nor 'noisy_label'; choose a key from: a"):
        load_human_labels(str(r))


def test_human_labels_bad_values(tmp_path):
    p = tmp_path / "h.pt"
    torch.save({"worse_label": np.array([0.0, 2.5])}, p)
    with pytest.raises(InputError, match=r"non-integer label 2\.5"):
        load_human_labels(str(p))
    torch.save({"worse_label": torch.tensor([1, -3])}, p)
    with pytest.raises(InputError, match="negative label -3"):
        load_human_labels(str(p))


def test_human_labels_refuses_code_and_corruption(tmp_path):
    marker = tmp_path / "pwned"
    p = tmp_path / "evil.pt"
    torch.save({"worse_label": RunsShell(marker)}, p)
    with pytest.raises(InputError, match=r"refusing to load label file .*needs pickled code"):
        load_human_labels(str(p))
    assert not marker.exists()
    q = tmp_path / "broken.pt"
    q.write_bytes(b"garbage")
    with pytest.raises(InputError, match=r"is not a file written by torch\.save"):
        load_human_labels(str(q))
    with pytest.raises(InputError, match="no human label file found"):
        load_human_labels(str(tmp_path / "missing.pt"))


def test_a_human_label_file_of_another_kind_is_named_and_never_loaded_unsafely(tmp_path):
    """A CSV, an empty file, a cut-short archive or a folder given as CIFAR-N's file: one sentence
    that says what it is, never torch's advice to load it with weights_only=False (that would run
    the file's code)."""
    (tmp_path / "labels.csv").write_text("\ufefflabel\n1\n2\n", encoding="utf-8")
    (tmp_path / "empty.pt").write_bytes(b"")
    torch.save({"worse_label": torch.arange(50)}, tmp_path / "whole.pt")
    (tmp_path / "cut.pt").write_bytes((tmp_path / "whole.pt").read_bytes()[:200])
    (tmp_path / "folder.pt").mkdir()
    expected = {
        "labels.csv": "label file {p} is not a file written by torch.save (it begins b'\\xef\\xbb\\xbflabel\\n1\\n2\\n'); "
        "give CIFAR-N's .pt file, or the labels as a .npy or .npz array",
        "empty.pt": "label file {p} is empty; give CIFAR-N's .pt file, or the labels as a .npy or .npz array",
        "folder.pt": "the human label file {p} is a folder; give the label file itself (CIFAR-N's .pt, or a .npy or "
        ".npz array)",
    }
    for name, message in expected.items():
        with pytest.raises(InputError) as e:
            load_human_labels(str(tmp_path / name))
        assert str(e.value) == message.format(p=tmp_path / name)
    with pytest.raises(InputError) as e:
        load_human_labels(str(tmp_path / "cut.pt"))
    text = str(e.value)
    assert text.startswith(f"label file {tmp_path / 'cut.pt'} is not a readable torch file (corrupt or truncated: ")
    assert "weights_only" not in text and "internal miniz error" not in text and "\n" not in text
    np.testing.assert_array_equal(load_human_labels(str(tmp_path / "whole.pt")), np.arange(50))

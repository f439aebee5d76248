"""Image-file readers: Clothing1M's official layout and class-per-folder image folders.

Every source is written by :mod:`memomentum.testing` in its exact on-disk layout
and read back; each kind of malformed input must be an InputError whose message names
the count and the first offenders, never a silent drop.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import PIL  # noqa: F401 -- the writers need Pillow (the test extra installs it; the readers do not)
import pytest
from helpers import fixture_dir

from memomentum.base.errors import InputError
from memomentum.data import clothing1m
from memomentum.data.clothing1m import ANNOTATION_FILES, CLOTHING1M_CLASSES, read_clothing1m
from memomentum.data.folders import read_image_folder
from memomentum.testing.clothing1m import write_clothing1m
from memomentum.testing.clothing1m_scale import write_annotation_scale
from memomentum.testing.folders import write_image_folder

# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def mini(tmp_path_factory) -> dict:
    """The default miniature (14 x 20 noisy training images), annotation files in root."""
    return write_clothing1m(tmp_path_factory.mktemp("c1m") / "release")


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> dict:
    """A smaller miniature (14 x 2 training images), for tests that copy it."""
    return write_clothing1m(
        tmp_path_factory.mktemp("c1m") / "small",
        per_class=2,
        n_clean_noisy=3,
        n_val_per_class=1,
        n_test_per_class=1,
        seed=2,
    )


@pytest.fixture
def ann(mini, tmp_path) -> Path:
    """A copy of the miniature's annotation files alone (no images: read them with
    check_files=False), to be damaged by a test."""
    root = tmp_path / "release"
    root.mkdir()
    for name in ANNOTATION_FILES:
        shutil.copy(mini["annotations"] / name, root / name)
    return root


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


def write(path: Path, rows: list[str]) -> None:
    path.write_text("\n".join(rows) + "\n")


def error(root: Path, **kwargs) -> str:
    with pytest.raises(InputError) as e:
        read_clothing1m(root, **kwargs)
    return str(e.value)


# --------------------------------------------------------------------------- Clothing1M: reading back


def check_noisy_read(files, info: dict) -> None:
    root = Path(os.path.abspath(info["root"]))
    n = info["n_train"]
    assert files.name == "clothing1m" and files.root == root
    assert files.class_names == CLOTHING1M_CLASSES
    assert (len(files.train), len(files.val), len(files.test)) == (n, info["n_val"], info["n_test"])
    assert files.train.paths == [str(root / k) for k in info["train_keys"]]
    assert all(os.path.isabs(p) and os.path.isfile(p) for p in files.train.paths + files.val.paths + files.test.paths)
    assert files.train.labels.dtype == np.int64
    np.testing.assert_array_equal(files.train.labels, info["noisy_labels"])
    np.testing.assert_array_equal(files.val.labels, info["val_labels"])
    np.testing.assert_array_equal(files.test.labels, info["test_labels"])
    expected_known = np.full(n, -1)
    expected_known[info["clean_noisy_index"]] = info["true_labels"][info["clean_noisy_index"]]
    np.testing.assert_array_equal(files.known_train_labels, expected_known)
    assert files.known_train_labels.dtype == np.int64


def test_miniature_reads_back_annotations_in_root(mini):
    files = read_clothing1m(mini["root"], image_size=64)
    check_noisy_read(files, mini)
    assert files.image_size == 64
    assert mini["n_noisy_kv"] > mini["n_train"]  # like the release, the kv file labels more images
    flipped = np.mean(mini["noisy_labels"] != mini["true_labels"])
    assert 0.15 < flipped < 0.45  # noise=0.3


def test_miniature_reads_back_annotations_folder(tmp_path):
    info = write_clothing1m(
        tmp_path / "r",
        per_class=3,
        n_clean_noisy=5,
        n_val_per_class=1,
        n_test_per_class=2,
        layout="annotations",
        seed=3,
    )
    assert not (tmp_path / "r" / "noisy_label_kv.txt").exists()
    assert (tmp_path / "r" / "annotations" / "noisy_label_kv.txt").is_file()
    files = read_clothing1m(tmp_path / "r")
    check_noisy_read(files, info)
    assert (len(files.train), len(files.val), len(files.test)) == (42, 14, 28)
    assert (files.known_train_labels >= 0).sum() == 5


def test_annotation_lines_in_the_releases_own_form_are_read(tmp_path):
    """Lines typed in the form of the official release (tests/fixtures/clothing1m), not
    written by this package's own writer: "images/<d>/<dd>/<name>.jpg LABEL", one key a line."""
    root = tmp_path / "release"
    shutil.copytree(fixture_dir("clothing1m"), root / "annotations")
    files = read_clothing1m(root, check_files=False)
    key = lambda k: str(root / k)  # noqa: E731
    assert files.train.paths == [
        key("images/5/46/3326128546.jpg"),
        key("images/0/05/2190325805.jpg"),
        key("images/9/37/1835143937.jpg"),
        key("images/7/12/3979287712.jpg"),
    ]
    assert files.train.labels.tolist() == [4, 0, 11, 7]  # noisy_label_kv.txt
    assert files.known_train_labels.tolist() == [-1, 1, -1, 7]  # clean_label_kv.txt where it has the key
    assert files.val.paths == [key("images/8/03/3105287803.jpg"), key("images/1/90/2953816190.jpg")]
    assert (files.val.labels.tolist(), files.test.labels.tolist()) == ([5, 12], [3])
    assert files.class_names[0] == "T-Shirt" and files.class_names[13] == "Underwear"
    clean = read_clothing1m(root, train_set="clean", check_files=False)
    assert clean.train.labels.tolist() == [7, 9] and clean.known_train_labels is None


def test_clean_train_set(mini):
    files = read_clothing1m(mini["root"], train_set="clean")
    index = mini["clean_noisy_index"]
    assert len(files.train) == mini["n_clean_train"] == 20
    assert files.train.paths == [os.path.abspath(mini["root"] / mini["train_keys"][i]) for i in index]
    np.testing.assert_array_equal(files.train.labels, mini["true_labels"][index])
    assert files.known_train_labels is None
    assert len(files.val) == mini["n_val"] and len(files.test) == mini["n_test"]


def test_clean_train_set_needs_no_noisy_files(ann):
    (ann / "noisy_label_kv.txt").unlink()
    (ann / "noisy_train_key_list.txt").unlink()
    assert len(read_clothing1m(ann, train_set="clean", check_files=False).train) == 20
    assert "noisy_label_kv.txt not found" in error(ann, check_files=False)


def test_known_labels_none_when_no_training_image_has_a_clean_label(ann):
    train = set(lines(ann / "noisy_train_key_list.txt"))
    write(ann / "clean_label_kv.txt", [r for r in lines(ann / "clean_label_kv.txt") if r.split()[0] not in train])
    files = read_clothing1m(ann, check_files=False)
    assert files.known_train_labels is None


def test_blank_lines_crlf_and_trailing_whitespace_are_fine(ann, mini):
    for name in ("noisy_label_kv.txt", "noisy_train_key_list.txt", "category_names_eng.txt"):
        rows = lines(ann / name)
        text = "\r\n".join(r + " \t" for r in rows[:3]) + "\r\n\r\n  \n" + "\r\n".join(rows[3:]) + "\r\n\n"
        (ann / name).write_bytes(text.encode())
    files = read_clothing1m(ann, check_files=False)
    np.testing.assert_array_equal(files.train.labels, mini["noisy_labels"])
    assert files.class_names == CLOTHING1M_CLASSES


def test_clothing1m_lists_saved_with_a_byte_order_mark_read_as_without(ann, mini):
    """Notepad's "UTF-8 with BOM": the mark is not part of the first key, label or class name."""
    before = read_clothing1m(ann, check_files=False)
    for name in ANNOTATION_FILES:
        (ann / name).write_bytes(b"\xef\xbb\xbf" + (ann / name).read_bytes())
    files = read_clothing1m(ann, check_files=False)
    assert files.train.paths == before.train.paths and files.test.paths == before.test.paths
    np.testing.assert_array_equal(files.train.labels, mini["noisy_labels"])
    np.testing.assert_array_equal(files.known_train_labels, before.known_train_labels)
    assert files.class_names == CLOTHING1M_CLASSES


def test_other_integer_spellings_of_a_label_are_read(ann, mini):
    rows = lines(ann / "noisy_label_kv.txt")
    key, label = rows[0].split()
    rows[0] = f"{key} 0{label}"
    write(ann / "noisy_label_kv.txt", rows)
    assert read_clothing1m(ann, check_files=False).train.labels[0] == int(label)


def test_same_label_twice_is_accepted(ann):
    rows = lines(ann / "noisy_label_kv.txt")
    write(ann / "noisy_label_kv.txt", rows + rows[:3])
    assert len(read_clothing1m(ann, check_files=False).train) == 280


# --------------------------------------------------------------------------- Clothing1M: errors


def test_missing_annotation_file_names_both_places(ann):
    (ann / "clean_val_key_list.txt").unlink()
    msg = error(ann, check_files=False)
    assert "clean_val_key_list.txt" in msg and f"{ann} and {ann / 'annotations'}" in msg


def test_bad_arguments(mini, tmp_path):
    assert "train_set" in error(mini["root"], train_set="dirty") and "'noisy'" in error(mini["root"], train_set="x")
    assert "image_size" in error(mini["root"], image_size=0)
    assert "not a directory" in error(tmp_path / "nowhere")


def test_malformed_kv_lines_give_count_and_line_numbers(ann):
    rows = lines(ann / "noisy_label_kv.txt")
    for i in (2, 4, 6, 8, 10, 12, 14):  # 7 bad lines: 5 shown, "2 more"
        rows[i] = rows[i].split()[0] if i % 4 else rows[i] + " extra"
    write(ann / "noisy_label_kv.txt", rows)
    msg = error(ann, check_files=False)
    assert "noisy_label_kv.txt has 7 malformed lines" in msg
    assert "line 3 " in msg and "line 11 " in msg and "line 13 " not in msg and "and 2 more" in msg
    assert "'KEY LABEL'" in msg


def test_labels_out_of_range_or_not_integers(ann):
    rows = lines(ann / "clean_label_kv.txt")
    for i, bad in ((0, "14"), (5, "-1"), (9, "three"), (10, "2.0")):
        rows[i] = f"{rows[i].split()[0]} {bad}"
    write(ann / "clean_label_kv.txt", rows)
    msg = error(ann, check_files=False)
    assert "clean_label_kv.txt has 4 labels that are not an integer in 0..13" in msg
    assert "line 1 " in msg and "14'" in msg and "three" in msg and "line 11 " in msg


def test_key_without_label(ann):
    rows = lines(ann / "noisy_label_kv.txt")
    train = lines(ann / "noisy_train_key_list.txt")
    dropped = {train[3], train[7], train[50]}
    write(ann / "noisy_label_kv.txt", [r for r in rows if r.split()[0] not in dropped])
    msg = error(ann, check_files=False)
    assert "noisy_train_key_list.txt lists 3 keys that have no label in" in msg and "noisy_label_kv.txt" in msg
    assert f"{train[3]}, {train[7]}, {train[50]}" in msg


def test_many_keys_without_label_show_five(ann):
    train = lines(ann / "noisy_train_key_list.txt")
    write(ann / "noisy_train_key_list.txt", train + [f"images/9/99/new{i}.jpg" for i in range(8)])
    msg = error(ann, check_files=False)
    assert "lists 8 keys that have no label" in msg and "new4.jpg" in msg and "new5.jpg" not in msg
    assert msg.endswith("and 3 more")


def test_val_key_without_clean_label(ann):
    val = lines(ann / "clean_val_key_list.txt")
    write(ann / "clean_label_kv.txt", [r for r in lines(ann / "clean_label_kv.txt") if r.split()[0] != val[0]])
    msg = error(ann, check_files=False)
    assert "clean_val_key_list.txt lists 1 key that has no label" in msg and val[0] in msg


def test_duplicate_keys_in_a_key_list(ann):
    test = lines(ann / "clean_test_key_list.txt")
    write(ann / "clean_test_key_list.txt", test + [test[2], test[0], test[2]])
    msg = error(ann, check_files=False)
    assert "clean_test_key_list.txt lists 2 keys more than once" in msg and f"{test[2]}, {test[0]}" in msg


def test_malformed_key_list_line(ann):
    rows = lines(ann / "noisy_train_key_list.txt")
    rows[4] += " 3"
    write(ann / "noisy_train_key_list.txt", rows)
    msg = error(ann, check_files=False)
    assert "noisy_train_key_list.txt has 1 malformed line (each must hold one key)" in msg and "line 5 " in msg


def test_empty_key_list(ann):
    write(ann / "clean_test_key_list.txt", ["", "  "])
    assert "clean_test_key_list.txt lists no keys" in error(ann, check_files=False)


def test_conflicting_labels_for_one_key(ann):
    rows = lines(ann / "noisy_label_kv.txt")
    key, label = rows[1].split()
    write(ann / "noisy_label_kv.txt", rows + [f"{key} {(int(label) + 1) % 14}"])
    msg = error(ann, check_files=False)
    assert "gives 1 key a second, different label" in msg and key in msg and f"line 2: {label}" in msg


@pytest.mark.parametrize("names", [CLOTHING1M_CLASSES[:13], CLOTHING1M_CLASSES + ("Coat",)])
def test_category_names_must_be_fourteen(ann, names):
    write(ann / "category_names_eng.txt", list(names))
    msg = error(ann, check_files=False)
    assert "category_names_eng.txt holds" in msg and f"{len(names)} category names, expected exactly 14" in msg


def test_not_utf8_names_the_line(ann):
    path = ann / "clean_test_key_list.txt"
    path.write_bytes(path.read_bytes() + b"images/0/00/\xff.jpg\n")
    msg = error(ann, check_files=False)
    assert "clean_test_key_list.txt is not UTF-8 text" in msg and "line 57 " in msg


def test_an_annotation_file_that_is_a_folder_is_named_so(ann):
    (ann / "clean_test_key_list.txt").unlink()
    (ann / "clean_test_key_list.txt").mkdir()
    assert error(ann, check_files=False) == (
        f"Clothing1M annotation file clean_test_key_list.txt not found: looked in {ann} and {ann / 'annotations'} "
        f"({ann / 'clean_test_key_list.txt'} is a folder, not the file)"
    )


def test_a_zero_filled_key_list_is_refused_naming_the_line(ann):
    path = ann / "noisy_train_key_list.txt"
    n = len(lines(path))
    path.write_bytes(path.read_bytes() + b"\x00" * 4096)  # the tail of a copy cut short
    assert error(ann, check_files=False) == (
        f"{path} holds NUL bytes on line {n + 1}, which no list of the release "
        f"has: the file was cut short or zero-filled by an interrupted copy; "
        f"copy it again"
    )


@pytest.fixture(params=["stat", "listing"])
def check_by(request, monkeypatch) -> str:
    """Check image files one by one, or by listing their folders (the way chosen for
    keys dense in their folders, as the million noisy training keys are)."""
    monkeypatch.setattr(clothing1m, "_KEYS_PER_FOLDER_TO_LIST", 10**9 if request.param == "stat" else 0)
    return request.param


def test_missing_images(small, tmp_path, check_by):
    root = tmp_path / "release"
    shutil.copytree(small["root"], root, copy_function=os.link)  # hard links: fast, and only the links go
    keys = small["train_keys"]
    for i in (11, 9, 7, 5, 3, 1):
        (root / keys[i]).unlink()
    shutil.rmtree(root / Path(keys[20]).parent)  # a whole image folder
    gone = sorted({1, 3, 5, 7, 9, 11} | {i for i, k in enumerate(keys) if Path(k).parent == Path(keys[20]).parent})
    msg = error(root)
    assert msg.startswith(f"{len(gone)} of the 28 images listed in ")
    assert "noisy_train_key_list.txt are missing under" in msg
    assert ", ".join(keys[i] for i in gone[:5]) in msg and msg.endswith(f" and {len(gone) - 5} more")
    assert len(read_clothing1m(root, check_files=False).train) == 28  # not checked: read all the same


def test_missing_test_image(small, tmp_path, check_by):
    root = tmp_path / "release"
    shutil.copytree(small["root"], root, copy_function=os.link)
    test_key = lines(root / "clean_test_key_list.txt")[3]
    (root / test_key).unlink()
    os.mkdir(root / test_key)  # a folder where the image should be is no image either
    msg = error(root)
    assert "1 of the 14 images listed in" in msg and "clean_test_key_list.txt is missing" in msg and test_key in msg


def test_missing_files_both_ways(tmp_path, check_by):
    (tmp_path / "a" / "b").mkdir(parents=True)
    for name in ("top.jpg", "a/b/x.jpg", "a/b/y.jpg", "a/dir.jpg/z.jpg"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    os.symlink(tmp_path / "a/b/x.jpg", tmp_path / "a/b/link.jpg")
    os.symlink(tmp_path / "a/b/gone.jpg", tmp_path / "a/b/broken.jpg")
    keys = [
        "a/b/y.jpg",
        "nothere.jpg",
        "a/b/link.jpg",
        "top.jpg",
        "a/b/broken.jpg",
        "a/dir.jpg",
        "c/d.jpg",
        "a/b/x.jpg",
    ]
    assert clothing1m._missing_files(tmp_path, keys) == ["nothere.jpg", "a/b/broken.jpg", "a/dir.jpg", "c/d.jpg"]
    assert clothing1m._missing_files(tmp_path, ["a/b/x.jpg", "top.jpg"]) == []


# --------------------------------------------------------------------------- synthetic writers


def test_synthetic_classes_are_learnable(mini):
    """A nearest-class-mean rule on the pixels separates the classes of held-out images:
    the patterns are there for a small CNN to learn."""
    from PIL import Image

    files = read_clothing1m(mini["root"], check_files=False)

    def pixels(paths):
        return np.stack([np.asarray(Image.open(p), dtype=np.float32).mean(axis=(0, 1)) for p in paths])

    x, y = pixels(files.train.paths), mini["true_labels"]
    means = np.stack([x[y == c].mean(axis=0) for c in range(14)])
    xv = pixels(files.val.paths)
    predicted = np.argmin(((xv[:, None, :] - means[None]) ** 2).sum(-1), axis=1)
    assert np.mean(predicted == files.val.labels) > 0.9
    with Image.open(files.train.paths[0]) as im:
        assert im.format == "JPEG" and im.size == (48, 40) and im.mode == "RGB"


def test_synthetic_is_seeded(tmp_path):
    a = write_clothing1m(tmp_path / "a", per_class=2, n_clean_noisy=3, n_val_per_class=1, n_test_per_class=1, seed=5)
    b = write_clothing1m(tmp_path / "b", per_class=2, n_clean_noisy=3, n_val_per_class=1, n_test_per_class=1, seed=5)
    assert (tmp_path / "a" / a["train_keys"][0]).read_bytes() == (tmp_path / "b" / b["train_keys"][0]).read_bytes()
    for name in ANNOTATION_FILES:
        assert (tmp_path / "a" / name).read_text() == (tmp_path / "b" / name).read_text()


def test_annotation_scale_reads_back_and_resumes(mini, tmp_path):
    info = write_annotation_scale(tmp_path / "big", n_keys=600, images_from=mini["root"], seed=1)
    assert (info["n_val"], info["n_test"], info["n_clean_train"], info["n_noisy_kv"]) == (9, 6, 29, 622)
    files = read_clothing1m(tmp_path / "big")
    assert (len(files.train), len(files.val), len(files.test)) == (600, 9, 6)
    np.testing.assert_array_equal(files.train.labels, info["noisy_labels"])
    known = files.known_train_labels
    assert (known >= 0).sum() == 29
    np.testing.assert_array_equal(known[known >= 0], info["true_labels"][known >= 0])
    assert os.path.samefile(files.train.paths[0], files.train.paths[info["n_sources"]])  # hard links
    # a resumed run keeps what is there and fills in what is not
    os.unlink(files.train.paths[5])
    write_annotation_scale(tmp_path / "big", n_keys=600, images_from=mini["root"], seed=1)
    assert len(read_clothing1m(tmp_path / "big").train) == 600


# --------------------------------------------------------------------------- image folders


def folder_error(path, **kwargs) -> str:
    with pytest.raises(InputError) as e:
        read_image_folder(path, **kwargs)
    return str(e.value)


def test_image_folder_train_and_test(tmp_path):
    info = write_image_folder(tmp_path / "pets", classes=("fox", "cat", "dog"), per_class=4, test_per_class=2)
    files = read_image_folder(tmp_path / "pets", image_size=32)
    assert files.name == "pets" and files.root == tmp_path / "pets" and files.image_size == 32
    assert files.class_names == ("cat", "dog", "fox") == info["class_names"]
    assert files.val is None and files.known_train_labels is None
    assert len(files.train) == 12 and len(files.test) == 6
    np.testing.assert_array_equal(files.train.labels, np.repeat([0, 1, 2], 4))
    np.testing.assert_array_equal(files.test.labels, np.repeat([0, 1, 2], 2))
    assert files.train.paths[:2] == [str(tmp_path / "pets/train/cat" / n) for n in ("0000.jpg", "0001.jpg")]
    assert files.test.paths[-1] == str(tmp_path / "pets/test/fox/0001.jpg")


def test_image_folder_flat_png(tmp_path):
    write_image_folder(tmp_path / "flat", classes=("b", "A", "a"), per_class=3, fmt="png", layout="flat")
    files = read_image_folder(tmp_path / "flat")
    assert files.class_names == ("A", "a", "b")  # sorted as strings, like ImageFolder
    assert files.test is None and len(files.train) == 9
    assert all(p.endswith(".png") for p in files.train.paths)
    from PIL import Image

    with Image.open(files.train.paths[0]) as im:
        assert im.format == "PNG" and im.size == (40, 32)


def test_image_folder_train_without_test(tmp_path):
    write_image_folder(tmp_path / "d", per_class=2)
    files = read_image_folder(tmp_path / "d")
    assert files.test is None and len(files.train) == 6


def test_image_folder_extensions_hidden_and_other_files(tmp_path):
    root = tmp_path / "d"
    write_image_folder(root, classes=("x", "y"), per_class=2, layout="flat")
    jpg = (root / "x" / "0000.jpg").read_bytes()
    for name in ("UP.JPG", "mixed.Jpeg", "sub/deep.jpg", "zz.png"):
        (root / "x" / name).parent.mkdir(exist_ok=True)
        (root / "x" / name).write_bytes(jpg)
    for name in (".hidden.jpg", "notes.txt", "image.gif", "0000.jpg.bak"):
        (root / "x" / name).write_bytes(b"x")
    (root / "x" / ".cache").mkdir()
    (root / "x" / ".cache" / "thumb.jpg").write_bytes(jpg)
    (root / ".git").mkdir()  # a hidden folder is no class
    (root / ".git" / "a.jpg").write_bytes(jpg)
    (root / "README.md").write_text("loose files beside the class folders are ignored")
    files = read_image_folder(root)
    assert files.class_names == ("x", "y")
    names = [os.path.relpath(p, root / "x") for p, y in zip(files.train.paths, files.train.labels) if y == 0]
    assert names == ["0000.jpg", "0001.jpg", "UP.JPG", "mixed.Jpeg", "zz.png", os.path.join("sub", "deep.jpg")]


def test_image_folder_not_a_directory(tmp_path):
    assert "does not exist or is not a directory" in folder_error(tmp_path / "missing")
    (tmp_path / "file.jpg").write_bytes(b"x")
    assert str(tmp_path / "file.jpg") in folder_error(tmp_path / "file.jpg")


def test_image_folder_needs_two_classes(tmp_path):
    write_image_folder(tmp_path / "one", classes=("only",), per_class=2)
    msg = folder_error(tmp_path / "one")
    assert "at least 2 classes" in msg and "only 'only'" in msg
    (tmp_path / "none").mkdir()
    (tmp_path / "none" / "a.jpg").write_bytes(b"x")
    assert "found none" in folder_error(tmp_path / "none")


def test_image_folder_unknown_test_class(tmp_path):
    root = tmp_path / "d"
    write_image_folder(root, per_class=2, test_per_class=1)
    shutil.copytree(root / "test" / "cat", root / "test" / "wolf")
    msg = folder_error(root)
    assert "1 class folder that is not among the training classes" in msg and "'wolf'" in msg


def test_image_folder_empty_test_folder(tmp_path):
    root = tmp_path / "d"
    write_image_folder(root, per_class=2)
    (root / "test").mkdir()
    assert "has no class sub-folders" in folder_error(root)


def test_image_folder_class_without_images(tmp_path):
    root = tmp_path / "d"
    write_image_folder(root, classes=("a", "b", "c"), per_class=2, layout="flat")
    for p in (root / "b").iterdir():
        p.unlink()
    (root / "b" / "labels.csv").write_text("x")
    (root / "b" / "thumb.gif").write_text("x")
    msg = folder_error(root)
    assert (
        "1 class folder in" in msg
        and ("holds no .jpg, .jpeg, .png, .ppm, .bmp, .pgm, .tif, .tiff or .webp image: 'b' (2 other files)") in msg
    )


def test_image_folder_without_any_image(tmp_path):
    for c in ("a", "b"):
        (tmp_path / "d" / c).mkdir(parents=True)
        (tmp_path / "d" / c / "x.txt").write_text("x")
    msg = folder_error(tmp_path / "d")
    assert "holds no images" in msg and "2 class folders" in msg


# --------------------------------------------------------------------------- unusual folders (issue 18)


def test_a_class_folder_linked_to_its_parent_is_refused(tmp_path):
    root = tmp_path / "d"
    write_image_folder(root, classes=("a", "b"), per_class=2, layout="flat")
    os.symlink(root, root / "c")  # every image would be read again as class 'c'
    msg = folder_error(root)
    assert f"class folder {root / 'c'} is a symbolic link (to {root})" in msg and "count its images twice" in msg


def test_every_imagefolder_format_is_read_and_skipped_files_are_named(tmp_path, capsys):
    from PIL import Image

    root = tmp_path / "d"
    write_image_folder(root, classes=("a", "b"), per_class=2, test_per_class=1)
    pixels = np.full((8, 8, 3), 200, np.uint8)
    for ext in ("webp", "bmp", "tif"):
        Image.fromarray(pixels).save(root / "train" / "a" / f"extra.{ext}")
    (root / "train" / "b" / "notes.txt").write_text("x")
    Image.fromarray(pixels).save(root / "train" / "stray.png")  # beside the class folders: no class
    Image.fromarray(pixels).save(root / "cover.jpg")  # beside train/ and test/
    files = read_image_folder(root)
    names = [Path(p).name for p in files.train.paths]
    assert {"extra.webp", "extra.bmp", "extra.tif"} <= set(names) and len(names) == 7
    err = capsys.readouterr().err
    assert (
        f"memomentum: note: skipped 1 file in {root / 'train'} beside the class folders (they belong to no class): "
        f"'stray.png'" in err
    )
    assert f"skipped 1 file in {root} beside the train/ and test/ folders (they belong to no class): 'cover.jpg'" in err
    assert "skipped 1 file in the class folders of" in err and "'b/notes.txt'" in err


def test_test_images_that_are_also_training_images_are_named_in_a_note(ann, capsys):
    train_keys = lines(ann / "noisy_train_key_list.txt")
    test_keys = lines(ann / "clean_test_key_list.txt")
    write(ann / "noisy_train_key_list.txt", train_keys + test_keys[:2])  # two test images also train
    labels = dict(line.split() for line in lines(ann / "clean_label_kv.txt"))
    with open(ann / "noisy_label_kv.txt", "a") as f:
        f.writelines(f"{k} {labels[k]}\n" for k in test_keys[:2])
    read_clothing1m(ann, check_files=False)
    err = capsys.readouterr().err
    assert (
        f"memomentum: note: 2 of the {len(test_keys)} test images of {ann / 'clean_test_key_list.txt'} are also "
        f"training images"
        in err
        and err.rstrip().endswith(f"{test_keys[0]}, {test_keys[1]}")
    )

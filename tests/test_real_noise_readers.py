"""The real-noise releases after Clothing1M: ANIMAL-10N, Food-101N (with Food-101's test
split) and mini-WebVision, read from their official layouts.

Each miniature is written by :mod:`memomentum.testing.real_noise` in the release's exact files
and folders and read back; malformed files give an InputError that names the file and the
lines; each runs end to end through the CLI (benchmark mode, packed store), and for
Food-101N the confident set's label precision is measured on the verified images and
recomputed here from ``examples.csv`` and the verification files.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import PIL  # noqa: F401 -- the writers need Pillow
import pytest
import torch
from helpers import SCHEDULE_3_EPOCHS, SMALL_IMAGES, flags, run_in_process

from memomentum.base.errors import InputError
from memomentum.config import RunConfig
from memomentum.data import load_dataset, load_image_files
from memomentum.data.animal10n import ANIMAL10N_CLASSES, read_animal10n
from memomentum.data.food101n import known_labels_from_verdicts, read_food101n, read_verification
from memomentum.data.registry import dataset_key, is_users_own_data, real_noise_name
from memomentum.data.webvision import read_synsets, read_webvision
from memomentum.method.procedure import Procedure
from memomentum.testing.real_noise import write_animal10n, write_food101n, write_webvision

FAST = [*SMALL_IMAGES, "--workers", "0", "--quiet", *flags(**SCHEDULE_3_EPOCHS, batch_size=16, lr=0.05)]


@pytest.fixture(scope="module")
def animal(tmp_path_factory) -> dict:
    return write_animal10n(tmp_path_factory.mktemp("animal") / "ANIMAL-10N")


@pytest.fixture(scope="module")
def food(tmp_path_factory) -> dict:
    return write_food101n(tmp_path_factory.mktemp("food") / "Food-101N_release")


@pytest.fixture(scope="module")
def web(tmp_path_factory) -> dict:
    return write_webvision(tmp_path_factory.mktemp("web") / "webvision", per_class=4, imagenet_per_class=1)


def _rewrite(path: Path, edit) -> None:
    """Replace the lines of ``path`` by ``edit(lines)``."""
    path.write_text("\n".join(edit(path.read_text().splitlines())) + "\n")


# --------------------------------------------------------------------------- names


@pytest.mark.parametrize(
    "typed, canonical",
    [
        ("animal10n", "animal10n"),
        ("ANIMAL-10N", "animal10n"),
        ("animal_10n", "animal10n"),
        ("food101n", "food101n"),
        ("Food-101N", "food101n"),
        ("food_101n", "food101n"),
        ("webvision", "webvision"),
        ("mini-webvision", "webvision"),
        ("Mini-WebVision", "webvision"),
        ("mini_webvision", "webvision"),
        ("clothing1m", None),
        ("food101", None),
        ("animals", None),
    ],
)
def test_spellings_name_the_releases(typed, canonical):
    assert real_noise_name(typed) == canonical
    if canonical:
        assert dataset_key(typed) == canonical and is_users_own_data(typed)
        assert RunConfig(dataset=typed).noise_type == "none"  # real noise: labels as given
        RunConfig(dataset=typed, image_size=32, cache_dir="/tmp/x")  # image options apply
        with pytest.raises(InputError, match="--train-set chooses between Clothing1M's training sets"):
            RunConfig(dataset=typed, train_set="clean")


def test_schedule_defaults():
    for name in ("Food-101N", "mini-webvision"):
        got = RunConfig(dataset=name).resolved("resnet50")
        assert (got.epochs, got.batch_size, got.lr, got.max_inner_loop) == (10, 32, 0.005, 6)
    got = RunConfig(dataset="animal-10n").resolved("resnet18")
    assert (got.epochs, got.batch_size, got.lr, got.model) == (100, 128, 0.01, "resnet18")


# --------------------------------------------------------------------------- ANIMAL-10N


def test_animal10n_reads_back(animal):
    files = read_animal10n(animal["root"])
    assert files.name == "animal10n" and files.class_names == ANIMAL10N_CLASSES
    assert files.class_names[9] == "guinea pig" and len(files.class_names) == 10
    assert len(files.train) == animal["n_train"] == 120 and len(files.test) == animal["n_test"] == 30
    assert files.train.paths == [str(animal["root"] / "training" / n) for n in animal["train_names"]]
    np.testing.assert_array_equal(files.train.labels, animal["noisy_labels"])  # the labels in the names
    np.testing.assert_array_equal(files.test.labels, animal["test_labels"])
    assert (animal["noisy_labels"] != animal["true_labels"]).any()  # the miniature has noise
    assert files.known_train_labels is None and files.val is None and files.image_size == 64
    # through the loader: any spelling, the release's 64 pixels unless --image-size says otherwise
    assert load_image_files("ANIMAL-10N", data_dir=str(animal["root"])).image_size == 64
    assert load_image_files("animal_10n", data_dir=str(animal["root"]), image_size=32).image_size == 32


def test_animal10n_bad_names_missing_folders_and_skipped_files(tmp_path, capsys):
    info = write_animal10n(tmp_path / "a", per_class=1, test_per_class=1)
    root = info["root"]
    (root / "training" / "readme.txt").write_text("x")
    (root / "training" / ".DS_Store").write_text("x")
    (root / "training" / "3_a_b.jpg").write_bytes(b"")  # the label is the prefix before the first "_"
    files = read_animal10n(root)
    assert dict(zip(files.train.paths, files.train.labels))[str(root / "training" / "3_a_b.jpg")] == 3
    (root / "training" / "3_a_b.jpg").unlink()
    assert (
        f"memomentum: note: skipped 1 entry of {root / 'training'} that is not a .jpg, .jpeg or .png image: "
        f"readme.txt\n" in capsys.readouterr().err
    )
    for bad in ("cat_00001.jpg", "10_00002.jpg", "00003.jpg"):
        (root / "training" / bad).write_bytes(b"")
    with pytest.raises(InputError) as e:
        read_animal10n(root)
    assert str(e.value) == (
        f"3 image names in {root / 'training'} do not start with a label 0..9 and '_' (ANIMAL-10N "
        f"names its images <label>_<index>.jpg): 00003.jpg, 10_00002.jpg, cat_00001.jpg"
    )
    for bad in ("cat_00001.jpg", "10_00002.jpg", "00003.jpg"):
        (root / "training" / bad).unlink()
    os.rename(root / "testing", root / "test")
    with pytest.raises(InputError, match=f"ANIMAL-10N folder {root / 'testing'} not found"):
        read_animal10n(root)
    with pytest.raises(InputError, match=r"ANIMAL-10N directory .* does not exist"):
        read_animal10n(tmp_path / "nowhere")


def test_animal10n_file_in_place_of_a_split_folder_is_named_a_file(tmp_path):
    (tmp_path / "training").write_bytes(b"")  # e.g. a zip's entry extracted as an empty file
    (tmp_path / "testing").mkdir()
    with pytest.raises(InputError) as e:
        read_animal10n(tmp_path)
    assert str(e.value).startswith(
        f"ANIMAL-10N folder {tmp_path / 'training'} is a file, not a folder: --data-dir "
        f"must be the folder holding training/ and testing/"
    )


# --------------------------------------------------------------------------- Food-101N


def test_food101n_reads_back_with_known_truths(food):
    files = read_food101n(food["root"])
    root = food["root"]
    assert files.name == "food101n" and files.class_names == food["class_names"] == (
        "apple_pie",
        "baby_back_ribs",
        "baklava",
        "beef_carpaccio",
    )
    assert files.train.paths == [str(root / "images" / k) for k in food["train_keys"]]
    np.testing.assert_array_equal(files.train.labels, food["noisy_labels"])  # the class folder listed
    assert files.test.paths == [str(root / "food-101" / "images" / f"{k}.jpg") for k in food["test_keys"]]
    np.testing.assert_array_equal(files.test.labels, food["test_labels"])
    # known truths: the noisy label where verified right, never it where verified wrong, -1 elsewhere
    known, noisy, flags = files.known_train_labels, food["noisy_labels"], food["verified"]
    assert read_verification(root) == flags and len(flags) == 24
    for i, key in enumerate(food["train_keys"]):
        if key not in flags:
            assert known[i] == -1
        elif flags[key] == 1:
            assert known[i] == noisy[i]
        else:
            assert 0 <= known[i] < 4 and known[i] != noisy[i]
    assert 0 < sum(flags.values()) < len(flags)  # both verdicts occur
    verified = known >= 0
    # precision of the given labels over the verified images = share verified right
    assert np.mean(noisy[verified] == known[verified]) == np.mean(list(flags.values()))


def test_food101n_precision_counts_verified_wrong_images():
    """The confident set's label precision, computed as runs compute it, is the share of
    its verified images whose label was verified right; -1 for "wrong" would make it 100 %."""
    labels = np.array([0, 1, 2, 3, 0, 1, 2, 3])
    verdicts = np.array([1, 0, 1, 0, -1, 1, 0, -1])
    known = known_labels_from_verdicts(labels, verdicts, 4)
    np.testing.assert_array_equal(known, [0, 2, 2, 0, -1, 1, 3, -1])
    assert known_labels_from_verdicts(labels, np.full(8, -1), 4) is None
    proc = SimpleNamespace(
        problem=SimpleNamespace(train_labels=torch.as_tensor(labels), clean_train_labels=torch.as_tensor(known))
    )
    stats = Procedure.confident_stats(proc, torch.tensor([0, 1, 3, 4, 5]))  # verdicts 1, 0, 0, unknown, 1
    assert stats["label_precision"] == round(100 * 2 / 4, 2) and stats["n_known_labels"] == 4
    assert stats["label_recall"] == round(100 * 2 / 3, 2)  # of the 3 verified right, 2 are confident


def test_food101n_food101_beside_and_missing(tmp_path):
    info = write_food101n(
        tmp_path / "Food-101N_release",
        per_class=2,
        test_per_class=1,
        n_verified_train=2,
        n_verified_val=1,
        food101="beside",
    )
    files = read_food101n(info["root"])
    assert files.test.paths[0] == str(tmp_path / "food-101" / "images" / f"{info['test_keys'][0]}.jpg")
    os.rename(tmp_path / "food-101", tmp_path / "elsewhere")
    with pytest.raises(InputError) as e:
        read_food101n(info["root"])
    assert str(e.value) == (
        f"Food-101N's test set is Food-101's test split, not found: unpack Food-101's release "
        f"(food-101/meta/test.txt and food-101/images/) into {info['root'] / 'food-101'} or "
        f"{tmp_path / 'food-101'}"
    )
    assert len(read_food101n(info["root"], food101_dir=tmp_path / "elsewhere").test) == 4


@pytest.fixture
def small_food(tmp_path) -> dict:
    return write_food101n(tmp_path / "release", per_class=2, test_per_class=1, n_verified_train=3, n_verified_val=2)


def test_food101n_missing_files(small_food):
    meta = small_food["root"] / "meta"
    (meta / "verified_val.tsv").unlink()
    with pytest.raises(InputError, match=f"Food-101N file {meta / 'verified_val.tsv'} not found"):
        read_food101n(small_food["root"])
    first = small_food["train_keys"][0]
    (small_food["root"] / "images" / first).unlink()
    (meta / "verified_val.tsv").write_text("class_name/key\tverification_label\n")
    with pytest.raises(InputError) as e:
        read_food101n(small_food["root"])
    assert str(e.value) == (
        f"1 of the 8 images listed in {meta / 'imagelist.tsv'} is missing under "
        f"{small_food['root'] / 'images'}: {first}"
    )


@pytest.mark.parametrize(
    "name, edit, message",
    [
        (
            "imagelist.tsv",
            lambda ls: ls[:2] + ["apple_pie"] + ls[2:],
            "imagelist.tsv has 1 malformed line (each must be '<class_name>/<key>.jpg'): line 3 'apple_pie'",
        ),
        (
            "imagelist.tsv",
            lambda ls: ls + ["pizza/abc.jpg"],
            "imagelist.tsv has 1 line whose class is not in classes.txt: line 10 'pizza/abc.jpg'",
        ),
        ("imagelist.tsv", lambda ls: ls + [ls[1]], "imagelist.tsv lists 1 image more than once: apple_pie/"),
        (
            "verified_train.tsv",
            lambda ls: ls[:1] + [ls[1].split("\t")[0] + "\t2"] + ls[2:],
            "verified_train.tsv has 1 malformed line (each must be '<class_name>/<key>.jpg<TAB>0 or 1'): line 2 ",
        ),
        (
            "verified_train.tsv",
            lambda ls: ls + [ls[1][:-1] + ("0" if ls[1].endswith("1") else "1")],
            "verified_train.tsv verifies 1 image a second time with the other verdict: line 5 ",
        ),
        ("classes.txt", lambda ls: ls + ["apple_pie"], "classes.txt names 1 class more than once: apple_pie"),
        ("classes.txt", lambda ls: ls[:2], "classes.txt holds 1 class name; Food-101N has 101"),
    ],
)
def test_food101n_malformed_files_name_the_file_and_line(small_food, name, edit, message):
    _rewrite(small_food["root"] / "meta" / name, edit)
    with pytest.raises(InputError) as e:
        read_food101n(small_food["root"], check_files=False)
    assert str(small_food["root"] / "meta") in str(e.value) and message in str(e.value)


def _add_bom(path: Path) -> None:
    """The file as Notepad saves "UTF-8 with BOM"."""
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())


@pytest.mark.parametrize(
    "name",
    [
        "meta/classes.txt",
        "meta/imagelist.tsv",
        "meta/verified_train.tsv",
        "meta/verified_val.tsv",
        "food-101/meta/test.txt",
    ],
)
def test_food101n_list_saved_with_a_byte_order_mark_reads_as_without(small_food, name):
    before = read_food101n(small_food["root"])
    _add_bom(small_food["root"] / name)
    files = read_food101n(small_food["root"])
    assert files.class_names == before.class_names == small_food["class_names"]  # not '\ufeffclass_name'
    assert files.train.paths == before.train.paths and files.test.paths == before.test.paths
    np.testing.assert_array_equal(files.train.labels, before.train.labels)
    np.testing.assert_array_equal(files.test.labels, before.test.labels)
    np.testing.assert_array_equal(files.known_train_labels, before.known_train_labels)


def test_food101n_list_with_nul_bytes_is_refused_never_read_as_a_class(small_food):
    """A classes.txt zero-filled by an interrupted copy made a class of the NUL bytes (one output
    too many); a cut-short imagelist.tsv would list its NULs as a malformed image."""
    for name in ("meta/classes.txt", "meta/imagelist.tsv"):
        path = small_food["root"] / name
        original = path.read_bytes()
        path.write_bytes(original + b"\x00" * 20)
        with pytest.raises(InputError) as e:
            read_food101n(small_food["root"], check_files=False)
        lines = original.decode().count("\n") + 1
        assert str(e.value) == (
            f"{path} holds NUL bytes on line {lines}, which no list of the release has: the file "
            f"was cut short or zero-filled by an interrupted copy; copy it again"
        )
        path.write_bytes(original)


def test_food101n_list_saved_as_utf16_says_so(small_food):
    path = small_food["root"] / "meta" / "classes.txt"
    path.write_bytes(path.read_text().encode("utf-16"))  # Notepad's "Unicode"
    with pytest.raises(InputError) as e:
        read_food101n(small_food["root"], check_files=False)
    assert str(e.value) == f'{path} is UTF-16 text (Notepad\'s "Unicode"), not UTF-8: save it again as UTF-8'


def test_a_folder_in_place_of_a_list_file_is_named_a_folder(small_food, tmp_path):
    imagelist = small_food["root"] / "meta" / "imagelist.tsv"
    imagelist.rename(tmp_path / "imagelist.tsv")
    imagelist.mkdir()
    with pytest.raises(InputError, match=f"Food-101N file {imagelist} is a folder, not a file; --data-dir must be"):
        read_food101n(small_food["root"], check_files=False)
    info = write_webvision(tmp_path / "w", per_class=1, n_other=2)
    val = info["root"] / "info" / "val_filelist.txt"
    val.unlink()
    val.mkdir()
    with pytest.raises(InputError, match=f"WebVision file {val} is a folder, not a file; --data-dir must be"):
        read_webvision(info["root"])


def test_food101n_verdicts_across_files_and_stray_keys(small_food, capsys):
    meta = small_food["root"] / "meta"
    train_line = (meta / "verified_train.tsv").read_text().splitlines()[1]
    key, verdict = train_line.split("\t")
    _rewrite(meta / "verified_val.tsv", lambda ls: ls + [f"{key}\t{1 - int(verdict)}"])
    with pytest.raises(
        InputError, match=f"1 image is verified differently in .*verified_train.tsv and .*verified_val.tsv: {key}"
    ):
        read_food101n(small_food["root"], check_files=False)
    _rewrite(meta / "verified_val.tsv", lambda ls: ls[:-1] + ["baklava/not-listed.jpg\t1"])
    files = read_food101n(small_food["root"], check_files=False)
    assert (
        "1 of the 6 verified images is not in imagelist.tsv and is left out of the known truths: "
        "baklava/not-listed.jpg" in capsys.readouterr().err
    )
    assert int((files.known_train_labels >= 0).sum()) == 5
    _rewrite(small_food["root"] / "food-101" / "meta" / "test.txt", lambda ls: ls + ["pizza/123"])
    with pytest.raises(
        InputError, match=r"test\.txt has 1 line whose class is not in classes\.txt: line 5 'pizza/123'"
    ):
        read_food101n(small_food["root"], check_files=False)


# --------------------------------------------------------------------------- mini-WebVision


def test_webvision_keeps_the_first_fifty_classes(web):
    files = read_webvision(web["root"])
    root = web["root"]
    assert files.name == "webvision" and len(files.class_names) == 50
    assert files.class_names[:2] == ("class 0", "class 1")  # synsets.txt's first names
    assert len(files.train) == 200 < web["n_train_lines"] and len(files.test) == 50 < web["n_val_lines"]
    assert files.train.paths == [str(root / k) for k in web["train_keys"]]
    np.testing.assert_array_equal(files.train.labels, web["noisy_labels"])
    assert files.test.paths == [str(root / "val_images_256" / k) for k in web["val_keys"]]
    np.testing.assert_array_equal(files.test.labels, web["val_labels"])
    assert files.train.labels.max() == 49 and files.known_train_labels is None
    # ImageNet's validation images of the 50 classes, by WordNet id (Python only)
    imagenet = read_webvision(root, imagenet_val_dir=web["imagenet_val"])
    np.testing.assert_array_equal(imagenet.test.labels, np.arange(50))
    assert imagenet.test.paths[3].startswith(str(web["imagenet_val"] / web["wnids"][3]) + os.sep)


def test_webvision_without_synsets_and_bad_files(tmp_path):
    info = write_webvision(tmp_path / "w", per_class=1, n_other=2)
    root, info_dir = info["root"], info["root"] / "info"
    (info_dir / "synsets.txt").rename(tmp_path / "synsets.txt")
    assert read_webvision(root).class_names[:3] == ("0", "1", "2")
    with pytest.raises(InputError, match=r"matched to the classes by WordNet id, which .*synsets\.txt gives"):
        read_webvision(root, imagenet_val_dir=tmp_path)
    _rewrite(info_dir / "train_filelist_google.txt", lambda ls: ls[:3] + ["google/q0001/x.jpg 1 extra"] + ls[3:])
    with pytest.raises(InputError) as e:
        read_webvision(root)
    assert str(e.value) == (
        f"{info_dir / 'train_filelist_google.txt'} has 1 malformed line (each must be 'PATH "
        f"LABEL'): line 4 'google/q0001/x.jpg 1 extra'"
    )
    _rewrite(info_dir / "train_filelist_google.txt", lambda ls: ls[:3] + ["google/q0001/x.jpg 1000"] + ls[4:])
    with pytest.raises(
        InputError,
        match=r"train_filelist_google.txt has 1 label that is not an integer in 0\.\.999: "
        r"line 4 'google/q0001/x.jpg 1000'",
    ):
        read_webvision(root)
    _rewrite(info_dir / "train_filelist_google.txt", lambda ls: ls[:3] + ls[4:])
    (root / info["val_keys"][0]).unlink(missing_ok=True)
    (root / "val_images_256" / info["val_keys"][0]).unlink()
    with pytest.raises(
        InputError,
        match=f"1 of the 50 images listed in .*val_filelist.txt is missing under "
        f".*val_images_256: {info['val_keys'][0]}",
    ):
        read_webvision(root)
    (info_dir / "val_filelist.txt").unlink()
    with pytest.raises(InputError, match=f"WebVision file {info_dir / 'val_filelist.txt'} not found"):
        read_webvision(root)


@pytest.mark.parametrize("name", ["train_filelist_google.txt", "val_filelist.txt", "synsets.txt"])
def test_webvision_list_saved_with_a_byte_order_mark_reads_as_without(tmp_path, name):
    info = write_webvision(tmp_path / "w", per_class=1, n_other=2)
    before, synsets = read_webvision(info["root"]), read_synsets(info["root"] / "info" / "synsets.txt")
    _add_bom(info["root"] / "info" / name)
    files = read_webvision(info["root"])
    assert read_synsets(info["root"] / "info" / "synsets.txt") == synsets  # the WordNet ids match ImageNet's
    assert files.class_names == before.class_names and files.class_names[0] == "class 0"
    assert files.train.paths == before.train.paths and files.test.paths == before.test.paths
    np.testing.assert_array_equal(files.train.labels, before.train.labels)
    np.testing.assert_array_equal(files.test.labels, before.test.labels)


def test_default_networks_and_image_sizes(animal, food, web):
    """ResNet-50 for the ImageNet-scale releases, the CIFAR ResNet-18 for ANIMAL-10N's 64 pixels."""
    for info, name, model in (
        (animal, "animal10n", "resnet18"),
        (food, "food101n", "resnet50"),
        (web, "webvision", "resnet50"),
    ):
        ds = load_dataset(name, data_dir=str(info["root"]), image_size=24, workers=0, progress=False)
        assert (ds.name, ds.default_model, ds.x_train.shape[1:]) == (name, model, (24, 24, 3))


def test_a_release_given_as_an_image_folder_is_named(animal, food, web):
    for root, name in ((animal["root"], "animal10n"), (food["root"], "food101n"), (web["root"], "webvision")):
        with pytest.raises(InputError, match=f"is a {name} release, not an image folder: use --dataset {name} "):
            load_image_files(str(root))


# --------------------------------------------------------------------------- end to end


def _run(tmp_path: Path, dataset: str, root: Path) -> tuple[dict, list[dict], Path]:
    out = tmp_path / "run"
    assert run_in_process("--dataset", dataset, "--data-dir", str(root), *FAST, "--out", str(out)) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["mode"] == "benchmark" and summary["noise_type"] == "none"
    return summary, list(csv.DictReader((out / "examples.csv").open())), out


def test_animal10n_runs_end_to_end(animal, tmp_path):
    summary, rows, out = _run(tmp_path, "animal-10n", animal["root"])
    assert summary["n_train"] + summary["n_val"] == 120 and len(rows) == summary["n_train"]
    assert json.loads((out / "classes.json").read_text()) == list(ANIMAL10N_CLASSES)
    assert "label_precision" not in summary["final_confident"] and "true_label" not in rows[0]
    given = dict(zip((str(animal["root"] / "training" / n) for n in animal["train_names"]), animal["noisy_labels"]))
    assert all(r["given_label"] == ANIMAL10N_CLASSES[given[r["file"]]] for r in rows)
    assert summary["test_accuracy"] > 30  # 10 classes: guessing is 10 %


def test_webvision_runs_end_to_end(web, tmp_path):
    summary, rows, out = _run(tmp_path, "mini-webvision", web["root"])
    assert summary["n_train"] + summary["n_val"] == 200 and len(rows) == summary["n_train"]
    assert json.loads((out / "classes.json").read_text())[:2] == ["class 0", "class 1"]
    assert "label_precision" not in summary["final_confident"] and "true_label" not in rows[0]
    assert summary["test_accuracy"] > 4  # measured on the 50 validation images (guessing: 2 %)


def test_food101n_runs_end_to_end_with_precision_on_the_verified_images(food, tmp_path):
    summary, rows, out = _run(tmp_path, "Food-101N", food["root"])
    names = json.loads((out / "classes.json").read_text())
    assert names == list(food["class_names"]) and len(rows) == summary["n_train"]
    images = food["root"] / "images"
    flags = {r["index"]: food["verified"].get(str(Path(r["file"]).relative_to(images))) for r in rows}
    verified = [r for r in rows if flags[r["index"]] is not None]
    confident = [r for r in verified if r["is_confident"] == "1"]
    right = [r for r in verified if flags[r["index"]] == 1]
    assert len(verified) > 10 and 0 < len(right) < len(verified)
    for r in rows:  # true_label: the given label where verified right, another where wrong, empty unverified
        flag = flags[r["index"]]
        assert (r["true_label"] == "") == (flag is None)
        assert flag is None or (r["true_label"] == r["given_label"]) == (flag == 1)
    # the summary's measures, recomputed from examples.csv and the verification files
    fc = summary["final_confident"]
    hits = sum(flags[r["index"]] for r in confident)
    assert fc["n_known_labels"] == len(confident) > 0
    assert fc["label_precision"] == round(100 * hits / len(confident), 2)
    assert fc["label_recall"] == round(100 * hits / len(right), 2)
    assert summary["n_known_labels"] == len(verified)
    assert summary["noisy_label_precision"] == round(100 * len(right) / len(verified), 2) < 100

"""Images kept in a table (memomentum.data.image_tables): a parquet file with PNG bytes,
Hugging Face's {"bytes", "path"} structs or relative paths, and a save_to_disk folder of
Arrow stream shards, each run end to end through the CLI; a numeric parquet stays a
feature table; the refusals."""

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
from helpers import SCHEDULE_2_EPOCHS, flags, run_in_process

pa = pytest.importorskip("pyarrow")
import pyarrow.parquet as pq  # noqa: E402
from PIL import Image  # noqa: E402

from memomentum.cli import main  # noqa: E402
from memomentum.data import load_dataset  # noqa: E402

COLOURS = {"blue": (20, 40, 230), "green": (30, 200, 40), "red": (220, 30, 30)}
PER_CLASS = 6
FAST = [*flags(model="mlp", pretrained="none", **SCHEDULE_2_EPOCHS, batch_size=8, workers=0), "--quiet"]


def _png(rgb, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    pixels = np.clip(np.array(rgb) + rng.integers(-20, 20, (12, 10, 3)), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    return buf.getvalue()


def _rows():
    """Labels (in an order that is not sorted) and PNG bytes, PER_CLASS of each class."""
    names = ["red", "blue", "green"] * PER_CLASS
    return names, [_png(COLOURS[n], i) for i, n in enumerate(names)]


def _write_parquet(path: Path, columns: dict) -> Path:
    pq.write_table(pa.table(columns), path)
    return path


def _hf_structs(images) -> "pa.Array":
    t = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    return pa.array([{"bytes": b, "path": f"img{i}.png"} for i, b in enumerate(images)], type=t)


def _save_to_disk(folder: Path, columns: dict) -> Path:
    """What datasets' Dataset.save_to_disk writes: Arrow stream shards, state.json and dataset_info.json."""
    folder.mkdir()
    table = pa.table(columns)
    half = table.num_rows // 2
    shards = []
    for k, part in enumerate((table.slice(0, half), table.slice(half))):
        name = f"data-{k:05d}-of-00002.arrow"
        with pa.OSFile(str(folder / name), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(part)
        shards.append({"filename": name})
    (folder / "state.json").write_text(json.dumps({"_data_files": shards, "_fingerprint": "0", "_split": None}))
    (folder / "dataset_info.json").write_text(
        json.dumps({"features": {"image": {"_type": "Image"}, "label": {"dtype": "string", "_type": "Value"}}})
    )
    return folder


def _run(dataset: Path, out: Path, *extra) -> int:
    return run_in_process("--dataset", str(dataset), "--label-column", "label", *FAST, "--out", str(out), *extra)


def _check_run(out: Path, n: int, files_under: Path) -> list[dict]:
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_train"] + summary.get("n_val", 0) == n
    assert json.loads((out / "classes.json").read_text()) == ["blue", "green", "red"]
    rows = list(csv.DictReader((out / "examples.csv").open()))
    assert rows and all(Path(r["file"]).is_file() and Path(r["file"]).is_relative_to(files_under) for r in rows)
    return rows


def test_a_parquet_of_png_bytes_runs_like_an_image_folder(tmp_path, capsys):
    names, images = _rows()
    table = _write_parquet(tmp_path / "photos.parquet", {"image": images, "label": names})
    # (packed at the default 256 px, read by LeNet)
    assert _run(table, tmp_path / "run", "--model", "lenet") == 0
    rows = _check_run(tmp_path / "run", len(names), tmp_path / ".memomentum-cache")
    for r in rows:  # each example's file is its table row's image, written once, named by the row
        row = int(Path(r["file"]).stem.removeprefix("row-"))
        assert Path(r["file"]).read_bytes() == images[row] and r["given_label"] == names[row]
    assert "images from column 'image'" in capsys.readouterr().err


def test_hugging_face_image_structs_in_a_save_to_disk_folder(tmp_path):
    names, images = _rows()
    folder = _save_to_disk(tmp_path / "hf", {"image": _hf_structs(images), "label": names})
    ds = load_dataset(str(folder), image_size=16, cache_dir=str(tmp_path / "cache"), progress=False)
    assert ds.x_train.shape == (len(names), 16, 16, 3) and ds.class_names == ("blue", "green", "red")
    assert [ds.class_names[k] for k in ds.y_train] == names  # both shards, in order
    written = {f: f.stat().st_mtime_ns for f in (tmp_path / "cache").glob("hf-*-images/train/row-*.png")}
    assert len(written) == len(names)
    assert _run(folder, tmp_path / "run", "--image-size", "24", "--cache-dir", str(tmp_path / "cache")) == 0
    _check_run(tmp_path / "run", len(names), tmp_path / "cache")
    assert {f: f.stat().st_mtime_ns for f in written} == written  # written once, not again by the run


def test_a_parquet_of_relative_paths_and_integer_labels(tmp_path):
    names, images = _rows()
    (tmp_path / "pics").mkdir()
    for i, b in enumerate(images):
        (tmp_path / "pics" / f"{i}.png").write_bytes(b)
    labels = [{"blue": 7, "green": 10, "red": 9}[n] for n in names]
    table = _write_parquet(
        tmp_path / "paths.parquet",
        {
            "file_name": [f"pics/{i}.png" for i in range(len(names))],
            "label": labels,
            "weight": np.arange(len(names)) * 0.5,
        },
    )
    ds = load_dataset(str(table), progress=False, image_size=8)
    assert ds.class_names == ("7", "9", "10")  # integers sorted as numbers
    assert ds.train_files == [str(tmp_path / "pics" / f"{i}.png") for i in range(len(names))]
    assert _run(table, tmp_path / "run", "--model", "lenet") == 0
    rows = list(csv.DictReader((tmp_path / "run" / "examples.csv").open()))
    assert json.loads((tmp_path / "run" / "classes.json").read_text()) == ["7", "9", "10"]
    assert {r["file"] for r in rows} <= set(ds.train_files) and len(rows) > 0


def test_a_folder_of_parquet_shards_with_a_test_split(tmp_path, capsys):
    names, images = _rows()
    folder = tmp_path / "shards"
    folder.mkdir()
    structs = _hf_structs(images)
    _write_parquet(folder / "train-00000-of-00002.parquet", {"image": structs[:9], "label": names[:9]})
    _write_parquet(folder / "validation-00000-of-00001.parquet", {"image": structs[9:15], "label": names[9:15]})
    _write_parquet(folder / "test-00000-of-00001.parquet", {"image": structs[15:], "label": names[15:]})
    assert _run(folder, tmp_path / "run", "--image-size", "24") == 0
    assert (
        "validation-00000-of-00001.parquet trains with the train-* shards: only test-* shards are held out"
        in capsys.readouterr().err
    )
    _check_run(tmp_path / "run", 15, folder / ".memomentum-cache")
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["test_accuracy"] is not None
    ds = load_dataset(str(folder), image_size=24, progress=False)
    assert len(ds.x_test) == 3 and [ds.class_names[k] for k in ds.y_test] == names[15:]


def test_a_numeric_parquet_stays_a_feature_table(tmp_path):
    rng = np.random.default_rng(0)
    table = _write_parquet(
        tmp_path / "numbers.parquet", {"a": rng.normal(size=20), "b": rng.normal(size=20), "label": ["x", "y"] * 10}
    )
    ds = load_dataset(str(table))
    assert ds.x_train.shape == (20, 2) and ds.train_rows is not None


def _refusal(dataset: Path, tmp_path, capsys) -> str:
    assert _run(dataset, tmp_path / "run") == 2
    lines = capsys.readouterr().err.strip().splitlines()
    return lines[-1]


def test_a_folder_without_an_image_column_is_refused(tmp_path, capsys):
    folder = tmp_path / "numbers"
    folder.mkdir()
    _write_parquet(folder / "train-0.parquet", {"a": [1.0, 2.0, 3.0, 4.0], "label": ["x", "y", "x", "y"]})
    assert _refusal(folder, tmp_path, capsys).endswith(
        f"{folder} has no image column (PNG or JPEG bytes, Hugging Face images, or paths of image files relative "
        f"to it) besides the label 'label'"
    )


def test_two_image_columns_are_refused(tmp_path, capsys):
    names, images = _rows()
    table = _write_parquet(tmp_path / "two.parquet", {"image": images, "thumb": images, "label": names})
    assert _refusal(table, tmp_path, capsys).endswith(
        f"{table} has 2 image columns ('image', 'thumb'); keep one of them"
    )


def test_an_undecodable_image_is_refused(tmp_path, capsys):
    names, images = _rows()
    images[4] = images[4][:8] + b"garbage"  # a PNG signature and nothing readable after it
    table = _write_parquet(tmp_path / "broken.parquet", {"image": images, "label": names})
    assert _refusal(table, tmp_path, capsys).endswith(
        f"row 4 of {table} (train) holds no readable PNG or JPEG image in column 'image'; replace or remove that row"
    )


def test_image_options_and_the_label_column_apply_to_image_tables(tmp_path, capsys):
    """A table may hold images, so the packing options apply to it, and are refused once
    the table turns out to hold features; a folder of table shards is a table, so
    --label-column applies to it."""
    from memomentum import InputError, RunConfig

    RunConfig(dataset=str(tmp_path / "photos.parquet"), image_size=32, cache_dir=str(tmp_path))
    RunConfig(dataset=str(tmp_path / "photos.csv"), image_size=32, store_format="raw")
    (tmp_path / "shards").mkdir()
    (tmp_path / "shards" / "train-00000-of-00001.parquet").write_bytes(b"")
    RunConfig(dataset=str(tmp_path / "shards"), label_column="species")
    with pytest.raises(InputError, match="--train-set chooses between Clothing1M"):
        RunConfig(dataset=str(tmp_path / "flowers.csv"), train_set="clean")
    flowers = tmp_path / "flowers.csv"
    flowers.write_text("a,b,label\n" + "".join(f"{i},{i % 3},{'xy'[i % 2]}\n" for i in range(20)))
    assert _run(flowers, tmp_path / "run", "--image-size", "32") == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"memomentum: error: --image-size applies to image files; {flowers} has no column of images, so it would be "
        f"ignored; leave --image-size out"
    )
    assert not (tmp_path / "run").exists()


def test_a_split_column_marks_the_test_rows(tmp_path, capsys):
    names, images = _rows()
    split = ["train"] * 15 + [" Test"] * 3  # any case, spaces around it, as in feature tables
    table = _write_parquet(tmp_path / "photos.parquet", {"image": images, "label": names, "split": split})
    ds = load_dataset(str(table), image_size=8, progress=False)
    assert len(ds.x_train) == 15 and [ds.class_names[k] for k in ds.y_test] == names[15:]
    assert "column 'split' marks 3 test rows and 15 training rows" in capsys.readouterr().err
    assert _run(table, tmp_path / "run", "--image-size", "8") == 0
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["test_accuracy"] is not None
    _check_run(tmp_path / "run", 15, tmp_path / ".memomentum-cache")


def test_a_bad_split_column_is_refused(tmp_path, capsys):
    names, images = _rows()
    table = _write_parquet(
        tmp_path / "bad.parquet", {"image": images, "label": names, "split": ["train"] * 17 + ["validation"]}
    )
    assert _refusal(table, tmp_path, capsys).endswith(
        f"{table} has the value 'validation' in its 'split' column at row 17; that column must hold train or test "
        f"in every row (or rename it)"
    )
    folder = tmp_path / "shards"  # test shards and a split column: two ways of marking test rows
    folder.mkdir()
    _write_parquet(folder / "train-0.parquet", {"image": images[:15], "label": names[:15], "split": ["train"] * 15})
    _write_parquet(folder / "test-0.parquet", {"image": images[15:], "label": names[15:], "split": ["test"] * 3})
    assert _refusal(folder, tmp_path, capsys).endswith(
        f"{folder} has both a test split (test shards or a test folder) and a 'split' column; mark the test rows one "
        f"way only (rename the column, or merge the test files into the rest)"
    )


def test_predict_reads_an_image_table_as_the_run_read_it(tmp_path, capsys):
    """The run's own table, predicted row by row, gives what examples.csv says of each row's
    image; a new table without labels is predicted row by row, rows without an image left out."""
    import memomentum

    names, images = _rows()
    table = _write_parquet(tmp_path / "photos.parquet", {"image": images, "label": names})
    assert _run(table, tmp_path / "run", "--image-size", "8") == 0
    assert (
        main(["predict", str(tmp_path / "run"), "--dataset", str(table), "--out", str(tmp_path / "p.csv"), "--quiet"])
        == 0
    )
    predicted = list(csv.DictReader((tmp_path / "p.csv").open()))
    assert [int(r["row"]) for r in predicted] == list(range(len(names)))
    assert [r["given_label"] for r in predicted] == names
    columns = ["predicted_label", "confidence", "given_label", "is_label_issue", "label_quality"]
    examples = list(csv.DictReader((tmp_path / "run" / "examples.csv").open()))
    for e in examples:
        row = int(Path(e["file"]).stem.removeprefix("row-"))
        assert [predicted[row][k] for k in columns] == [e[k] for k in columns], e
    model = memomentum.load(tmp_path / "run")
    files = [e["file"] for e in examples]
    rows = [int(Path(f).stem.removeprefix("row-")) for f in files]
    assert np.array_equal(model.predict_proba(table)[rows], model.predict_proba(files))

    new = _write_parquet(tmp_path / "new.parquet", {"image": [images[0], None, images[2]], "id": [10, 11, 12]})
    capsys.readouterr()
    assert (
        main(["predict", str(tmp_path / "run"), "--dataset", str(new), "--out", str(tmp_path / "n.csv"), "--quiet"])
        == 0
    )
    assert "left out 1 row of " + str(new) + " without an image (row 1)" in capsys.readouterr().err
    assert [(r["row"], r["predicted_label"]) for r in csv.DictReader((tmp_path / "n.csv").open())] == [
        ("0", predicted[0]["predicted_label"]),
        ("2", predicted[2]["predicted_label"]),
    ]
    assert (
        main(
            [
                "predict",
                str(tmp_path / "run"),
                "--dataset",
                str(new),
                "--label-column",
                "label",
                "--out",
                str(tmp_path / "n.csv"),
                "--quiet",
            ]
        )
        == 2
    )
    assert (
        capsys.readouterr()
        .err.strip()
        .endswith(f"{new} has no column 'label'; --label-column names the column of given labels")
    )
    numbers = _write_parquet(tmp_path / "numbers.parquet", {"a": [1.0, 2.0], "label": ["red", "blue"]})
    assert (
        main(["predict", str(tmp_path / "run"), "--dataset", str(numbers), "--out", str(tmp_path / "x.csv"), "--quiet"])
        == 2
    )
    assert (
        capsys.readouterr()
        .err.strip()
        .endswith(
            f"{numbers} is a table without an image column, but the run in {tmp_path / 'run'} trained on image files; "
            f"give a folder of images, image files, a .txt file listing them, a table with an image column (.csv, "
            f".parquet, parquet shards) or an array of images"
        )
    )


def test_predict_numbers_the_rows_of_every_split_in_order(tmp_path):
    """Shards: training rows, then test rows, the run's image files reused; a folder of
    test shards alone, and a saved DatasetDict's validation split, are predicted too."""
    names, images = _rows()
    structs = _hf_structs(images)
    folder = tmp_path / "shards"
    folder.mkdir()
    _write_parquet(folder / "train-00000-of-00001.parquet", {"image": structs[:15], "label": names[:15]})
    _write_parquet(folder / "test-00000-of-00001.parquet", {"image": structs[15:], "label": names[15:]})
    assert _run(folder, tmp_path / "run", "--image-size", "8") == 0
    written = {f: f.stat().st_mtime_ns for f in (folder / ".memomentum-cache").rglob("row-*.png")}
    assert len(written) == 18
    assert (
        main(["predict", str(tmp_path / "run"), "--dataset", str(folder), "--out", str(tmp_path / "p.csv"), "--quiet"])
        == 0
    )
    predicted = list(csv.DictReader((tmp_path / "p.csv").open()))
    assert [r["given_label"] for r in predicted] == names and [int(r["row"]) for r in predicted] == list(range(18))
    assert {f: f.stat().st_mtime_ns for f in written} == written  # the run's files, not written again
    (folder / "train-00000-of-00001.parquet").rename(tmp_path / "aside.parquet")  # test shards alone
    assert (
        main(["predict", str(tmp_path / "run"), "--dataset", str(folder), "--out", str(tmp_path / "t.csv"), "--quiet"])
        == 0
    )
    assert [r["given_label"] for r in csv.DictReader((tmp_path / "t.csv").open())] == names[15:]
    saved = tmp_path / "dict"  # a DatasetDict: train, test, then validation, as the splits are read
    saved.mkdir()
    for split, rows in (("validation", slice(0, 4)), ("train", slice(4, 15)), ("test", slice(15, 18))):
        _save_to_disk(saved / split, {"image": structs[rows], "label": names[rows]})
    (saved / "dataset_dict.json").write_text(json.dumps({"splits": ["validation", "train", "test"]}))
    assert (
        main(["predict", str(tmp_path / "run"), "--dataset", str(saved), "--out", str(tmp_path / "d.csv"), "--quiet"])
        == 0
    )
    assert [r["given_label"] for r in csv.DictReader((tmp_path / "d.csv").open())] == names[4:] + names[:4]


def test_repeated_column_names_and_unreadable_files_are_refused_in_one_line(tmp_path, capsys):
    names, images = _rows()
    twice = pa.Table.from_arrays(
        [pa.array(names), pa.array(images), pa.array(names)], names=["label", "image", "label"]
    )
    pq.write_table(twice, tmp_path / "twice.parquet")
    assert _refusal(tmp_path / "twice.parquet", tmp_path, capsys).endswith(
        f"{tmp_path / 'twice.parquet'} has more than one column named 'label'; every column name must be unique "
        f"(which one holds the labels or the images would be a guess)"
    )
    (tmp_path / "junk.parquet").write_bytes(b"junk")
    line = _refusal(tmp_path / "junk.parquet", tmp_path, capsys)  # pyarrow's first line, no schema after it
    assert line.startswith(f"memomentum: error: cannot read {tmp_path / 'junk.parquet'}: ") and "of /" not in line


def test_prepare_packs_a_table_of_images_once_for_the_run(tmp_path, capsys):
    """prepare takes the run's --label-column and --cache-dir: the bytes and the packed store
    go where the run looks for them, so the run packs nothing."""
    names, images = _rows()
    table = _write_parquet(tmp_path / "photos.parquet", {"image": images, "species": names})
    cache = tmp_path / "cache"
    assert (
        main(
            [
                "prepare",
                "--dataset",
                str(table),
                "--label-column",
                "species",
                "--image-size",
                "8",
                "--cache-dir",
                str(cache),
                "--workers",
                "0",
                "--quiet",
            ]
        )
        == 0
    )
    assert "training: 18 images of 8 x 8 in " + str(cache) in capsys.readouterr().out
    assert not (tmp_path / ".memomentum-cache").exists()  # nothing beside the table: all in --cache-dir
    assert (
        main(
            [
                "run",
                "--dataset",
                str(table),
                "--label-column",
                "species",
                *FAST,
                "--image-size",
                "8",
                "--cache-dir",
                str(cache),
                "--out",
                str(tmp_path / "run"),
            ]
        )
        == 0
    )
    assert "packing" not in capsys.readouterr().err


def test_a_csv_of_image_paths_runs_and_predicts_like_a_table_of_images(tmp_path, capsys, monkeypatch):
    """The most common hand-made layout: a CSV naming image files (relative to it) and their
    labels, other columns ignored; the same CSV is predicted row by row; a CSV of features
    stays a feature table, read once."""
    import memomentum

    pd = pytest.importorskip("pandas")
    names, images = _rows()
    (tmp_path / "pics").mkdir()
    for i, b in enumerate(images):
        (tmp_path / "pics" / f"{i}.png").write_bytes(b)
    table = tmp_path / "labels.csv"
    rows = [f"pics/{i}.png;{n};{i * 0.5}" for i, n in enumerate(names)]  # semicolons, as the feature reader reads
    table.write_text("file;species;weight\n" + "\n".join(rows) + "\n")
    ds = load_dataset(str(table), label_column="species", image_size=8, progress=False)
    assert ds.train_files == [str(tmp_path / "pics" / f"{i}.png") for i in range(len(names))]
    assert [ds.class_names[k] for k in ds.y_train] == names
    assert (
        main(
            [
                "run",
                "--dataset",
                str(table),
                "--label-column",
                "species",
                *FAST,
                "--image-size",
                "8",
                "--out",
                str(tmp_path / "run"),
            ]
        )
        == 0
    )
    err = capsys.readouterr().err
    assert "images from column 'file' of " + str(table) in err
    assert "ignored the other column 'weight': a table of images trains on its images and labels" in err
    assert (
        main(["predict", str(tmp_path / "run"), "--dataset", str(table), "--out", str(tmp_path / "p.csv"), "--quiet"])
        == 0
    )
    predicted = list(csv.DictReader((tmp_path / "p.csv").open()))
    assert [r["given_label"] for r in predicted] == names
    examples = list(csv.DictReader((tmp_path / "run" / "examples.csv").open()))
    for e in examples:  # the run's own verdicts, row by row
        row = int(Path(e["file"]).stem)
        assert (predicted[row]["predicted_label"], predicted[row]["confidence"]) == (
            e["predicted_label"],
            e["confidence"],
        )
    model = memomentum.load(tmp_path / "run")
    assert np.array_equal(model.predict_proba(table), model.predict_proba(ds.train_files))
    frame = pd.read_csv(table, sep=";")  # in a notebook: a DataFrame naming the files (relative to the cwd)
    monkeypatch.chdir(tmp_path)
    frame.loc[3, "file"] = None
    p = model.predictions(frame)
    assert list(p.ids) == [i for i in range(len(names)) if i != 3] and p.id_column == "row"
    assert np.array_equal(p.probabilities, model.predict_proba(table)[p.ids])
    assert [model.classes_[k] for k in p.given] == [n for i, n in enumerate(names) if i != 3]  # the run's "species"
    with pytest.raises(memomentum.InputError, match="has 0 columns of image file paths"):
        model.predict(frame[["species"]])
    features = tmp_path / "numbers.csv"
    features.write_text("a,b,label\n" + "".join(f"{i},{i % 3},{'xy'[i % 2]}\n" for i in range(20)))
    assert load_dataset(str(features)).x_train.shape == (20, 2)


# -- issue 27: a table of images whose first image is missing is still a table of images --------
def test_a_csv_whose_first_image_is_missing_names_the_missing_files(tmp_path, capsys, monkeypatch):
    """The table's kind comes from its column of paths (their extensions), not from whether
    the first file exists: the missing files are named, with where relative paths are read."""
    import memomentum

    names, images = _rows()
    (tmp_path / "pics").mkdir()
    for i, b in enumerate(images):
        (tmp_path / "pics" / f"{i}.png").write_bytes(b)
    table = tmp_path / "labels.csv"
    rows = [f"pics/{i}.png,{n}" for i, n in enumerate(names)]
    rows[0] = f"pics/gone.png,{names[0]}"
    rows[5] = f"pics/lost.png,{names[5]}"
    table.write_text("file,label\n" + "\n".join(rows) + "\n")
    assert _run(table, tmp_path / "run") == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"memomentum: error: 2 of the 18 images named in column 'file' of {table} (train) cannot be found (rows 0, 5: "
        f"{tmp_path / 'pics' / 'gone.png'}, {tmp_path / 'pics' / 'lost.png'}); paths in a table are read relative to "
        f"its folder {tmp_path}, or absolute"
    )
    assert not (tmp_path / "run").exists()
    # paths written relative to the working directory, the table in another folder
    (tmp_path / "lists").mkdir()
    moved = tmp_path / "lists" / "labels.csv"
    moved.write_text("file,label\n" + "\n".join(f"pics/{i}.png,{n}" for i, n in enumerate(names)) + "\n")
    monkeypatch.chdir(tmp_path)
    assert _run(moved, tmp_path / "run") == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.startswith(
        f"memomentum: error: 18 of the 18 images named in column 'file' of {moved} (train) cannot "
        f"be found (rows 0, 1, 2, 3, 4, ...: {tmp_path / 'lists' / 'pics' / '0.png'}, "
    )
    assert line.endswith(
        f"); 18 of them exist relative to the working directory, but paths in a table are read "
        f"relative to its folder {tmp_path / 'lists'}: write them relative to that folder, or absolute"
    )
    # predicting: a DataFrame whose first path is missing names it too, not "0 columns of image file paths"
    table.write_text("file,label\n" + "\n".join(f"pics/{i}.png,{n}" for i, n in enumerate(names)) + "\n")
    assert _run(table, tmp_path / "run") == 0
    pd = pytest.importorskip("pandas")
    frame = pd.read_csv(table)
    frame.loc[0, "file"] = "pics/gone.png"
    with pytest.raises(memomentum.InputError, match=r"^1 of the 18 image files cannot be found: .*pics/gone\.png$"):
        memomentum.load(tmp_path / "run").predict(frame)

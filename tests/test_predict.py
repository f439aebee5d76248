"""memomentum predict and memomentum.load: a finished run's best model on new data, exactly as
the run predicts (bit for bit on the CPU), for the three kinds of data a run trains on (a
table, image files, arrays); and every refusal in one sentence with exit status 2."""

import csv
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import REPO, SCHEDULE_2_EPOCHS, SCHEDULE_3_EPOCHS, SMALL_IMAGES, flags, run_in_child
from PIL import Image

import memomentum
import memomentum.entrypoints.api
from memomentum.cli import main
from memomentum.entrypoints import predictor
from memomentum.store.unpacked import UnpackedImages
from memomentum.testing.folders import write_image_folder

NAMES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
FAST = [*flags(**SCHEDULE_3_EPOCHS), "--quiet"]
IMAGES = [*SMALL_IMAGES, "--workers", "0", "--batch-size", "16"]
VERDICT = ["predicted_label", "confidence", "given_label", "is_label_issue", "label_quality"]


def _train(*args):
    """``memomentum run ARGS`` through the command line, in this process, keeping the run's
    own result (its final probabilities on the training part, to compare with)."""
    kept = {}
    real = memomentum.entrypoints.api.run

    def keep(cfg, **kw):
        kept["result"] = real(cfg, **kw)
        return kept["result"]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(memomentum.entrypoints.api, "run", keep)
        assert main(["run", *args]) == 0
    return kept["result"]


def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    d = load_digits()
    return d.data, d.target


def _rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _predict(capsys, *args) -> tuple[int, str, str]:
    code = main(["predict", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    """A CSV of 600 digits with text labels, and a run on it."""
    d = tmp_path_factory.mktemp("table")
    x, y = _digits()
    frame = pd.DataFrame(x, columns=[f"px{i}" for i in range(64)])
    frame["species"] = np.array(NAMES)[y]
    frame.iloc[:600].to_csv(d / "t.csv", index=False)
    result = _train("--dataset", str(d / "t.csv"), "--label-column", "species", *FAST, "--out", str(d / "R"))
    return d, frame, result


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """A folder of 3 x 50 training and 3 x 5 test images, and a run on it."""
    d = tmp_path_factory.mktemp("images")
    write_image_folder(d / "pets", classes=("cat", "dog", "fox"), per_class=50, test_per_class=5, size=(28, 20), seed=1)
    result = _train(
        "--dataset",
        str(d / "pets"),
        *IMAGES,
        *flags(**SCHEDULE_2_EPOCHS),
        "--quiet",
        "--out",
        str(d / "R"),
    )
    return d, result


@pytest.fixture(scope="module")
def arrays(tmp_path_factory):
    """An .npz of 400 digit images (8 x 8, one channel) with numbered classes, and a run on it."""
    d = tmp_path_factory.mktemp("arrays")
    x, y = _digits()
    np.savez(d / "digits.npz", x=(x[:400] * 15).astype(np.uint8).reshape(-1, 8, 8), y=y[:400])
    result = _train("--dataset", str(d / "digits.npz"), *FAST, "--out", str(d / "R"))
    return d, result


# -- tables ----------------------------------------------------------------------------------


def test_the_runs_own_table_rows_give_its_probabilities_bit_for_bit(table):
    d, frame, result = table
    prep = result.data
    rows = prep.dataset.train_rows[prep.train_index]  # the training part, in the run's order
    want = result.final.probabilities.numpy()
    model = memomentum.load(d / "R")
    assert model.kind == "table" and list(model.classes_) == sorted(NAMES)
    got = model.predict_proba(frame.iloc[rows])  # a DataFrame: columns by name, the label column too
    assert got.dtype == np.float32 and np.array_equal(got, want)
    features = frame.iloc[rows][list(model.feature_columns_)].to_numpy()  # an array, in the columns' order
    assert np.array_equal(model.predict_proba(features), want)
    assert model.predict(features).tolist() == [sorted(NAMES)[k] for k in result.final.predicted.tolist()]


def test_predict_on_the_training_table_writes_what_examples_csv_says(table, capsys):
    d, _, _ = table
    code, out, err = _predict(capsys, d / "R", "--dataset", d / "t.csv", "--out", d / "pred.csv", "--quiet")
    assert code == 0 and err == ""
    rows = _rows(d / "pred.csv")
    assert list(rows[0]) == ["row", *VERDICT] and [int(r["row"]) for r in rows] == list(range(600))
    examples = _rows(d / "R" / "examples.csv")
    assert len(examples) == 540
    for e in examples:  # the same prediction, confidence and verdict, as written
        assert [rows[int(e["row"])][k] for k in VERDICT] == [e[k] for k in VERDICT], e
    agree = sum(r["predicted_label"] == r["given_label"] for r in rows)
    assert out == (
        f"predicted 600 examples of {d / 't.csv'} with the best model of {d / 'R'}; {agree} of 600 given "
        f"labels agree with the prediction, {600 - agree} are label issues; wrote {d / 'pred.csv'}\n"
    )


def test_new_rows_are_matched_by_column_name_and_named_by_class(table, capsys):
    d, frame, _ = table
    new = frame.iloc[600:800]
    shuffled = new[[f"px{i}" for i in reversed(range(64))]].assign(note="seen in May")  # other order, extra column
    shuffled.to_csv(d / "new.csv", index=False)
    code, _, err = _predict(
        capsys, d / "R", "--dataset", d / "new.csv", "--out", d / "new.parquet", "--probabilities", "--quiet"
    )
    assert code == 0 and err == ""
    got = pd.read_parquet(d / "new.parquet")
    names = sorted(NAMES)
    assert list(got.columns) == ["row", "predicted_label", "confidence", *[f"p_{n}" for n in names]]  # no labels
    assert got["row"].tolist() == list(range(200))
    model = memomentum.load(d / "R")
    want = model.predict_proba(new[list(model.feature_columns_)].to_numpy())
    assert np.array_equal(got[[f"p_{n}" for n in names]].to_numpy().astype(np.float32), want)
    assert got["predicted_label"].tolist() == model.predict(shuffled).tolist()
    assert np.mean(got["predicted_label"].to_numpy() == new["species"].to_numpy()) > 0.5  # it learned (chance: 0.1)


# -- image files -----------------------------------------------------------------------------


def test_an_image_folder_run_predicts_its_own_images_as_it_did(folder, capsys):
    d, result = folder
    code, _, err = _predict(capsys, d / "R", "--dataset", d / "pets", "--out", d / "pred.csv", "--quiet")
    assert code == 0 and err == ""
    rows = {r["file"]: r for r in _rows(d / "pred.csv")}
    assert len(rows) == 165 and next(iter(rows.values())).keys() == {"file", *VERDICT}
    examples = _rows(d / "R" / "examples.csv")
    for e in examples:
        assert [rows[e["file"]][k] for k in VERDICT] == [e[k] for k in VERDICT], e
    assert all(r["given_label"] == Path(f).parent.name for f, r in rows.items())  # test/ images too
    train = [result.data.dataset.train_files[i] for i in result.data.train_index]  # bit for bit, the run's order
    assert np.array_equal(memomentum.load(d / "R").predict_proba(train), result.final.probabilities.numpy())


def test_new_images_are_read_in_batches_and_labelled_by_their_class_folders(folder, capsys, monkeypatch):
    d, _ = folder
    info = write_image_folder(
        d / "new", classes=("cat", "dog", "fox"), per_class=50, size=(33, 30), seed=7, layout="flat", fmt="png"
    )
    batches = []
    read = UnpackedImages.read
    monkeypatch.setattr(
        UnpackedImages, "read", lambda self, rows, out=None: (batches.append(len(rows)), read(self, rows, out))[1]
    )
    code, _, _ = _predict(capsys, d / "R", "--dataset", d / "new", "--out", d / "new.csv", "--quiet")
    assert code == 0 and batches == [128, 22]  # 150 images, never more than one prediction chunk at once
    rows = _rows(d / "new.csv")
    assert [Path(r["file"]).parent.name for r in rows] == [r["given_label"] for r in rows]
    assert sum(r["predicted_label"] == r["given_label"] for r in rows) >= 140
    files = [r["file"] for r in rows]
    model = memomentum.load(d / "R")
    decoded = np.stack([np.asarray(Image.open(f)) for f in files])  # the same images, decoded, in memory
    assert decoded.shape == (150, 30, 33, 3)
    assert np.array_equal(model.predict_proba(decoded), model.predict_proba(files))
    loose = d / "loose"  # images without class folders: no labels to compare with
    loose.mkdir()
    for i, f in enumerate(files[::10]):
        shutil.copy(f, loose / f"{i}.png")
    code, _, _ = _predict(capsys, d / "R", "--dataset", loose, "--out", d / "loose.csv", "--quiet")
    assert code == 0 and list(_rows(d / "loose.csv")[0]) == ["file", "predicted_label", "confidence"]
    assert info["n_train"] == 150


# -- arrays ----------------------------------------------------------------------------------


def test_an_npz_run_predicts_arrays_by_class_number(arrays, capsys):
    d, result = arrays
    code, _, _ = _predict(capsys, d / "R", "--dataset", d / "digits.npz", "--out", d / "pred.csv", "--quiet")
    assert code == 0
    rows = _rows(d / "pred.csv")
    assert len(rows) == 400 and list(rows[0]) == ["row", *VERDICT]
    for e in _rows(d / "R" / "examples.csv"):  # index: the example's row of x
        assert [rows[int(e["index"])][k] for k in VERDICT] == [e[k] for k in VERDICT], e
    model = memomentum.load(d / "R")
    assert model.kind == "arrays" and model.classes_.tolist() == list(range(10))
    x = np.load(d / "digits.npz")["x"][result.data.train_index]  # (N, 8, 8): the channel axis is added
    assert np.array_equal(model.predict_proba(x), result.final.probabilities.numpy())
    assert model.predict(x).tolist() == result.final.predicted.tolist()


# -- every input kind: a run's own training data predicted as examples.csv says -------------


@pytest.fixture(scope="module")
def parquet_run(tmp_path_factory):
    """A parquet table of 300 digits with numbered labels, and a run on it."""
    d = tmp_path_factory.mktemp("parquet")
    x, y = _digits()
    frame = pd.DataFrame(x[:300], columns=[f"px{i}" for i in range(64)]).assign(digit=y[:300])
    frame.to_parquet(d / "t.parquet", index=False)
    _train("--dataset", str(d / "t.parquet"), "--label-column", "digit", *FAST, "--out", str(d / "R"))
    return d / "R", d / "t.parquet"


@pytest.fixture(scope="module")
def raw_folder_run(folder):
    """The image folder again, trained on a raw (not JPEG) packed store."""
    d, _ = folder
    schedule = [*flags(**SCHEDULE_2_EPOCHS), "--quiet"]
    _train("--dataset", str(d / "pets"), *IMAGES, "--store-format", "raw", *schedule, "--out", str(d / "raw"))
    return d / "raw", d / "pets"


@pytest.fixture(scope="module")
def image_table_run(folder):
    """The image folder's training images as PNG bytes in a parquet table, and a run on it."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    d, _ = folder
    files = sorted((d / "pets" / "train").glob("*/*"))
    images = []
    for f in files:
        buf = io.BytesIO()
        Image.open(f).save(buf, format="PNG")
        images.append(buf.getvalue())
    pq.write_table(pa.table({"image": images, "label": [f.parent.name for f in files]}), d / "pets.parquet")
    schedule = [*flags(**SCHEDULE_2_EPOCHS), "--quiet"]
    _train("--dataset", str(d / "pets.parquet"), *IMAGES, *schedule, "--out", str(d / "table"))
    return d / "table", d / "pets.parquet"


@pytest.fixture(scope="module")
def benchmark_run(tmp_path_factory):
    """A run on the embedded digits benchmark (noisy labels), and its training images as an .npz."""
    from memomentum.data import load_dataset

    d = tmp_path_factory.mktemp("benchmark")
    _train("--dataset", "digits", *FAST, "--out", str(d / "R"))
    np.savez(d / "x.npz", x=load_dataset("digits").x_train)
    return d / "R", d / "x.npz"


OWN_DATA = {  # input kind: (its run and data, the column naming an example in the predictions, examples.csv's)
    "a CSV table": ("table", "row", "row"),
    "a parquet table": ("parquet_run", "row", "row"),
    "an image folder": ("folder", "file", "file"),
    "an image folder on a raw store": ("raw_folder_run", "file", "file"),
    "a table of images": ("image_table_run", "row", "file"),
    "an .npz file": ("arrays", "row", "index"),
    "the digits benchmark's arrays": ("benchmark_run", "row", "index"),
}


def _run_and_data(name: str, request) -> tuple[Path, Path]:
    value = request.getfixturevalue(name)
    d = value[0]
    return {
        "table": lambda: (d / "R", d / "t.csv"),
        "folder": lambda: (d / "R", d / "pets"),
        "arrays": lambda: (d / "R", d / "digits.npz"),
    }.get(name, lambda: value)()


@pytest.mark.parametrize("kind", sorted(OWN_DATA))
def test_a_runs_own_training_data_is_predicted_as_its_examples_csv_says(kind, request, capsys, tmp_path):
    """Prediction reads new data with the run's own readers: the run's training data, given
    back in the form it trained from, get exactly the predicted label and the confidence that
    examples.csv wrote (both files write confidences with 6 decimals)."""
    fixture, id_column, example_column = OWN_DATA[kind]
    run, data = _run_and_data(fixture, request)
    code, _, _ = _predict(capsys, run, "--dataset", data, "--out", tmp_path / "p.csv", "--quiet")
    assert code == 0
    predicted = {r[id_column]: (r["predicted_label"], r["confidence"]) for r in _rows(tmp_path / "p.csv")}
    examples = _rows(run / "examples.csv")
    assert len(examples) > 100
    for e in examples:
        key = e[example_column]
        if kind == "a table of images":  # the row's image bytes, written once as row-NNNNNN.png
            key = str(int(Path(key).stem.removeprefix("row-")))
        assert predicted[key] == (e["predicted_label"], e["confidence"]), e


# -- refusals --------------------------------------------------------------------------------


def _bad_files(table, folder, arrays) -> dict:
    """Every bad input of the refusal tests, written once."""
    td, frame, _ = table
    idir, _ = folder
    ad, _ = arrays
    bad = td / "bad"
    if bad.exists():
        return {"bad": bad, "table": td, "images": idir, "arrays": ad}
    bad.mkdir()
    frame.iloc[:20].drop(columns=["px5"]).to_csv(bad / "no-px5.csv", index=False)
    wolf = frame.iloc[:20].copy()
    wolf.loc[3, "species"] = "wolf"
    wolf.to_csv(bad / "wolf.csv", index=False)
    text = frame.iloc[:20].astype({"px3": str})
    text.loc[4, "px3"] = "lots"
    text.to_csv(bad / "text.csv", index=False)
    gap = frame.iloc[:20].copy()
    gap.loc[2, "px7"] = np.nan
    gap.to_csv(bad / "gap.csv", index=False)
    np.savez(bad / "rgb.npz", x=np.zeros((4, 8, 8, 3), np.uint8))
    np.savez(bad / "big.npz", x=np.zeros((4, 10, 10), np.uint8))
    np.savez(bad / "wide.npz", x=np.zeros((4, 10)))
    np.savez(bad / "y12.npz", x=np.zeros((2, 8, 8), np.uint8), y=np.array([12, 1]))
    write_image_folder(bad / "wolves", classes=("cat", "wolf"), per_class=1, size=(24, 24), layout="flat")
    unfinished = bad / "unfinished"
    shutil.copytree(td / "R", unfinished)
    (unfinished / "summary.json").unlink()
    (unfinished / "checkpoint.pt").write_bytes(b"")
    moved = bad / "moved"  # a run whose table is no longer where it was
    shutil.copytree(td / "R", moved)
    config = json.loads((moved / "config.json").read_text())
    (moved / "config.json").write_text(json.dumps({**config, "dataset": "gone/t.csv"}))
    nameless = bad / "nameless"  # a model.pt that does not record the feature columns
    shutil.copytree(td / "R", nameless)
    saved = torch.load(nameless / "model.pt", weights_only=True)
    del saved["feature_columns"]
    torch.save(saved, nameless / "model.pt")
    return {"bad": bad, "table": td, "images": idir, "arrays": ad}


PX = ", ".join(f"px{i}" for i in range(10)) + " and 54 more"
TABLE_RUN = (
    f"a table with the feature columns {PX}; give a table (.csv, .parquet) with those columns, an .npz file "
    f"or an array of 64 features"
)
REFUSALS = {
    "unfinished run": (
        ["{bad}/unfinished", "--dataset", "{table}/t.csv"],
        "{bad}/unfinished holds no finished run: it has no summary.json (the run has not finished: "
        "resume it with memomentum run --resume {bad}/unfinished)",
    ),
    "no run directory": (
        ["{bad}/nowhere", "--dataset", "{table}/t.csv"],
        "no run directory at {bad}/nowhere; give the --out directory of a finished memomentum run",
    ),
    "a feature column missing": (
        ["{table}/R", "--dataset", "{bad}/no-px5.csv"],
        f"{{bad}}/no-px5.csv has no column 'px5'; the run's model reads the 64 feature columns {PX}, matched by name",
    ),
    "a label the run does not know": (
        ["{table}/R", "--dataset", "{bad}/wolf.csv"],
        "{bad}/wolf.csv has the label 'wolf' in row 3, which is not one of the run's "
        "classes (eight, five, four, nine, one, seven, six, three, two, zero)",
    ),
    "a feature column of text": (
        ["{table}/R", "--dataset", "{bad}/text.csv"],
        "{bad}/text.csv's column 'px3' is not numeric ({text_dtype}); the run's feature columns hold numbers",
    ),
    "a missing value": (
        ["{table}/R", "--dataset", "{bad}/gap.csv"],
        "{bad}/gap.csv has a missing or infinite value in column 'px7' at row 2; every row needs a "
        "finite number in each of the run's feature columns",
    ),
    "a table for an image run": (
        ["{images}/R", "--dataset", "{table}/t.csv"],
        "{table}/t.csv is a table without an image column, but the run in {images}/R trained on "
        "image files; give a folder of images, image files, a .txt file listing them, a table "
        "with an image column (.csv, .parquet, parquet shards) or an array of images",
    ),
    "images for a table run": (
        ["{table}/R", "--dataset", "{images}/pets"],
        f"{{images}}/pets is a folder, but the run in {{table}}/R trained on {TABLE_RUN}",
    ),
    "another number of columns": (
        ["{table}/R", "--dataset", "{bad}/wide.npz"],
        f"x in {{bad}}/wide.npz has 10 features, but the run trained on {TABLE_RUN}",
    ),
    "another number of channels": (
        ["{arrays}/R", "--dataset", "{bad}/rgb.npz"],
        "x in {bad}/rgb.npz holds images with 3 channels, but the run trained on images "
        "of 8 x 8 pixels with 1 channel; give images with 1 channel",
    ),
    "another image size": (
        ["{arrays}/R", "--dataset", "{bad}/big.npz"],
        "x in {bad}/big.npz holds images of 10 x 10 pixels, but the run trained on images of "
        "8 x 8 pixels with 1 channel; give images of 8 x 8 pixels",
    ),
    "a class number the run does not have": (
        ["{arrays}/R", "--dataset", "{bad}/y12.npz"],
        "y in {bad}/y12.npz has the label 12 in row 0, which is not one of the run's classes (0..9)",
    ),
    "a class folder the run does not have": (
        ["{images}/R", "--dataset", "{bad}/wolves"],
        "{bad}/wolves has the class folder 'wolf', which is not one of the run's "
        "classes (cat, dog, fox); in a folder of labelled images every "
        "sub-folder names a class",
    ),
    "--label-column for a folder": (
        ["{images}/R", "--dataset", "{images}/pets", "--label-column", "species"],
        "--label-column names the label column of a table (.csv, .parquet); "
        "{images}/pets is not a table, so it would be ignored; leave --label-column out",
    ),
    "--out of another format": (
        ["{table}/R", "--dataset", "{table}/t.csv", "--out", "{bad}/out.json"],
        "--out {bad}/out.json: predictions are written as a .csv or .parquet file; end the file name in one of them",
    ),
    "--out over the run's own file": (
        ["{table}/R", "--dataset", "{table}/t.csv", "--out", "{table}/R/examples.csv"],
        "--out {table}/R/examples.csv is one of the run's own files; choose another --out",
    ),
    "model.pt without feature columns": (
        ["{bad}/nameless", "--dataset", "{table}/t.csv"],
        "{bad}/nameless/model.pt does not name the table's feature columns, so new "
        "rows cannot be matched to them by name; train the run again with this "
        "version",
    ),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_bad_input_is_refused_in_one_sentence_with_status_2(case, table, folder, arrays, capsys):
    where = _bad_files(table, folder, arrays)
    where["text_dtype"] = pd.read_csv(where["bad"] / "text.csv")["px3"].dtype
    args, message = REFUSALS[case]
    args = [a.format(**where) for a in args]
    if "--out" not in args:
        args += ["--out", str(where["bad"] / "out.csv")]
    code, out, err = _predict(capsys, *args, "--quiet")
    assert (code, out) == (2, "")
    assert err == f"memomentum: error: {message.format(**where)}\n"
    assert not (where["bad"] / "out.csv").exists()


def test_a_run_predicts_after_its_training_table_moved(table, folder, arrays, capsys):
    """The feature columns travel in model.pt: the run's own table is not read again."""
    where = _bad_files(table, folder, arrays)
    out = where["bad"] / "moved.csv"
    code, _, err = _predict(
        capsys, str(where["bad"] / "moved"), "--dataset", str(where["table"] / "t.csv"), "--out", str(out), "--quiet"
    )
    assert (code, err) == (0, "")
    same = where["bad"] / "same.csv"
    assert (
        _predict(
            capsys, str(where["table"] / "R"), "--dataset", str(where["table"] / "t.csv"), "--out", str(same), "--quiet"
        )[0]
        == 0
    )
    assert out.read_text() == same.read_text()


def test_the_command_line_prints_one_line_and_no_traceback(tmp_path):
    r = run_in_child(
        "predict", str(tmp_path), "--dataset", "t.csv", "--out", str(tmp_path / "p.csv"), cwd=REPO, timeout=120
    )
    assert (r.returncode, r.stdout) == (2, "")
    assert r.stderr == (
        f"memomentum: error: {tmp_path} holds no finished run: it has no summary.json (predict needs "
        f"the directory of a finished memomentum run, with summary.json, model.pt, config.json and "
        f"examples.csv)\n"
    )


# -- issue 27: nothing overwritten, nothing answered in numbers that were names ---------------


def _checksums(folder: Path) -> dict:
    import hashlib

    return {
        p.relative_to(folder): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_a_run_without_classes_json_whose_examples_name_classes_is_refused(table, arrays, capsys, tmp_path):
    """Class numbers are no answer for a run whose classes had names (9 for 'zero')."""
    d, _, _ = table
    run = tmp_path / "no-classes"
    shutil.copytree(d / "R", run)
    (run / "classes.json").unlink()
    first = _rows(run / "examples.csv")[0]["given_label"]
    code, out, err = _predict(capsys, run, "--dataset", d / "t.csv", "--out", tmp_path / "p.csv", "--quiet")
    assert (code, out, (tmp_path / "p.csv").exists()) == (2, "", False)
    assert err == (
        f"memomentum: error: {run} has no classes.json, but its examples.csv names the classes (for "
        f"example {first!r}), so predictions would come out as class numbers that match no name; put the "
        f"run's classes.json back (or train the run again)\n"
    )
    with pytest.raises(memomentum.InputError, match=r"has no classes\.json"):
        memomentum.load(run)
    ad, _ = arrays  # a run on numbered classes has no classes.json and needs none
    assert not (ad / "R" / "classes.json").exists() and memomentum.load(ad / "R").classes_.tolist() == list(range(10))


def test_out_inside_any_run_directory_or_over_the_input_is_refused_and_nothing_changes(table, arrays, capsys, tmp_path):
    """--out OTHER_RUN/examples.csv overwrote another run's file: every run directory (one
    holding summary.json, checkpoint.pt or run.lock) is refused, the predicting run's too,
    and so is the input itself, in any spelling."""
    d, _, _ = table
    ad, _ = arrays
    unfinished = tmp_path / "unfinished"  # a run that is paused: its checkpoint, no summary
    unfinished.mkdir()
    (unfinished / "checkpoint.pt").write_bytes(b"state")
    busy = tmp_path / "busy"  # a run that is still writing: its lock
    busy.mkdir()
    (busy / "run.lock").write_text("{}")
    before = {f: _checksums(f) for f in (d / "R", ad / "R", unfinished, busy)}
    table_bytes = (d / "t.csv").read_bytes()
    cases = [
        (ad / "R" / "examples.csv", ad / "R", "summary.json"),
        (ad / "R" / "sub" / "p.csv", ad / "R", "summary.json"),
        (d / "R" / "predictions.csv", d / "R", "summary.json"),
        (unfinished / "p.csv", unfinished, "checkpoint.pt"),
        (busy / "history.csv", busy, "run.lock"),
    ]
    for out, folder, marker in cases:
        code, stdout, err = _predict(capsys, d / "R", "--dataset", d / "t.csv", "--out", out, "--quiet")
        assert (code, stdout) == (2, "")
        assert err == (
            f"memomentum: error: --out {out} lies inside the run directory {folder} (it holds {marker}); "
            f"predictions are written outside run directories, so that no run's files are overwritten: "
            f"choose another --out\n"
        )
    spelled = d / "R" / ".." / "t.csv"  # the input, spelled another way
    for out in (d / "t.csv", spelled):
        code, _, err = _predict(capsys, d / "R", "--dataset", d / "t.csv", "--out", out, "--quiet")
        assert (code, err) == (
            2,
            f"memomentum: error: --out {out} is the file given to --dataset; writing there "
            f"would overwrite the input, so choose another --out\n",
        )
    with pytest.raises(memomentum.InputError, match="is the file given to --dataset"):  # the Python boundary too
        predictor.predict_to_file(d / "R", str(d / "t.csv"), str(d / "t.csv"), progress=False)
    assert {f: _checksums(f) for f in before} == before and (d / "t.csv").read_bytes() == table_bytes
    assert not (ad / "R" / "sub").exists()


def test_out_below_a_file_is_refused_in_a_sentence(table, capsys, tmp_path):
    d, _, _ = table
    (tmp_path / "t.csv").write_text("a file\n")
    out = tmp_path / "t.csv" / "p.csv"
    code, _, err = _predict(capsys, d / "R", "--dataset", d / "t.csv", "--out", out, "--quiet")
    assert (code, err) == (
        2,
        f"memomentum: error: --out {out} cannot be written: {tmp_path / 't.csv'} is a file, not "
        f"a folder; choose another --out\n",
    )


def test_load_refuses_an_unknown_device_in_one_sentence(table):
    d, _, _ = table
    with pytest.raises(memomentum.InputError) as e:
        memomentum.load(d / "R", device="tpu")
    assert str(e.value) == (
        "unknown device 'tpu'; choose one of auto, cpu, cuda (or cuda:N), or leave it out for the "
        "device the run trained on"
    )
    assert memomentum.load(d / "R", device=torch.device("cpu")).engine.device.type == "cpu"


def test_a_file_named_npz_that_is_no_zip_archive_is_named_so_without_pickle_advice(arrays, capsys, tmp_path):
    ad, _ = arrays
    fake = tmp_path / "fake.npz"
    fake.write_text("x,y\n1,2\n")
    code, _, err = _predict(capsys, ad / "R", "--dataset", fake, "--out", tmp_path / "p.csv", "--quiet")
    assert (code, err) == (2, f"memomentum: error: {fake} is not a readable .npz file (it is not a zip archive)\n")
    objects = tmp_path / "objects.npz"
    np.savez(objects, x=np.array([[1, "a"]], dtype=object))
    code, _, err = _predict(capsys, ad / "R", "--dataset", objects, "--out", tmp_path / "p.csv", "--quiet")
    assert (code, err) == (
        2,
        f"memomentum: error: {objects} holds object arrays, which are not accepted; save numeric arrays only\n",
    )
    assert "pickle" not in err


@pytest.mark.parametrize("X, got", [(None, "None"), (5, "the int 5"), (np.int64(5), "the int 5"), ("", None)])
def test_predict_of_none_or_a_number_says_what_x_must_be(arrays, X, got):
    ad, _ = arrays
    with pytest.raises(memomentum.InputError) as e:
        memomentum.load(ad / "R").predict(X)
    want = (
        "X is an empty path; give a path, a list of image files, a DataFrame or an array"
        if got is None
        else f"X must be the data to predict (a path, a list of image files, a DataFrame or an array), got {got}"
    )
    assert str(e.value) == want


def test_the_summary_line_counts_one_label_issue_in_the_singular(table, capsys, tmp_path):
    d, frame, _ = table
    model = memomentum.load(d / "R")
    rows = frame.iloc[600:700]
    wrong = rows[model.predict(rows) != rows["species"].to_numpy()].iloc[:1]
    right = rows[model.predict(rows) == rows["species"].to_numpy()].iloc[:1]
    pd.concat([wrong, right]).to_csv(tmp_path / "two.csv", index=False)
    code, out, _ = _predict(capsys, d / "R", "--dataset", tmp_path / "two.csv", "--out", tmp_path / "p.csv", "--quiet")
    assert code == 0 and "; 1 of 2 given labels agrees with the prediction, 1 is a label issue;" in out


def test_a_repeated_feature_column_is_refused_for_what_it_is(table, capsys, tmp_path):
    d, frame, _ = table
    path = tmp_path / "twice.csv"
    frame.iloc[:20].to_csv(path, index=False, header=[*[f"px{i}" for i in range(63)], "px3", "species"])
    code, _, err = _predict(capsys, d / "R", "--dataset", path, "--out", tmp_path / "p.csv", "--quiet")
    assert (code, err) == (
        2,
        f"memomentum: error: {path} has more than one column named 'px3'; every column name "
        f"must be unique (which of them is meant would be a guess: pandas would read the second "
        f"as 'px3.1')\n",
    )


def test_values_beyond_float32_are_refused_without_a_warning(table, capsys, tmp_path):
    import warnings

    d, frame, _ = table
    big = frame.iloc[:5].copy()
    big.loc[2, "px9"] = 1e300
    big.to_csv(tmp_path / "big.csv", index=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's RuntimeWarning would print its source line before the error
        code, _, err = _predict(
            capsys, d / "R", "--dataset", tmp_path / "big.csv", "--out", tmp_path / "p.csv", "--quiet"
        )
    assert (code, err) == (
        2,
        f"memomentum: error: {tmp_path / 'big.csv'} holds feature values too large for 32-bit "
        f"floats (beyond 3.4e38); rescale them\n",
    )


# -- issue 27: a demanding new user's own cases ------------------------------------------------


def test_load_names_what_it_was_given_instead_of_a_run_directory(table, tmp_path):
    d, _, _ = table
    with pytest.raises(memomentum.InputError) as e:
        memomentum.load(None)
    assert str(e.value) == (
        "the run directory must be a path (the --out directory of a finished memomentum run), got None"
    )
    with pytest.raises(memomentum.InputError) as e:
        memomentum.load(d / "R" / "model.pt")
    assert (
        str(e.value) == f"{d / 'R' / 'model.pt'} is a file, not a run directory; give the run directory that holds "
        f"it, {d / 'R'}"
    )
    runs = tmp_path / "grid"  # a folder of runs, as a grid writes
    for name in ("seed-1", "seed-2"):
        shutil.copytree(d / "R", runs / name)
    with pytest.raises(memomentum.InputError) as e:
        memomentum.load(runs)
    assert str(e.value) == (
        f"{runs} holds no finished run: it has no summary.json (it holds 2 run directories, "
        f"seed-1, seed-2: give one of them)"
    )


def test_load_on_a_gpu_that_is_not_there_names_the_python_argument(table):
    d, _, _ = table
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    for device in ("cuda", "cuda:1"):
        with pytest.raises(memomentum.InputError) as e:
            memomentum.load(d / "R", device=device)
        assert str(e.value) == (
            f"device {device!r} was asked for, but PyTorch sees no CUDA GPU; use device='cpu', or leave device out"
        )


def test_predict_to_file_refuses_no_data_and_no_out_in_one_sentence(table, tmp_path):
    d, _, _ = table
    with pytest.raises(memomentum.InputError, match=r"^no data given to predict \(\[\]\); give the path of the data"):
        predictor.predict_to_file(d / "R", [], str(tmp_path / "p.csv"), progress=False)
    with pytest.raises(
        memomentum.InputError,
        match=r"^--out must be the path of the file to write \(.csv or "
        r".parquet\), got None$",
    ):
        predictor.predict_to_file(d / "R", str(d / "t.csv"), None, progress=False)


def test_one_example_a_series_or_a_sparse_matrix_is_refused_with_what_to_give(table):
    from scipy import sparse

    d, frame, _ = table
    model = memomentum.load(d / "R")
    row = frame[list(model.feature_columns_)].to_numpy()[0]
    with pytest.raises(memomentum.InputError) as e:
        model.predict(row)
    assert str(e.value) == (
        "X in the given data is one-dimensional (shape (64,)); give the examples as the rows of a "
        "2-D array (one example: X.reshape(1, -1))"
    )
    assert model.predict(row.reshape(1, -1)).tolist() == model.predict(frame.iloc[[0]]).tolist()
    with pytest.raises(
        memomentum.InputError,
        match=r"^X is a pandas Series, one column or one row; give a DataFrame "
        r"\(one row of a frame: frame.iloc\[\[i\]\], with two brackets\)$",
    ):
        model.predict(frame.iloc[0])
    with pytest.raises(
        memomentum.InputError,
        match=r"^X is a sparse matrix \(csr_matrix\); give a dense array "
        r"\(X.toarray\(\)\)$",
    ):
        model.predict(sparse.csr_matrix(row.reshape(1, -1)))


def test_a_dataframe_without_the_run_s_column_names_says_to_name_them(table):
    d, frame, _ = table
    model = memomentum.load(d / "R")
    unnamed = frame[list(model.feature_columns_)].iloc[:5].set_axis(range(64), axis=1)
    with pytest.raises(
        memomentum.InputError,
        match=r"matched by name \(none of them is there: name the frame's "
        r"columns as the run's, or give its values as an array, in the "
        r"order of feature_columns_\)$",
    ):
        model.predict(unnamed)
    assert model.predict(unnamed.to_numpy()).tolist() == model.predict(frame.iloc[:5]).tolist()


def test_out_inside_a_folder_of_parquet_shards_given_as_input_is_refused(table, capsys, tmp_path):
    d, _, _ = table
    shards = tmp_path / "shards"
    shards.mkdir()
    (shards / "train-00000-of-00001.parquet").write_bytes(b"PAR1")
    out = shards / "predictions.parquet"
    code, _, err = _predict(capsys, d / "R", "--dataset", shards, "--out", out, "--quiet")
    assert (code, err) == (
        2,
        f"memomentum: error: --out {out} lies inside the table {shards} given to --dataset, "
        f"where it would be read as part of the table next time; choose another --out\n",
    )
    assert sorted(p.name for p in shards.iterdir()) == ["train-00000-of-00001.parquet"]


def test_image_paths_in_an_array_or_a_list_relative_to_the_working_directory(folder, capsys, tmp_path, monkeypatch):
    d, _ = folder
    files = sorted(str(p) for p in (d / "pets" / "train" / "cat").glob("*"))[:3]
    model = memomentum.load(d / "R")
    assert np.array_equal(model.predict_proba(np.array(files)), model.predict_proba(files))
    lists = tmp_path / "lists"
    lists.mkdir()
    monkeypatch.chdir(d)
    named = [str(Path(f).relative_to(d)) for f in files]  # relative to the working directory, not to the list
    (lists / "some.txt").write_text("\n".join(named) + "\n")
    code, _, err = _predict(capsys, d / "R", "--dataset", lists / "some.txt", "--out", tmp_path / "p.csv", "--quiet")
    assert (code, err) == (
        2,
        f"memomentum: error: 3 of the 3 image files listed in {lists / 'some.txt'} cannot be "
        f"found relative to its folder {lists} ({', '.join(named)}), but exist relative to the "
        f"working directory: paths in a list are read relative to the list's folder, so write "
        f"them relative to it, or absolute\n",
    )


def test_an_out_folder_that_cannot_be_looked_into_is_no_traceback(table, capsys, tmp_path, monkeypatch):
    """Looking for run directories above --out must not fail where a folder cannot be read
    (another user's): writing there then says why, in one sentence."""
    d, _, _ = table
    locked = tmp_path / "locked"
    locked.mkdir()
    real = Path.is_file

    def is_file(self):
        if self.parent == locked:
            raise PermissionError(13, "Permission denied", str(self))
        return real(self)

    monkeypatch.setattr(Path, "is_file", is_file)
    code, out, err = _predict(capsys, d / "R", "--dataset", d / "t.csv", "--out", locked / "p.csv", "--quiet")
    assert (code, err) == (0, "") and out.endswith(f"wrote {locked / 'p.csv'}\n")

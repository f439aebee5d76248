"""Tables: ``--dataset table.csv|.parquet`` with ``--label-column``; what the reader keeps,
drops and says, the user's labels in every output, and the tables benchmark."""

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd  # the tables extra (in the test extra too)
import pytest
from helpers import REPO, SCHEDULE_2_EPOCHS, flags, run_in_process

from memomentum import InputError
from memomentum.cli import main
from memomentum.data import load_dataset
from memomentum.data.tables import read_table


def species_frame(n=120, seed=0):
    """Two well separated species, with a text column, an empty column and a date column."""
    rs = np.random.RandomState(seed)
    y = rs.randint(0, 2, n)
    return pd.DataFrame(
        {
            "petal": rs.randn(n) + 3 * y,
            "sepal": rs.randn(n) - 2 * y,
            "count": rs.randint(0, 5, n),
            "site": rs.choice(["north", "south"], n),  # text: dropped
            "unused": np.full(n, np.nan),  # no value at all: dropped
            "seen": pd.date_range("2020-01-01", periods=n),  # a date: dropped
            "species": np.array(["versicolor", "setosa"])[y],
        }
    )


def test_reader_keeps_numeric_columns_and_says_what_it_dropped(tmp_path):
    frame = species_frame()
    frame.loc[3, "petal"] = np.nan
    frame.loc[7, "sepal"] = np.inf
    frame.loc[9, "species"] = None
    frame.to_csv(tmp_path / "t.csv", index=False)
    t = read_table(tmp_path / "t.csv", label_column="species")
    assert t.feature_columns == ("petal", "sepal", "count")
    assert t.dataset.class_names == ("setosa", "versicolor")  # sorted; classes 0 and 1
    notes = " | ".join(t.notes)
    # a CSV has no types: its dates are text like the site names
    assert "dropped 2 columns 'site', 'seen': not numeric (str); encode them as numbers to use them" in notes
    assert "dropped 1 column 'unused': no value in any row" in notes
    assert "dropped 1 row without a label (row 9)" in notes
    assert "dropped 2 rows with a missing or infinite feature value (rows 3, 7; columns: petal (1), sepal (1))" in notes
    np.testing.assert_array_equal(t.train_rows, np.delete(np.arange(120), [3, 7, 9]))
    kept = frame.drop(index=[3, 7, 9])
    np.testing.assert_array_equal(np.array(t.dataset.class_names)[t.dataset.y_train], kept["species"])
    np.testing.assert_allclose(t.dataset.x_train, kept[["petal", "sepal", "count"]].to_numpy(np.float32))
    assert t.dataset.x_test is None and t.dataset.default_model == "mlp"


def test_parquet_reads_as_the_csv_does(tmp_path):
    frame = species_frame()
    frame.to_csv(tmp_path / "t.csv", index=False)
    frame.to_parquet(tmp_path / "t.parquet")
    a = read_table(tmp_path / "t.csv", label_column="species").dataset
    b = load_dataset(str(tmp_path / "t.parquet"), label_column="species")
    # parquet keeps types, so the dates are named as such
    assert (
        "dropped 1 column 'seen': dates or times are not numeric features"
        in read_table(tmp_path / "t.parquet", label_column="species").notes
    )
    np.testing.assert_array_equal(a.x_train, b.x_train)
    np.testing.assert_array_equal(a.y_train, b.y_train)
    assert a.class_names == b.class_names


def test_integer_labels_sort_as_numbers_and_split_column_makes_a_test_set(tmp_path):
    frame = pd.DataFrame(
        {
            "x": np.arange(8.0),
            "label": [1999, 7, 30, 7, 1999, 30, 7, 30],
            "split": ["train", "train", "train", "Train", " test", "TEST", "train", "train"],
        }
    )
    frame.to_csv(tmp_path / "t.csv", index=False)
    t = read_table(tmp_path / "t.csv")
    assert t.dataset.class_names == ("7", "30", "1999")  # 7 < 30 < 1999, not as text
    np.testing.assert_array_equal(t.dataset.y_train, [2, 0, 1, 0, 0, 1])
    np.testing.assert_array_equal(t.dataset.y_test, [2, 1])
    np.testing.assert_array_equal(t.test_rows, [4, 5])
    assert t.feature_columns == ("x",)  # split is not a feature
    assert "column 'split' marks 2 test rows and 6 training rows" in t.notes


@pytest.mark.parametrize(
    "frame, kwargs, message",
    [
        (
            pd.DataFrame({"a": [1.0, 2.0], "y": ["p", "q"]}),
            {},
            r"has no column 'label' \(columns: a, y\); name the label column with --label-column",
        ),
        (
            pd.DataFrame({"a": ["u", "v"], "label": ["p", "q"]}),
            {},
            r"has no numeric feature column besides the label 'label' \(column 'a' is not numeric or empty\)",
        ),
        (pd.DataFrame({"a": [1.0, 2.0], "label": ["p", "p"]}), {}, r"has only one class \('p'\)"),
        (
            pd.DataFrame({"a": [1.0, 2.0, 3.0], "label": ["p", "q", "p"], "split": ["train", "test", "later"]}),
            {},
            r"the value 'later' in its 'split' column at row 2; that column must hold train or test",
        ),
        (
            pd.DataFrame(
                {
                    "a": [1.0, 2.0, 3.0, 4.0, 5.0],
                    "label": ["p", "q", "r", "p", "q"],
                    "split": ["train", "train", "test", "train", "train"],
                }
            ),
            {},
            r"the label 'r' in test row 2, which no training row has",
        ),
        (
            pd.DataFrame({"a": [np.nan, 2.0], "label": ["p", None]}),
            {},
            "has no training row with a label and complete features",
        ),
    ],
)
def test_bad_tables_get_one_sentence(tmp_path, frame, kwargs, message):
    frame.to_csv(tmp_path / "t.csv", index=False)
    with pytest.raises(InputError, match=message):
        read_table(tmp_path / "t.csv", **kwargs)


def test_unreadable_files_and_missing_pandas(tmp_path, monkeypatch):
    with pytest.raises(InputError, match="no table found at"):
        read_table(tmp_path / "absent.csv")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(InputError, match="is empty: a table needs a header row and data rows"):
        read_table(tmp_path / "empty.csv")
    (tmp_path / "bad.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(InputError, match="cannot read the table"):
        read_table(tmp_path / "bad.parquet")
    species_frame().to_csv(tmp_path / "t.csv", index=False)
    monkeypatch.setitem(sys.modules, "pandas", None)  # as if the extra were not installed
    with pytest.raises(InputError, match=r'needs pandas, which is not installed; pip install "memomentum\[tables\]"'):
        read_table(tmp_path / "t.csv", label_column="species")


def test_cli_runs_a_table_and_shows_the_users_labels(tmp_path, capsys):
    frame = species_frame(n=160)
    frame["split"] = ["test" if i % 5 == 0 else "train" for i in range(len(frame))]
    frame.to_csv(tmp_path / "plants.csv", index=False)
    out = tmp_path / "run"
    code = main(
        [
            "run",
            "--dataset",
            str(tmp_path / "plants.csv"),
            "--label-column",
            "species",
            "--epochs",
            "3",
            "--batch-size",
            "16",
            "--max-outer-loop",
            "1",
            "--max-inner-loop",
            "2",
            "--quiet",
            "--out",
            str(out),
        ]
    )
    err = capsys.readouterr().err
    assert code == 0, err
    assert "memomentum: note: dropped 2 columns 'site', 'seen': not numeric" in err
    assert json.loads((out / "classes.json").read_text()) == ["setosa", "versicolor"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["noise_type"] == "none" and summary["test_accuracy"] > 80  # the test rows were scored
    examples = pd.read_csv(out / "examples.csv")
    assert len(examples) == summary["n_train"]
    # the user's labels, not class numbers, wherever a label is shown
    assert set(examples["given_label"]) == {"setosa", "versicolor"}
    assert set(examples["predicted_label"]) <= {"setosa", "versicolor"}
    # the run's default directory is named after the file, not its path
    from memomentum.config import RunConfig
    from memomentum.entrypoints.api import default_run_dir

    assert default_run_dir(RunConfig(dataset=str(tmp_path / "plants.csv"))).name.startswith("plants-none-")


def test_cli_refuses_a_missing_label_column_with_exit_2(tmp_path, capsys):
    species_frame(n=20).to_csv(tmp_path / "plants.csv", index=False)
    assert main(["run", "--dataset", str(tmp_path / "plants.csv"), "--quiet", "--out", str(tmp_path / "run")]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"memomentum: error: {tmp_path / 'plants.csv'} has no column 'label' (columns: petal, sepal, count, site, "
        f"unused, seen, species); name the label column with --label-column"
    )
    assert not (tmp_path / "run").exists()
    from memomentum.config import RunConfig

    with pytest.raises(InputError, match="label-column must be the name of a column"):
        RunConfig(dataset="t.csv", label_column=" ")


def test_tables_benchmark_runs_and_prints_its_json(capsys):
    spec = importlib.util.spec_from_file_location("tables_digits", REPO / "benchmarks" / "tables_digits.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)  # in this process: no second start of Python and torch
    bench.main(
        ["--limit", "200", "--hgb-max-iter", "3", "--epochs", "1", "--max-outer-loop", "1", "--max-inner-loop", "2"]
    )
    out = json.loads(capsys.readouterr().out)
    assert out["data"]["n_train"] == 200 and out["data"]["feature_columns"] == 64
    assert 20 < out["data"]["realised_noise_rate"] < 60  # instance noise 0.4 on the training rows
    # measured: boosted trees 66 % (54 % fit on the noisy labels), the MLP after one epoch 30 % (chance: 10 %)
    assert out["hgb"]["memomentum_test_accuracy"] > 50 and out["hgb"]["noisy_fit_test_accuracy"] > 40
    assert out["mlp"]["memomentum_test_accuracy"] > 20 and out["mlp"]["noisy_fit_test_accuracy"] > 20
    for model in ("hgb", "mlp"):
        assert 0 < out[model]["memomentum_confident"]["n_confident"] <= 200


# -- unusual tables: never a silently wrong result (issue 18) ----------------------------------
def _run_table(path: Path, out: Path, *extra: str) -> int:
    return run_in_process(
        "--dataset",
        str(path),
        "--label-column",
        "species",
        *flags(**SCHEDULE_2_EPOCHS, batch_size=16),
        "--quiet",
        "--out",
        str(out),
        *extra,
    )


def test_a_label_column_written_twice_is_refused_not_read_as_a_feature(tmp_path, capsys):
    path = tmp_path / "twice.csv"
    frame = species_frame()[["petal", "sepal", "species"]]
    frame.assign(copy=frame["species"]).to_csv(path, index=False, header=["petal", "sepal", "species", "species"])
    assert path.read_text().splitlines()[0] == "petal,sepal,species,species"
    assert _run_table(path, tmp_path / "run") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "more than one column named 'species'" in err[0] and "give the label away" in err[0]
    assert not (tmp_path / "run").exists()
    from memomentum.data.tables import table_from_frame

    with pytest.raises(InputError, match="more than one column named 'a'"):
        table_from_frame(pd.DataFrame([[1, 2, 0], [3, 4, 1]], columns=["a", "a", "species"]), label_column="species")


def test_examples_name_the_row_of_the_file_when_rows_were_dropped(tmp_path, capsys):
    frame = species_frame(n=160)
    frame.loc[[2, 50, 51], "species"] = None  # three rows without a label are dropped
    frame.loc[90, "petal"] = np.nan  # and one with an incomplete row
    path = tmp_path / "gaps.csv"
    frame.to_csv(path, index=False)
    assert _run_table(path, tmp_path / "run") == 0, capsys.readouterr().err
    examples = pd.read_csv(tmp_path / "run" / "examples.csv")
    assert "row" in examples.columns and not examples["row"].isin([2, 50, 51, 90]).any()
    # every example's row holds, in the file, the label examples.csv says it was given
    assert (frame.loc[examples["row"], "species"].to_numpy() == examples["given_label"].to_numpy()).all()
    np.testing.assert_allclose(
        frame.loc[examples["row"], "sepal"].to_numpy(),
        frame.drop(index=[2, 50, 51, 90])["sepal"].to_numpy()[examples["index"]],
    )


@pytest.mark.parametrize("column", ["id", "length"])
def test_an_identifier_or_a_measurement_is_refused_as_the_label(tmp_path, capsys, column):
    frame = species_frame(n=200)
    frame["id"] = np.arange(200)
    frame["length"] = np.random.RandomState(0).rand(200)
    path = tmp_path / "t.csv"
    frame.to_csv(path, index=False)
    code = main(
        [
            "run",
            "--dataset",
            str(path),
            "--label-column",
            column,
            "--epochs",
            "1",
            "--quiet",
            "--out",
            str(tmp_path / "run"),
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert f"label column '{column}' has 200 different values in 200 training rows" in err[0]
    assert "identifier or a measurement" in err[0]


def test_spaces_around_text_labels_are_stripped_with_a_note(tmp_path):
    frame = species_frame()
    frame.loc[[4, 8], "species"] = frame.loc[[4, 8], "species"] + " "
    frame.to_csv(tmp_path / "t.csv", index=False)
    t = read_table(tmp_path / "t.csv", label_column="species")
    assert t.dataset.class_names == ("setosa", "versicolor")
    assert any("stripped the spaces around 2 labels of column 'species' (rows 4, 8)" in n for n in t.notes)


@pytest.mark.parametrize("form", ["semicolon", "tab", "spaces", "gzip", "zip-semicolon"])
def test_other_csv_forms_read_as_the_plain_csv(tmp_path, form):
    frame = species_frame()[["petal", "sepal", "count", "species"]]
    frame.to_csv(tmp_path / "plain.csv", index=False)
    plain = read_table(tmp_path / "plain.csv", label_column="species")
    if form == "semicolon":
        path = tmp_path / "t.csv"
        frame.to_csv(path, index=False, sep=";", decimal=",")  # the European spelling
    elif form == "tab":
        path = tmp_path / "t.csv"
        frame.to_csv(path, index=False, sep="\t")
    elif form == "spaces":
        path = tmp_path / "t.csv"
        path.write_text((tmp_path / "plain.csv").read_text().replace(",", ", "))
    elif form == "zip-semicolon":  # split as the .gz, .bz2 and .xz files are (issue 27)
        path = tmp_path / "t.csv.zip"
        frame.to_csv(path, index=False, sep=";", decimal=",")
    else:
        path = tmp_path / "t.csv.gz"
        frame.to_csv(path, index=False)
    t = read_table(path, label_column="species")
    assert t.feature_columns == plain.feature_columns and t.dataset.class_names == plain.dataset.class_names
    np.testing.assert_array_equal(t.dataset.x_train, plain.dataset.x_train)
    np.testing.assert_array_equal(t.dataset.y_train, plain.dataset.y_train)


def test_a_table_whose_rows_are_all_test_rows_says_so(tmp_path):
    frame = species_frame()
    frame["split"] = "test"
    frame.to_csv(tmp_path / "t.csv", index=False)
    with pytest.raises(InputError, match=r"every usable row of .* is marked test in its 'split' column"):
        read_table(tmp_path / "t.csv", label_column="species")


def test_numbers_in_messages_read_as_the_user_wrote_them(tmp_path):
    frame = pd.DataFrame({"a": np.arange(12.0), "label": [0, 1] * 5 + [7, 0], "split": ["train"] * 10 + ["test"] * 2})
    frame.to_csv(tmp_path / "t.csv", index=False)
    with pytest.raises(InputError) as e:
        read_table(tmp_path / "t.csv")
    assert "the label 7 in test row 10" in str(e.value) and "np." not in str(e.value)


def test_labels_that_differ_only_in_case_are_noted_and_a_spaced_label_column_is_found(tmp_path):
    frame = species_frame()
    frame.loc[::3, "species"] = frame.loc[::3, "species"].str.capitalize()
    frame.to_csv(tmp_path / "t.csv", index=False)
    t = read_table(tmp_path / "t.csv", label_column=" species")  # as typed, with a space
    assert len(t.dataset.class_names) == 4
    assert any(
        "differ only in case are kept as different classes: 'Setosa' and 'setosa'; 'Versicolor' and 'versicolor'" in n
        for n in t.notes
    )


# -- issue 27 ------------------------------------------------------------------------------------
def test_a_repeated_feature_column_is_refused_for_what_it_is_not_for_the_label(tmp_path, capsys):
    path = tmp_path / "twice.csv"
    frame = species_frame()[["petal", "sepal", "species"]]
    frame.to_csv(path, index=False, header=["petal", "petal", "species"])
    assert _run_table(path, tmp_path / "run") == 2
    assert capsys.readouterr().err == (
        f"memomentum: error: {path} has more than one column named 'petal'; every "
        f"column name must be unique (which of them is meant would be a guess: pandas "
        f"would read the second as 'petal.1')\n"
    )
    assert not (tmp_path / "run").exists()


def test_values_beyond_float32_are_refused_in_one_line_without_a_warning(tmp_path, capsys):
    import warnings

    frame = species_frame()[["petal", "sepal", "species"]]
    frame.loc[5, "petal"] = 1e300
    frame.to_csv(tmp_path / "big.csv", index=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's RuntimeWarning printed its source line before the error
        assert _run_table(tmp_path / "big.csv", tmp_path / "run") == 2
    assert capsys.readouterr().err == (
        f"memomentum: error: {tmp_path / 'big.csv'} holds feature values too large for "
        f"32-bit floats (beyond 3.4e38); rescale them\n"
    )


@pytest.mark.parametrize(
    "option, message",
    [
        (
            ["--workers", "2"],
            "--workers applies to image files; t.csv has no column of images, so it would be ignored; "
            "leave --workers out",
        ),
        (
            ["--no-stream"],
            "--no-stream holds decoded images in memory, but t.csv holds feature vectors, not images, so it "
            "would be ignored; leave --no-stream out",
        ),
        (
            ["--stream"],
            "--stream reads images from disk in batches, but t.csv holds feature vectors, not images, so it "
            "would be ignored; leave --stream out",
        ),
    ],
)
def test_image_reading_options_are_refused_for_a_table_of_features(tmp_path, capsys, monkeypatch, option, message):
    species_frame().to_csv(tmp_path / "t.csv", index=False)
    monkeypatch.chdir(tmp_path)
    assert _run_table(Path("t.csv"), tmp_path / "run", *option) == 2
    assert capsys.readouterr().err.splitlines()[-1] == f"memomentum: error: {message}"
    assert not (tmp_path / "run").exists()


def test_a_csv_that_is_not_utf8_is_named_so_with_what_to_do(tmp_path, capsys):
    """A spreadsheet's "CSV" in Latin-1: pandas' message gave a byte position inside its buffer."""
    path = tmp_path / "latin.csv"
    frame = species_frame()[["petal", "sepal", "species"]]
    frame.loc[3, "species"] = "café"
    path.write_bytes(frame.to_csv(index=False).encode("latin-1"))
    assert _run_table(path, tmp_path / "run") == 2
    assert capsys.readouterr().err == (
        f"memomentum: error: cannot read the table {path}: it is not UTF-8 text (it "
        f"holds the byte 0xe9, which UTF-8 does not allow there); save it as UTF-8 (a "
        f'spreadsheet\'s "CSV UTF-8")\n'
    )

"""Tables: ``--dataset table.csv|.parquet`` with ``--label-column``; what the reader keeps,
drops and says, the user's labels in every output, and the tables benchmark."""
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

pd = pytest.importorskip("pandas")  # the tables extra (in the test extra too)

from memomentum import InputError  # noqa: E402
from memomentum.cli import main  # noqa: E402
from memomentum.data import load_dataset  # noqa: E402
from memomentum.data.tables import read_table  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def species_frame(n=120, seed=0):
    """Two well separated species, with a text column, an empty column and a date column."""
    rs = np.random.RandomState(seed)
    y = rs.randint(0, 2, n)
    return pd.DataFrame({
        "petal": rs.randn(n) + 3 * y,
        "sepal": rs.randn(n) - 2 * y,
        "count": rs.randint(0, 5, n),
        "site": rs.choice(["north", "south"], n),  # text: dropped
        "unused": np.full(n, np.nan),  # no value at all: dropped
        "seen": pd.date_range("2020-01-01", periods=n),  # a date: dropped
        "species": np.array(["versicolor", "setosa"])[y],
    })


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
    assert "dropped 1 row without a label (rows 9)" in notes
    assert "dropped 2 rows with a missing or infinite feature value (rows 3, 7; columns: petal (1), sepal (1))" in notes
    np.testing.assert_array_equal(t.train_rows, np.delete(np.arange(120), [3, 7, 9]))
    kept = frame.drop(index=[3, 7, 9])
    np.testing.assert_array_equal(np.array(t.dataset.class_names)[t.dataset.y_train], kept["species"])
    np.testing.assert_allclose(t.dataset.x_train, kept[["petal", "sepal", "count"]].to_numpy(np.float32))
    assert t.dataset.x_test is None and t.dataset.default_model == "mlp"


def test_parquet_reads_as_the_csv_does(tmp_path):
    pytest.importorskip("pyarrow")
    frame = species_frame()
    frame.to_csv(tmp_path / "t.csv", index=False)
    frame.to_parquet(tmp_path / "t.parquet")
    a = read_table(tmp_path / "t.csv", label_column="species").dataset
    b = load_dataset(str(tmp_path / "t.parquet"), label_column="species")
    # parquet keeps types, so the dates are named as such
    assert "dropped 1 column 'seen': dates or times are not numeric features" in read_table(
        tmp_path / "t.parquet", label_column="species").notes
    np.testing.assert_array_equal(a.x_train, b.x_train)
    np.testing.assert_array_equal(a.y_train, b.y_train)
    assert a.class_names == b.class_names


def test_integer_labels_sort_as_numbers_and_split_column_makes_a_test_set(tmp_path):
    frame = pd.DataFrame({"x": np.arange(8.0), "label": [1999, 7, 30, 7, 1999, 30, 7, 30],
                          "split": ["train", "train", "train", "Train", " test", "TEST", "train", "train"]})
    frame.to_csv(tmp_path / "t.csv", index=False)
    t = read_table(tmp_path / "t.csv")
    assert t.dataset.class_names == ("7", "30", "1999")  # 7 < 30 < 1999, not as text
    np.testing.assert_array_equal(t.dataset.y_train, [2, 0, 1, 0, 0, 1])
    np.testing.assert_array_equal(t.dataset.y_test, [2, 1])
    np.testing.assert_array_equal(t.test_rows, [4, 5])
    assert t.feature_columns == ("x",)  # split is not a feature
    assert "column 'split' marks 2 test rows and 6 training rows" in t.notes


@pytest.mark.parametrize("frame, kwargs, message", [
    (pd.DataFrame({"a": [1.0, 2.0], "y": ["p", "q"]}), {},
     r"has no column 'label' \(columns: a, y\); name the label column with --label-column"),
    (pd.DataFrame({"a": ["u", "v"], "label": ["p", "q"]}), {},
     r"has no numeric feature column besides the label 'label' \(column 'a' is not numeric or empty\)"),
    (pd.DataFrame({"a": [1.0, 2.0], "label": ["p", "p"]}), {}, r"has only one class \('p'\)"),
    (pd.DataFrame({"a": [1.0, 2.0, 3.0], "label": ["p", "q", "p"], "split": ["train", "test", "later"]}), {},
     r"the value 'later' in its 'split' column at row 2; that column must hold train or test"),
    (pd.DataFrame({"a": [1.0, 2.0, 3.0], "label": ["p", "q", "r"], "split": ["train", "train", "test"]}), {},
     r"the label 'r' in test row 2, which no training row has"),
    (pd.DataFrame({"a": [np.nan, 2.0], "label": ["p", None]}), {},
     "has no training row with a label and complete features"),
])
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
    code = main(["run", "--dataset", str(tmp_path / "plants.csv"), "--label-column", "species", "--epochs", "3",
                 "--batch-size", "16", "--max-outer-loop", "1", "--max-inner-loop", "2", "--quiet", "--out", str(out)])
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
    from memomentum.api import default_run_dir
    from memomentum.config import RunConfig
    assert default_run_dir(RunConfig(dataset=str(tmp_path / "plants.csv"))).name.startswith("plants-none-")


def test_cli_refuses_a_missing_label_column_with_exit_2(tmp_path, capsys):
    species_frame(n=20).to_csv(tmp_path / "plants.csv", index=False)
    assert main(["run", "--dataset", str(tmp_path / "plants.csv"), "--quiet", "--out", str(tmp_path / "run")]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"memomentum: error: {tmp_path / 'plants.csv'} has no column 'label' (columns: petal, sepal, count, site, "
        f"unused, seen, species); name the label column with --label-column")
    assert not (tmp_path / "run").exists()
    with pytest.raises(InputError, match="label-column must be the name of a column"):
        from memomentum.config import RunConfig
        RunConfig(dataset="t.csv", label_column=" ").validate()


def test_tables_benchmark_runs_and_prints_its_json(capsys):
    pytest.importorskip("sklearn")
    spec = importlib.util.spec_from_file_location("tables_digits", ROOT / "benchmarks" / "tables_digits.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)  # in this process: no second start of Python and torch
    bench.main(["--limit", "200", "--hgb-max-iter", "3", "--epochs", "1", "--max-outer-loop", "1",
                "--max-inner-loop", "2"])
    out = json.loads(capsys.readouterr().out)
    assert out["data"]["n_train"] == 200 and out["data"]["feature_columns"] == 64
    assert 20 < out["data"]["realised_noise_rate"] < 60  # instance noise 0.4 on the training rows
    for model in ("hgb", "mlp"):
        assert 0 <= out[model]["memomentum_test_accuracy"] <= 100
        assert 0 <= out[model]["noisy_fit_test_accuracy"] <= 100
        assert 0 < out[model]["memomentum_confident"]["n_confident"] <= 200

"""memomentum grid and memomentum table: the cells of a grid, run side by side, resumed,
paused and tabulated (the embedded digits, tiny schedules)."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import SCHEDULE_2_EPOCHS, checkout_env, flags, run_in_child, start_in_child

from memomentum.cli import main
from memomentum.entrypoints.grid import expand

TINY = flags(**SCHEDULE_2_EPOCHS)
GRID = ["--noise-type", "instance,symmetric", "--method", "memomentum,ce", "--seed", "1,2", *TINY]


def test_cells_are_the_product_named_by_what_varies():
    cells = expand(
        [
            ("--seed", ["1", "2"]),
            ("--method", ["memomentum", "ce"]),
            ("--epochs", ["3"]),
            ("--dataset", ["data/my table.csv"]),
        ]
    )
    assert [c.name for c in cells] == [
        "seed-1_method-memomentum",
        "seed-1_method-ce",
        "seed-2_method-memomentum",
        "seed-2_method-ce",
    ]
    assert cells[1].argv() == ["--seed", "1", "--method", "ce", "--epochs", "3", "--dataset", "data/my table.csv"]
    assert expand([("--epochs", ["3"])])[0].name == "run"


def test_a_grid_of_eight_cells_runs_two_at_a_time_then_trains_nothing_again(tmp_path, capsys):
    out = tmp_path / "grid"
    assert main(["grid", *GRID, "--out", str(out), "--print-commands"]) == 0
    commands = capsys.readouterr().out.strip().splitlines()
    assert len(commands) == 8 and all(c.startswith("memomentum run ") and f"--out {out}/" in c for c in commands)
    assert not out.exists()  # printing runs nothing

    first = run_in_child("grid", *GRID, "--out", str(out), "--jobs", "2")
    assert first.returncode == 0, first.stderr[-3000:]
    cells = sorted(p for p in out.iterdir() if p.is_dir() and not p.name.startswith("."))
    assert len(cells) == 8 and all((c / "summary.json").is_file() for c in cells)
    assert "2 at a time" in first.stderr and "8/8 done" in first.stderr
    summaries = {c.name: json.loads((c / "summary.json").read_text()) for c in cells}
    assert {s["threads"] for s in summaries.values()} == {max(1, (os.cpu_count() or 1) // 2)}

    stamps = {c.name: (c / "summary.json").stat().st_mtime_ns for c in cells}
    again = run_in_child("grid", *GRID, "--out", str(out), "--jobs", "2")
    assert again.returncode == 0 and "8 cells had finished before: not trained again" in again.stderr
    assert "started" not in again.stderr
    assert stamps == {c.name: (c / "summary.json").stat().st_mtime_ns for c in cells}

    table = json.loads((out / "table.json").read_text())
    assert len(table["rows"]) == 2 and table["unfinished"] == []  # instance and symmetric
    for row in table["rows"]:
        noise = row["setting"]["noise_type"]
        for method in ("memomentum", "ce"):
            accs = [summaries[f"noise-type-{noise}_seed-{s}_method-{method}"]["test_accuracy"] for s in (1, 2)]
            stats = row["methods"][method]["test_accuracy"]
            assert stats["n"] == 2 and abs(stats["mean"] - np.mean(accs)) < 0.0051  # rounded to 2 places
            assert abs(stats["std"] - np.std(accs, ddof=1)) < 0.0051
        assert row["paired"]["seeds"] == [1, 2]
    assert "±" in (out / "table.md").read_text() and "±" in again.stdout
    assert (out / "table.csv").read_text().startswith("batch_size,")


def test_a_failing_cell_is_named_with_its_reason_and_the_others_go_on(tmp_path):
    out = tmp_path / "grid"
    result = run_in_child(
        "grid", "--dataset", f"digits,{tmp_path / 'missing.npz'}", *TINY, "--out", str(out), "--jobs", "2"
    )
    assert result.returncode == 1
    failed = [line for line in result.stderr.splitlines() if line.startswith("grid: cell ")]
    assert len(failed) == 1 and "dataset-missing.npz failed:" in failed[0] and "missing.npz" in failed[0]
    assert (out / "dataset-digits" / "summary.json").is_file()


def test_bad_values_are_refused_for_their_cell_before_anything_runs(tmp_path, capsys):
    assert main(["grid", "--noise-rate", "0.2,1.5", *TINY, "--out", str(tmp_path / "g")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["memomentum: error: cell noise-rate-1.5: noise rate 1.5 is outside [0, 1)"]
    assert not (tmp_path / "g").exists()
    assert main(["grid", "--seed", "1,,2", "--out", str(tmp_path / "g")]) == 2
    assert "has an empty item" in capsys.readouterr().err


@pytest.mark.parametrize("below", [False, True])
def test_grid_out_that_is_a_file_or_below_one_is_refused_before_anything_runs(tmp_path, capsys, below):
    existing = tmp_path / "results.csv"
    existing.write_text("keep me\n")
    out = existing / "grid" if below else existing
    assert main(["grid", "--seed", "1,2", *TINY, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"memomentum: error: --out {out}: {existing} is a file{', not a folder' if below else ''}; the "
        f"grid's folder holds one run directory per cell: give the path of a folder"
    ]
    assert existing.read_text() == "keep me\n" and sorted(p.name for p in tmp_path.iterdir()) == ["results.csv"]


def test_grid_out_that_is_a_run_directory_is_refused(tmp_path, capsys):
    run = _fake_run(tmp_path / "run", method="ce", seed=1, accuracy=80.0)
    before = sorted(p.name for p in run.iterdir())
    assert main(["grid", "--seed", "1,2", *TINY, "--out", str(run)]) == 2
    assert capsys.readouterr().err.strip() == (
        f"memomentum: error: --out {run} is a run directory (it holds "
        f"config.json): the grid's folder holds one run directory per cell, "
        f"so give a folder of its own"
    )
    assert sorted(p.name for p in run.iterdir()) == before


def test_the_grids_python_api_refuses_a_run_directory_and_cells_of_one_directory_before_anything_runs(tmp_path):
    from memomentum.base.errors import InputError
    from memomentum.entrypoints.grid import Cell, run_cells
    from memomentum.entrypoints.slurm import submit_cells

    run = _fake_run(tmp_path / "run", method="ce", seed=1, accuracy=80.0)
    cells = expand([("--seed", ["1", "2"])])
    twins = [Cell("seed-1", (("--seed", "1"),)), Cell("seed-1", (("--seed", "01"),))]

    def executor(folder):
        raise AssertionError("nothing is submitted")

    for launch in (
        lambda grid_dir, cells: run_cells(cells, grid_dir, jobs=1, threads=1),
        lambda grid_dir, cells: submit_cells(
            cells, grid_dir, parameters={}, threads=1, folder=tmp_path / "slurm", executor_factory=executor
        ),
    ):
        with pytest.raises(InputError, match="is a run directory"):
            launch(run, cells)
        with pytest.raises(InputError, match="would share the run directory seed-1"):
            launch(tmp_path / "g", twins)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


@pytest.mark.parametrize(
    "given, message",
    [
        (["--seed", "1,1"], "--seed '1,1' lists 1 twice; give each value once"),
        (
            ["--seed", "1,01"],
            "cells seed-1 and seed-01 are the same run: --seed '1' and '01' mean the same; give each value once",
        ),
        (
            ["--noise-rate", "0.2,0.20"],
            "cells noise-rate-0.2 and noise-rate-0.20 are the same run: --noise-rate '0.2' "
            "and '0.20' mean the same; give each value once",
        ),
        (
            ["--dataset", "data.csv,./data.csv"],
            "cells dataset-data.csv and dataset-.-data.csv are the same run: --dataset "
            "'data.csv' and './data.csv' mean the same; give each value once",
        ),
    ],
)
def test_grid_refuses_repeated_values_before_any_training(tmp_path, monkeypatch, capsys, given, message):
    monkeypatch.chdir(tmp_path)
    _feature_csv(tmp_path / "data.csv", 0)
    assert main(["grid", *given, *TINY, "--out", "grid"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [f"memomentum: error: {message}"]
    assert not (tmp_path / "grid").exists()


def test_two_files_of_one_name_get_cells_of_their_own(tmp_path, monkeypatch, capsys):
    cells = expand([("--dataset", ["a/data.csv", "b/data.csv", "c.csv"]), ("--seed", ["1", "2"])])
    assert [c.name for c in cells] == [
        "dataset-a-data.csv_seed-1",
        "dataset-a-data.csv_seed-2",
        "dataset-b-data.csv_seed-1",
        "dataset-b-data.csv_seed-2",
        "dataset-c.csv_seed-1",
        "dataset-c.csv_seed-2",
    ]
    monkeypatch.chdir(tmp_path)
    for folder in ("a-b", "a/b"):  # whole paths of one name: refused, never one run directory for two
        _feature_csv(tmp_path / folder / "data.csv", int(folder == "a/b"))
    assert main(["grid", "--dataset", "a-b/data.csv,a/b/data.csv", "--out", "g"]) == 2
    assert capsys.readouterr().err.strip() == (
        "memomentum: error: cells of --dataset 'a-b/data.csv' and "
        "'a/b/data.csv' would share the run directory dataset-data.csv; "
        "give values whose names differ"
    )
    assert not (tmp_path / "g").exists()


def test_the_grid_names_no_thread_count_when_it_trains_no_cell(tmp_path, capsys):
    """Cells that finished before ran with the count they ran with, not the one this call would give."""
    out = tmp_path / "grid"
    for seed in (1, 2):
        _fake_run(out / f"seed-{seed}", method="memomentum", seed=seed, accuracy=80.0 + seed)
    assert main(["grid", "--seed", "1,2", *TINY, "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert f"grid: 2 cells in {out}, every one finished before: nothing to train" in err
    assert "CPU thread" not in err and "started" not in err


def test_grid_out_empty_or_impossible_is_refused_in_one_sentence(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["grid", "--seed", "1", *TINY, "--out", ""]) == 2  # was: the cells in the current folder
    assert capsys.readouterr().err.strip() == (
        "memomentum: error: --out '' names no folder; give the grid's folder (default runs/grid)"
    )
    assert list(tmp_path.iterdir()) == []
    assert main(["grid", "--seed", "1", *TINY, "--out", "/proc/no-such-folder/grid"]) == 2  # was: a traceback
    assert capsys.readouterr().err.strip() == (
        "memomentum: error: cannot create the grid's folder /proc/no-such-folder/grid: No such file or directory"
    )


def test_sigterm_pauses_every_running_cell_and_the_same_command_finishes_them(tmp_path):
    """Two cells running and a third waiting when SIGTERM comes: the grid pauses the two, starts
    no other and ends at once; the same command again finishes all three."""
    out = tmp_path / "grid"
    longer = [
        "--seed",
        "1,2,3",
        "--epochs",
        "30",
        "--max-outer-loop",
        "1",
        "--max-inner-loop",
        "3",
        "--batch-size",
        "16",
    ]
    proc = start_in_child("grid", *longer, "--out", str(out), "--jobs", "2")
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not all((out / f"seed-{s}" / "checkpoint.pt").exists() for s in (1, 2)):
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 143, err[-3000:]
    assert "paused; 3 cells left" in err and "run the same command again to go on" in err
    assert all((out / f"seed-{s}" / "checkpoint.pt").is_file() for s in (1, 2))
    assert not (out / "seed-3").exists()  # never started
    assert not any((out / f"seed-{s}" / "summary.json").exists() for s in (1, 2))
    resumed = run_in_child("grid", *longer, "--out", str(out), "--jobs", "2")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert all((out / f"seed-{s}" / "summary.json").is_file() for s in (1, 2, 3))
    for s in (1, 2):  # each cell paused at a checkpoint (told once), then went on from it
        log = (out / ".logs" / f"seed-{s}.log").read_text()
        assert "interrupted by SIGTERM; checkpoint saved" in log and "memomentum: stopped" not in log


def test_table_of_a_folder_without_runs_says_so(tmp_path, capsys):
    assert main(["table", str(tmp_path)]) == 2
    assert "holds no run directories" in capsys.readouterr().err


# -- table.html (run directories written by hand: config.json + summary.json, no training) ----
def _fake_run(directory: Path, *, method: str, seed: int, accuracy: float | None, **setting) -> Path:
    """A run directory as `memomentum table` reads it; accuracy None: unfinished (no summary.json)."""
    directory.mkdir(parents=True)
    config = {
        "dataset": "digits",
        "noise_type": "instance",
        "noise_rate": 0.2,
        "epochs": 2,
        **setting,
        "method": method,
        "seed": seed,
    }
    (directory / "config.json").write_text(json.dumps(config))
    if accuracy is not None:
        summary = {
            "test_accuracy": accuracy,
            "epochs_run": 6,
            "wall_time_s": 1.25,
            "threads": 1,
            "final_confident": {"label_precision": 97.5 if method == "memomentum" else 95.0, "label_recall": 80.0},
        }
        (directory / "summary.json").write_text(json.dumps(summary))
    return directory


@pytest.fixture
def hand_grid(tmp_path) -> Path:
    """Two settings (one with '<' in a value) x Me-Momentum and CE x seeds 1, 2, and an unfinished run."""
    out = tmp_path / "grid"
    accs = {
        ("instance", "memomentum"): (90.0, 92.0),
        ("instance", "ce"): (85.0, 88.0),
        ("<b>sym", "memomentum"): (70.0, 71.0),
        ("<b>sym", "ce"): (60.0, 66.0),
    }
    for (noise, method), values in accs.items():
        for seed, acc in zip((1, 2), values):
            _fake_run(
                out / f"{noise}-{method}-{seed}".replace("<b>", "x"),
                method=method,
                seed=seed,
                accuracy=acc,
                noise_type=noise,
            )
    _fake_run(out / "instance-memomentum-<3>", method="memomentum", seed=3, accuracy=None)
    return out


def test_table_html_shows_every_setting_and_mean_std_as_the_markdown_does(hand_grid):
    from memomentum.entrypoints.table import write_tables

    markdown = write_tables(hand_grid)
    page = (hand_grid / "table.html").read_text(encoding="utf-8")
    expected = [
        "91.00 ± 1.41 (n=2)",
        "86.50 ± 2.12 (n=2)",  # test accuracy
        "70.50 ± 0.71 (n=2)",
        "63.00 ± 4.24 (n=2)",
        "4.50 ± 0.71 (n=2)",
        "7.50 ± 3.54 (n=2)",  # Me-Momentum - CE, paired by seed
        "97.50 ± 0.00 (n=2) / 80.00 ± 0.00 (n=2)",
        "95.00 ± 0.00 (n=2) / 80.00 ± 0.00 (n=2)",
    ]
    for text in expected:
        assert text in markdown and text in page, text
    assert "grid" in page.split("<h1>")[1].split("</h1>")[0]  # the title names the grid directory
    assert '<td class="t">instance</td>' in page and "&lt;b&gt;sym" in page
    assert "<b>sym" not in page and "<3>" not in page  # what comes from run directories is escaped
    assert "Me-Momentum" in page and "CE" in page and "Me-Momentum − CE" in page
    assert "http://" not in page and "https://" not in page and "<script" not in page  # self-contained
    from memomentum.entrypoints.report import CSS

    assert CSS in page


def test_table_html_lists_the_unfinished_run_and_never_averages_it(hand_grid):
    from memomentum.entrypoints.table import write_tables

    write_tables(hand_grid)
    page = (hand_grid / "table.html").read_text(encoding="utf-8")
    table, unfinished = page.split('<section id="unfinished">')
    assert "instance-memomentum-&lt;3&gt;" in unfinished and "not finished (no summary.json)" in unfinished
    assert "instance-memomentum-&lt;3&gt;" not in table and "(n=3)" not in page


def test_table_html_embeds_the_accuracy_chart_as_png(hand_grid):
    import base64

    pytest.importorskip("matplotlib")
    from memomentum.entrypoints.table import write_tables

    write_tables(hand_grid)
    page = (hand_grid / "table.html").read_text(encoding="utf-8")
    chart = page.split('<section id="chart">')[1]
    assert "data:image/png;base64," in chart and "needs matplotlib" not in page
    png = base64.b64decode(chart.split("data:image/png;base64,")[1].split('"')[0])
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 5000


def test_without_matplotlib_the_table_page_says_the_chart_needs_it(hand_grid, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    from memomentum.entrypoints.table import write_tables

    markdown = write_tables(hand_grid)
    page = (hand_grid / "table.html").read_text(encoding="utf-8")
    assert "data:image/png" not in page and "91.00 ± 1.41 (n=2)" in page
    assert [line for line in page.splitlines() if "needs matplotlib" in line] and "memomentum[plots]" in page
    assert all((hand_grid / name).is_file() for name in ("table.md", "table.csv", "table.json"))
    assert "91.00 ± 1.41 (n=2)" in markdown


def test_runs_without_a_test_set_are_tabulated_with_a_dash_never_a_traceback(tmp_path):
    """A user's data without a test split: no test accuracy (None), no known true labels;
    the table shows "-", JSON says null (strict JSON: no NaN), CSV leaves the cell empty, and
    there is no paired difference to take."""
    pytest.importorskip("matplotlib")
    from memomentum.entrypoints.table import write_tables

    out = tmp_path / "grid"
    for method in ("memomentum", "ce"):
        for seed in (1, 2):
            d = _fake_run(out / f"{method}-{seed}", method=method, seed=seed, accuracy=50.0)
            (d / "summary.json").write_text(
                json.dumps({"test_accuracy": None, "epochs_run": 4, "wall_time_s": 2.0, "final_confident": {"n": 10}})
            )
    markdown = write_tables(out)
    assert "| memomentum | - | - / - | 4, 4 | 2.0, 2.0 |" in markdown and "paired" not in markdown
    table = json.loads((out / "table.json").read_text(), parse_constant=lambda c: pytest.fail(f"{c} in JSON"))
    assert table["rows"][0]["methods"]["ce"]["test_accuracy"] == {"mean": None, "std": None, "n": 0}
    assert ",ce,1 2,,,0,,," in (out / "table.csv").read_text()
    assert "data:image/png;base64," in (out / "table.html").read_text(encoding="utf-8")


def _feature_csv(path: Path, seed: int) -> Path:
    """A small table of features (150 rows, a fifth of them a test set), its labels a rule of the features."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(150, 4))
    y = (x[:, 0] > 0).astype(int) + (x[:, 1 + seed % 2] > 0).astype(int)
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [",".join(f"{v:.4f}" for v in x[i]) + f",{y[i]},{'test' if i % 5 == 0 else 'train'}" for i in range(150)]
    path.write_text("\n".join(["f1,f2,f3,f4,label,split", *rows]) + "\n")
    return path


def test_table_groups_runs_by_the_data_they_read_not_the_path_as_typed(tmp_path, monkeypatch, capsys):
    """data.csv and ./data.csv in one folder are one setting; another folder's data.csv, typed the
    same, is another (it was averaged with the first before)."""
    _feature_csv(tmp_path / "a" / "data.csv", 0)
    _feature_csv(tmp_path / "b" / "data.csv", 1)
    grid_dir = tmp_path / "runs"
    small = [*TINY, "--batch-size", "16", "--quiet"]
    for folder, typed, seed, name in (
        ("a", "data.csv", 1, "a-1"),
        ("a", "./data.csv", 2, "a-2"),
        ("b", "data.csv", 1, "b-1"),
    ):
        monkeypatch.chdir(tmp_path / folder)
        assert main(["run", "--dataset", typed, "--seed", str(seed), "--out", str(grid_dir / name), *small]) == 0
    summary = json.loads((grid_dir / "a-2" / "summary.json").read_text())
    assert (
        summary["data_paths"] == {"dataset": str(tmp_path / "a" / "data.csv")}
        and summary["data_fingerprint"]["n_test"] == 30
    )
    capsys.readouterr()
    assert main(["table", str(grid_dir)]) == 0
    rows = json.loads((grid_dir / "table.json").read_text())["rows"]
    by_data = {row["setting"]["dataset"]: row["methods"]["memomentum"]["seeds"] for row in rows}
    assert by_data == {str(tmp_path / "a" / "data.csv"): [1, 2], str(tmp_path / "b" / "data.csv"): [1]}
    assert len({row["setting"]["data"] for row in rows}) == 2  # the digests of the two files' fingerprints


def test_table_without_recorded_data_groups_by_the_path_as_typed(tmp_path):
    """Runs made before summaries recorded their data: the typed path is all there is."""
    from memomentum.entrypoints.table import find_runs, make_rows

    for seed in (1, 2):
        _fake_run(tmp_path / f"old-{seed}", method="ce", seed=seed, accuracy=50.0 + seed, dataset="data.csv")
    rows = make_rows(find_runs(tmp_path))
    assert len(rows) == 1 and rows[0].setting["dataset"] == "data.csv" and "data" not in rows[0].setting


def test_runs_from_before_the_data_record_join_the_one_data_of_their_setting(tmp_path):
    """A grid finished after an upgrade: its old seeds (no data in summary.json) and its new ones
    are one row where the new ones read one data; beside two data they are a row of their own."""
    from memomentum.entrypoints.table import find_runs, make_rows

    def recorded(directory: Path, seed: int, features: str) -> None:
        run = _fake_run(directory, method="ce", seed=seed, accuracy=60.0 + seed)
        summary = json.loads((run / "summary.json").read_text())
        summary["data_fingerprint"] = {"n_train": 100, "labels": "ab", "features": features}
        (run / "summary.json").write_text(json.dumps(summary))

    _fake_run(tmp_path / "old-1", method="ce", seed=1, accuracy=61.0)
    recorded(tmp_path / "new-2", 2, "f1")
    rows = make_rows(find_runs(tmp_path))
    assert len(rows) == 1 and rows[0].methods["ce"]["seeds"] == [1, 2] and len(rows[0].setting["data"]) == 12
    recorded(tmp_path / "other-3", 3, "f2")  # other features: other data
    rows = make_rows(find_runs(tmp_path))
    assert sorted(r.methods["ce"]["seeds"] for r in rows) == [[1], [2], [3]]
    assert [r.setting.get("data") is None for r in rows].count(True) == 1  # the old run: its data unknown


def test_table_refuses_two_runs_of_one_seed_naming_both_directories(tmp_path, capsys):
    first = _fake_run(tmp_path / "grid-a" / "seed-1", method="memomentum", seed=1, accuracy=84.17)
    second = _fake_run(tmp_path / "grid-b" / "seed-1", method="memomentum", seed=1, accuracy=50.0)
    assert main(["table", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"memomentum: error: {first} and {second} are both seed 1 of memomentum with the same settings "
        f"and data; the table takes one run per seed: move one of them out of the folder, or into a "
        f"folder whose name starts with '.'"
    ]
    assert not (tmp_path / "table.md").exists()
    second.rename(tmp_path / "grid-b" / ".seed-1")  # set aside: the table takes the other one
    assert main(["table", str(tmp_path)]) == 0 and "84.17 (n=1)" in capsys.readouterr().out


@pytest.mark.parametrize(
    "file, content, message",
    [
        ("summary.json", [1, 2], "is not a run's summary: it holds a JSON list, not an object"),
        (
            "summary.json",
            {"test_accuracy": "84.2", "epochs_run": 6, "wall_time_s": 1.0},
            "is not a run's summary: its test_accuracy is '84.2', not a number or null",
        ),
        ("summary.json", {"epochs_run": 6, "wall_time_s": 1.0}, "is not a run's summary: it has no test_accuracy"),
        (
            "summary.json",
            {"test_accuracy": 80.0, "epochs_run": 6, "wall_time_s": 1.0, "final_confident": {"label_precision": [90]}},
            "is not a run's summary: its label_precision is [90], not a number or null",
        ),
        (
            "summary.json",
            {"test_accuracy": float("nan"), "epochs_run": 6, "wall_time_s": 1.0},
            "is not a run's summary: its test_accuracy is nan, not a number or null",
        ),
        ("config.json", "digits", "is not a run's configuration: it holds a JSON string, not an object"),
        (
            "config.json",
            {"method": "ce", "seed": "1"},
            "is not a run's configuration: its seed is '1', not a whole number",
        ),
        ("config.json", {"seed": 1}, "is not a run's configuration: its method is missing, not a method's name"),
    ],
)
def test_table_refuses_a_run_file_of_another_shape_naming_it(tmp_path, capsys, file, content, message):
    good = _fake_run(tmp_path / "good", method="ce", seed=1, accuracy=80.0)
    bad = _fake_run(tmp_path / "bad", method="ce", seed=2, accuracy=80.0)
    (bad / file).write_text(json.dumps(content))
    assert main(["table", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"memomentum: error: {bad / file} {message}"]
    assert (good / "summary.json").is_file() and not (tmp_path / "table.md").exists()


def test_table_md_shows_a_dash_for_a_setting_a_run_does_not_have(tmp_path):
    from memomentum.entrypoints.table import write_tables

    _fake_run(tmp_path / "with", method="ce", seed=1, accuracy=80.0, transition_path="/data/T.csv")
    _fake_run(tmp_path / "without", method="ce", seed=1, accuracy=70.0)
    markdown = write_tables(tmp_path)
    assert "None" not in markdown and "| - | ce | 70.00 (n=1) |" in markdown
    assert "None" not in (tmp_path / "table.html").read_text(encoding="utf-8")


def test_table_csv_holds_the_precision_and_recall_std_and_n_the_markdown_shows(hand_grid):
    import csv

    from memomentum.entrypoints.table import write_tables

    markdown = write_tables(hand_grid)
    rows = list(csv.DictReader((hand_grid / "table.csv").open(encoding="utf-8")))
    mm = next(r for r in rows if r["method"] == "memomentum" and r["noise_type"] == "instance")
    assert (mm["label_precision_mean"], mm["label_precision_std"], mm["label_precision_n"]) == ("97.5", "0.0", "2")
    assert (mm["label_recall_mean"], mm["label_recall_std"], mm["label_recall_n"]) == ("80.0", "0.0", "2")
    assert "97.50 ± 0.00 (n=2) / 80.00 ± 0.00 (n=2)" in markdown


def test_table_of_a_file_says_it_is_a_file(tmp_path, capsys):
    (tmp_path / "table.md").write_text("| old |\n")
    assert main(["table", str(tmp_path / "table.md")]) == 2
    assert capsys.readouterr().err.strip() == (
        f"memomentum: error: {tmp_path / 'table.md'} is a file, not a folder of run directories"
    )


def test_table_that_cannot_be_written_is_one_sentence_never_a_traceback(hand_grid, capsys):
    (hand_grid / "table.csv").mkdir()  # in the way of the file
    assert main(["table", str(hand_grid)]) == 2
    assert (
        capsys.readouterr().err.strip() == f"memomentum: error: cannot write {hand_grid / 'table.csv'}: it is a folder"
    )


def test_table_notes_a_finished_run_without_its_config(tmp_path, capsys):
    kept = _fake_run(tmp_path / "kept", method="ce", seed=1, accuracy=80.0)
    lone = _fake_run(tmp_path / "copied", method="ce", seed=2, accuracy=70.0)
    (lone / "config.json").unlink()
    assert main(["table", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    assert (
        f"memomentum: note: left out 1 folder with a summary.json but no config.json (the table reads a run's "
        f"settings from it): {lone}"
    ) in captured.err
    assert "80.00 (n=1)" in captured.out and (kept / "summary.json").is_file()


def test_table_of_an_empty_summary_says_it_is_empty(tmp_path, capsys):
    run = _fake_run(tmp_path / "cut", method="ce", seed=1, accuracy=80.0)
    (run / "summary.json").write_text("")  # a write that was interrupted
    assert main(["table", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip() == (
        f"memomentum: error: {run / 'summary.json'} is empty (a write that was "
        f"interrupted?): run that run again, or move its folder out of the way"
    )


def test_table_md_keeps_one_cell_for_a_path_with_a_bar_or_a_line_break(tmp_path):
    from memomentum.entrypoints.table import write_tables

    _fake_run(tmp_path / "bar", method="ce", seed=1, accuracy=80.0, dataset="/data/a|b.csv")
    _fake_run(tmp_path / "newline", method="ce", seed=1, accuracy=70.0, dataset="/data/c\nd.csv")
    lines = write_tables(tmp_path).splitlines()
    assert lines[2].startswith("| /data/a\\|b.csv | ce | 80.00 (n=1) |")
    assert lines[3].startswith("| /data/c d.csv | ce | 70.00 (n=1) |")
    assert all(line.replace("\\|", "").count("|") == 7 for line in lines[:4])  # 6 cells each, as the header


def test_the_table_module_does_not_import_torch():
    code = "import sys, memomentum.entrypoints.table; print('torch' in sys.modules)"
    env = checkout_env()
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "False", result.stderr[-2000:]


# -- GPUs: --gpus LIST --cells-per-gpu K (no GPU needed: the GPU count is faked) ----------
def test_gpu_slots_hold_k_cells_per_gpu_never_two_in_one_slot_and_take_them_back():
    from memomentum.entrypoints.grid import GpuSlots

    slots = GpuSlots([2, 5], per_gpu=2)
    assert slots.size == 4 and slots.describe() == "2 GPUs x 2 cells (GPUs 2,5)"
    taken = [slots.take() for _ in range(4)]
    assert taken == [2, 5, 2, 5]  # spread: the GPU with most free slots first
    assert slots.take() is None  # every slot taken: a fifth cell waits
    slots.give(5)
    assert slots.take() == 5 and slots.take() is None
    for gpu in taken:
        slots.give(gpu)
    assert slots.free == {2: 2, 5: 2}
    with pytest.raises(ValueError, match="GPU 2 has no slot taken to give back"):
        slots.give(2)  # a slot never taken cannot be given back
    one = GpuSlots([0])
    assert [one.take(), one.take()] == [0, None] and one.describe() == "1 GPU x 1 cell (GPU 0)"


def test_a_cell_sees_only_its_gpu_named_as_this_process_sees_it(monkeypatch):
    from memomentum.entrypoints.grid import gpu_environment

    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert gpu_environment(1)["CUDA_VISIBLE_DEVICES"] == "1"
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,6")
    assert gpu_environment(1)["CUDA_VISIBLE_DEVICES"] == "6"


def test_cells_spread_over_gpus_each_process_seeing_its_own_gpu(tmp_path, monkeypatch, capsys):
    import memomentum.entrypoints.grid as grid

    monkeypatch.setattr(grid, "gpu_count", lambda: 2)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setenv("PYTHONPATH", checkout_env()["PYTHONPATH"])
    real_popen, launched = subprocess.Popen, []  # (cell, its GPU, the GPUs of the cells still running)

    def recording_popen(argv, **kw):
        busy = [gpu for _, gpu, proc in launched if proc.poll() is None]
        proc = real_popen(argv, **kw)
        launched.append((argv[argv.index("--out") + 1], kw["env"]["CUDA_VISIBLE_DEVICES"], proc))
        assert kw["env"]["CUDA_VISIBLE_DEVICES"] not in busy, (launched, busy)  # a slot is never shared
        return proc

    monkeypatch.setattr(grid.subprocess, "Popen", recording_popen)
    out = tmp_path / "grid"
    args = [
        "grid",
        "--seed",
        "1,2,3,4",
        "--epochs",
        "1",
        "--max-outer-loop",
        "1",
        "--max-inner-loop",
        "1",
        "--threads",
        "1",
        "--device",
        "cpu",
        "--out",
        str(out),
        "--gpus",
        "0,1",
        "--cells-per-gpu",
        "1",
        "--jobs",
        "4",
    ]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "4 cells in" in err and "2 at a time, 2 GPUs x 1 cell (GPUs 0,1)" in err
    assert [Path(cell).name for cell, _, _ in launched] == ["seed-1", "seed-2", "seed-3", "seed-4"]
    assert [gpu for _, gpu, _ in launched][:2] == ["0", "1"] and {gpu for _, gpu, _ in launched} == {"0", "1"}
    assert "seed-1: started on GPU 0" in err and "seed-2: started on GPU 1" in err
    assert all((out / f"seed-{s}" / "summary.json").is_file() for s in (1, 2, 3, 4))


@pytest.mark.parametrize(
    "extra, count, message",
    [
        (["--gpus", "0,x"], 2, "--gpus '0,x': 'x' is not a GPU index"),
        (["--gpus", "0,3"], 2, "--gpus '0,3': GPU 3 is not present (torch sees 2 GPUs: 0 to 1)"),
        (["--gpus", "0"], 0, "--gpus '0': GPU 0 is not present (torch sees 0 GPUs)"),
        (["--gpus", "auto"], 0, "--gpus auto found no GPU"),
        (["--gpus", "0", "--cells-per-gpu", "0"], 1, "--cells-per-gpu 0: expected a whole number of at least 1"),
        (["--cells-per-gpu", "2"], 1, "--cells-per-gpu 2 needs --gpus LIST"),
    ],
    ids=["not-a-number", "not-present", "no-gpu", "auto-without-gpus", "zero-per-gpu", "per-gpu-without-gpus"],
)
def test_bad_gpu_placements_are_refused_before_anything_runs(tmp_path, monkeypatch, capsys, extra, count, message):
    import memomentum.entrypoints.grid as grid

    monkeypatch.setattr(grid, "gpu_count", lambda: count)
    assert main(["grid", "--seed", "1,2", "--out", str(tmp_path / "g"), *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"memomentum: error: {message}"), err
    assert not (tmp_path / "g").exists()


def test_core_blocks_split_the_cores_and_never_hand_one_out_twice(monkeypatch):
    import memomentum.entrypoints.grid as grid

    blocks = grid.CoreBlocks([5, 4, 3, 2, 1, 0], threads=2, jobs=3)
    taken = [blocks.take() for _ in range(3)]
    assert taken == [(0, 1), (2, 3), (4, 5)] and blocks.take() is None
    blocks.give((2, 3))
    assert blocks.take() == (2, 3)
    with pytest.raises(ValueError, match="2 blocks of 2 cores do not fit in 3 cores"):
        grid.CoreBlocks([0, 1, 2], threads=2, jobs=2)
    monkeypatch.setattr(grid.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    assert grid.core_blocks(2, 2).free == [(0, 1), (2, 3)]
    assert grid.core_blocks(1, 4) is None  # one thread a cell: nothing to bind
    assert grid.core_blocks(None, 2) is None  # the grid's --threads: each cell chooses
    assert grid.core_blocks(3, 2) is None  # 6 threads on 4 cores: no blocks


def test_cells_of_several_threads_run_on_blocks_of_cores_of_their_own(tmp_path, monkeypatch, capsys):
    import memomentum.entrypoints.grid as grid

    monkeypatch.setattr(grid.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})  # 4 cores: 2 cells of 2 threads
    monkeypatch.setenv("PYTHONPATH", checkout_env()["PYTHONPATH"])
    real_popen, confined = subprocess.Popen, []

    def recording_popen(argv, **kw):  # the cores are made up: the cells run unconfined here
        confined.append((argv[argv.index("--threads") + 1], kw.pop("preexec_fn") is not None))
        return real_popen(argv, **kw)

    monkeypatch.setattr(grid.subprocess, "Popen", recording_popen)
    out = tmp_path / "grid"
    args = [
        "grid",
        "--seed",
        "1,2,3",
        "--epochs",
        "1",
        "--max-outer-loop",
        "1",
        "--max-inner-loop",
        "1",
        "--device",
        "cpu",
        "--jobs",
        "2",
        "--out",
        str(out),
    ]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "2 at a time, 2 CPU threads each" in err
    assert confined == [("2", True)] * 3
    assert "seed-1: started on cores 0-1" in err and "seed-2: started on cores 2-3" in err
    third = [line for line in err.splitlines() if "seed-3: started" in line]
    assert len(third) == 1 and ("on cores 0-1" in third[0] or "on cores 2-3" in third[0])  # a block given back
    assert all((out / f"seed-{s}" / "summary.json").is_file() for s in (1, 2, 3))

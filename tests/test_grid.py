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

from memomentum.cli import main
from memomentum.grid import expand

REPO = Path(__file__).resolve().parents[1]
TINY = ["--epochs", "2", "--max-outer-loop", "1", "--max-inner-loop", "2"]
GRID = ["--noise-type", "instance,symmetric", "--method", "memomentum,ce", "--seed", "1,2", *TINY]


def grid_cli(*args, **kw) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    return subprocess.run([sys.executable, "-m", "memomentum", "grid", *args], env=env, capture_output=True,
                          text=True, timeout=600, **kw)


def test_cells_are_the_product_named_by_what_varies():
    cells = expand([("--seed", ["1", "2"]), ("--method", ["memomentum", "ce"]), ("--epochs", ["3"]),
                    ("--dataset", ["data/my table.csv"])])
    assert [c.name for c in cells] == ["seed-1_method-memomentum", "seed-1_method-ce", "seed-2_method-memomentum",
                                       "seed-2_method-ce"]
    assert cells[1].argv() == ["--seed", "1", "--method", "ce", "--epochs", "3", "--dataset", "data/my table.csv"]
    assert expand([("--epochs", ["3"])])[0].name == "run"


def test_a_grid_of_eight_cells_runs_two_at_a_time_then_trains_nothing_again(tmp_path, capsys):
    out = tmp_path / "grid"
    assert main(["grid", *GRID, "--out", str(out), "--print-commands"]) == 0
    commands = capsys.readouterr().out.strip().splitlines()
    assert len(commands) == 8 and all(c.startswith("memomentum run ") and f"--out {out}/" in c for c in commands)
    assert not out.exists()  # printing runs nothing

    first = grid_cli(*GRID, "--out", str(out), "--jobs", "2")
    assert first.returncode == 0, first.stderr[-3000:]
    cells = sorted(p for p in out.iterdir() if p.is_dir() and not p.name.startswith("."))
    assert len(cells) == 8 and all((c / "summary.json").is_file() for c in cells)
    assert "2 at a time" in first.stderr and "8/8 done" in first.stderr
    summaries = {c.name: json.loads((c / "summary.json").read_text()) for c in cells}
    assert {s["threads"] for s in summaries.values()} == {max(1, (os.cpu_count() or 1) // 2)}

    stamps = {c.name: (c / "summary.json").stat().st_mtime_ns for c in cells}
    again = grid_cli(*GRID, "--out", str(out), "--jobs", "2")
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
    result = grid_cli("--dataset", f"digits,{tmp_path / 'missing.npz'}", *TINY, "--out", str(out), "--jobs", "2")
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


def test_sigterm_pauses_every_running_cell_and_the_same_command_finishes_them(tmp_path):
    """Two cells running and a third waiting when SIGTERM comes: the grid pauses the two, starts
    no other and ends at once; the same command again finishes all three."""
    out = tmp_path / "grid"
    longer = ["--seed", "1,2,3", "--epochs", "30", "--max-outer-loop", "1", "--max-inner-loop", "3", "--batch-size", "16"]
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen([sys.executable, "-m", "memomentum", "grid", *longer, "--out", str(out), "--jobs", "2"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
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
    resumed = grid_cli(*longer, "--out", str(out), "--jobs", "2")
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
    config = {"dataset": "digits", "noise_type": "instance", "noise_rate": 0.2, "epochs": 2, **setting,
              "method": method, "seed": seed}
    (directory / "config.json").write_text(json.dumps(config))
    if accuracy is not None:
        summary = {"test_accuracy": accuracy, "epochs_run": 6, "wall_time_s": 1.25, "threads": 1,
                   "final_confident": {"label_precision": 97.5 if method == "memomentum" else 95.0,
                                       "label_recall": 80.0}}
        (directory / "summary.json").write_text(json.dumps(summary))
    return directory


@pytest.fixture
def hand_grid(tmp_path) -> Path:
    """Two settings (one with '<' in a value) x Me-Momentum and CE x seeds 1, 2, and an unfinished run."""
    out = tmp_path / "grid"
    accs = {("instance", "memomentum"): (90.0, 92.0), ("instance", "ce"): (85.0, 88.0),
            ("<b>sym", "memomentum"): (70.0, 71.0), ("<b>sym", "ce"): (60.0, 66.0)}
    for (noise, method), values in accs.items():
        for seed, acc in zip((1, 2), values):
            _fake_run(out / f"{noise}-{method}-{seed}".replace("<b>", "x"), method=method, seed=seed, accuracy=acc,
                      noise_type=noise)
    _fake_run(out / "instance-memomentum-<3>", method="memomentum", seed=3, accuracy=None)
    return out


def test_table_html_shows_every_setting_and_mean_std_as_the_markdown_does(hand_grid):
    from memomentum.table import write_tables
    markdown = write_tables(hand_grid)
    page = (hand_grid / "table.html").read_text(encoding="utf-8")
    expected = ["91.00 ± 1.41 (n=2)", "86.50 ± 2.12 (n=2)",  # test accuracy
                "70.50 ± 0.71 (n=2)", "63.00 ± 4.24 (n=2)",
                "4.50 ± 0.71 (n=2)", "7.50 ± 3.54 (n=2)",  # Me-Momentum - CE, paired by seed
                "97.50 ± 0.00 (n=2) / 80.00 ± 0.00 (n=2)", "95.00 ± 0.00 (n=2) / 80.00 ± 0.00 (n=2)"]
    for text in expected:
        assert text in markdown and text in page, text
    assert "grid" in page.split("<h1>")[1].split("</h1>")[0]  # the title names the grid directory
    assert "<td class=\"t\">instance</td>" in page and "&lt;b&gt;sym" in page
    assert "<b>sym" not in page and "<3>" not in page  # what comes from run directories is escaped
    assert "Me-Momentum" in page and "CE" in page and "Me-Momentum − CE" in page
    assert "http://" not in page and "https://" not in page and "<script" not in page  # self-contained
    from memomentum.report import CSS
    assert CSS in page


def test_table_html_lists_the_unfinished_run_and_never_averages_it(hand_grid):
    from memomentum.table import write_tables
    write_tables(hand_grid)
    page = (hand_grid / "table.html").read_text(encoding="utf-8")
    table, unfinished = page.split('<section id="unfinished">')
    assert "instance-memomentum-&lt;3&gt;" in unfinished and "not finished (no summary.json)" in unfinished
    assert "instance-memomentum-&lt;3&gt;" not in table and "(n=3)" not in page


def test_table_html_embeds_the_accuracy_chart_as_png(hand_grid):
    import base64
    pytest.importorskip("matplotlib")
    from memomentum.table import write_tables
    write_tables(hand_grid)
    page = (hand_grid / "table.html").read_text(encoding="utf-8")
    chart = page.split('<section id="chart">')[1]
    assert "data:image/png;base64," in chart and "needs matplotlib" not in page
    png = base64.b64decode(chart.split("data:image/png;base64,")[1].split('"')[0])
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 5000


def test_without_matplotlib_the_table_page_says_the_chart_needs_it(hand_grid, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    from memomentum.table import write_tables
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
    from memomentum.table import write_tables
    out = tmp_path / "grid"
    for method in ("memomentum", "ce"):
        for seed in (1, 2):
            d = _fake_run(out / f"{method}-{seed}", method=method, seed=seed, accuracy=50.0)
            (d / "summary.json").write_text(json.dumps({"test_accuracy": None, "epochs_run": 4, "wall_time_s": 2.0,
                                                        "final_confident": {"n": 10}}))
    markdown = write_tables(out)
    assert "| memomentum | - | - / - | 4, 4 | 2.0, 2.0 |" in markdown and "paired" not in markdown
    table = json.loads((out / "table.json").read_text(), parse_constant=lambda c: pytest.fail(f"{c} in JSON"))
    assert table["rows"][0]["methods"]["ce"]["test_accuracy"] == {"mean": None, "std": None, "n": 0}
    assert ",ce,1 2,,,0,,," in (out / "table.csv").read_text()
    assert "data:image/png;base64," in (out / "table.html").read_text(encoding="utf-8")


def test_the_table_module_does_not_import_torch():
    code = "import sys, memomentum.table; print('torch' in sys.modules)"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "False", result.stderr[-2000:]


# -- GPUs: --gpus LIST --cells-per-gpu K (no GPU needed: the GPU count is faked) ----------
def test_gpu_slots_hold_k_cells_per_gpu_never_two_in_one_slot_and_take_them_back():
    from memomentum.grid import GpuSlots
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
    from memomentum.grid import gpu_environment
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert gpu_environment(1)["CUDA_VISIBLE_DEVICES"] == "1"
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,6")
    assert gpu_environment(1)["CUDA_VISIBLE_DEVICES"] == "6"


def test_cells_spread_over_gpus_each_process_seeing_its_own_gpu(tmp_path, monkeypatch, capsys):
    import memomentum.grid as grid
    monkeypatch.setattr(grid, "gpu_count", lambda: 2)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    real_popen, launched = subprocess.Popen, []  # (cell, its GPU, the GPUs of the cells still running)

    def recording_popen(argv, **kw):
        busy = [gpu for _, gpu, proc in launched if proc.poll() is None]
        proc = real_popen(argv, **kw)
        launched.append((argv[argv.index("--out") + 1], kw["env"]["CUDA_VISIBLE_DEVICES"], proc))
        assert kw["env"]["CUDA_VISIBLE_DEVICES"] not in busy, (launched, busy)  # a slot is never shared
        return proc

    monkeypatch.setattr(grid.subprocess, "Popen", recording_popen)
    out = tmp_path / "grid"
    args = ["grid", "--seed", "1,2,3,4", "--epochs", "1", "--max-outer-loop", "1", "--max-inner-loop", "1",
            "--threads", "1", "--device", "cpu", "--out", str(out), "--gpus", "0,1", "--cells-per-gpu", "1",
            "--jobs", "4"]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "4 cells in" in err and "2 at a time, 2 GPUs x 1 cell (GPUs 0,1)" in err
    assert [Path(cell).name for cell, _, _ in launched] == ["seed-1", "seed-2", "seed-3", "seed-4"]
    assert [gpu for _, gpu, _ in launched][:2] == ["0", "1"] and {gpu for _, gpu, _ in launched} == {"0", "1"}
    assert "seed-1: started on GPU 0" in err and "seed-2: started on GPU 1" in err
    assert all((out / f"seed-{s}" / "summary.json").is_file() for s in (1, 2, 3, 4))


@pytest.mark.parametrize("extra, count, message", [
    (["--gpus", "0,x"], 2, "--gpus '0,x': 'x' is not a GPU index"),
    (["--gpus", "0,3"], 2, "--gpus '0,3': GPU 3 is not present (torch sees 2 GPUs: 0 to 1)"),
    (["--gpus", "0"], 0, "--gpus '0': GPU 0 is not present (torch sees 0 GPUs)"),
    (["--gpus", "auto"], 0, "--gpus auto found no GPU"),
    (["--gpus", "0", "--cells-per-gpu", "0"], 1, "--cells-per-gpu 0: expected a whole number of at least 1"),
    (["--cells-per-gpu", "2"], 1, "--cells-per-gpu 2 needs --gpus LIST"),
], ids=["not-a-number", "not-present", "no-gpu", "auto-without-gpus", "zero-per-gpu", "per-gpu-without-gpus"])
def test_bad_gpu_placements_are_refused_before_anything_runs(tmp_path, monkeypatch, capsys, extra, count, message):
    import memomentum.grid as grid
    monkeypatch.setattr(grid, "gpu_count", lambda: count)
    assert main(["grid", "--seed", "1,2", "--out", str(tmp_path / "g"), *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"memomentum: error: {message}"), err
    assert not (tmp_path / "g").exists()


def test_core_blocks_split_the_cores_and_never_hand_one_out_twice(monkeypatch):
    import memomentum.grid as grid
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
    import memomentum.grid as grid
    monkeypatch.setattr(grid.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})  # 4 cores: 2 cells of 2 threads
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    real_popen, confined = subprocess.Popen, []

    def recording_popen(argv, **kw):  # the cores are made up: the cells run unconfined here
        confined.append((argv[argv.index("--threads") + 1], kw.pop("preexec_fn") is not None))
        return real_popen(argv, **kw)

    monkeypatch.setattr(grid.subprocess, "Popen", recording_popen)
    out = tmp_path / "grid"
    args = ["grid", "--seed", "1,2,3", "--epochs", "1", "--max-outer-loop", "1", "--max-inner-loop", "1",
            "--device", "cpu", "--jobs", "2", "--out", str(out)]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "2 at a time, 2 CPU threads each" in err
    assert confined == [("2", True)] * 3
    assert "seed-1: started on cores 0-1" in err and "seed-2: started on cores 2-3" in err
    third = [line for line in err.splitlines() if "seed-3: started" in line]
    assert len(third) == 1 and ("on cores 0-1" in third[0] or "on cores 2-3" in third[0])  # a block given back
    assert all((out / f"seed-{s}" / "summary.json").is_file() for s in (1, 2, 3))

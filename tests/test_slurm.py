"""memomentum grid --launcher slurm: the unfinished cells go out as one job array through
submitit, each task running its cell's ordinary `memomentum run` command. The runs themselves
go through submitit's local executor (no Slurm here); the Slurm side is checked on the job
script submitit writes for a stand-in sbatch."""

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest
import submitit
from helpers import SCHEDULE_2_EPOCHS, flags

from memomentum.cli import grid as grid_command
from memomentum.cli import main
from memomentum.entrypoints import grid, slurm

TINY = [*flags(dataset="digits", noise_type="symmetric", noise_rate=0.2, seed=1, **SCHEDULE_2_EPOCHS), "--threads", "1"]
GRID = ["--method", "memomentum,ce", *TINY]


class LocalExecutors:
    """An executor factory for grid_command._executor_factory: submitit's local executor (each task a
    process on this machine), remembering what was asked of it."""

    def __init__(self):
        self.folders, self.parameters, self.jobs = [], [], []

    def __call__(self, folder):
        self.folders.append(Path(folder))
        executor = submitit.AutoExecutor(folder=folder, cluster="local")
        update, map_array = executor.update_parameters, executor.map_array

        def update_parameters(**kw):
            self.parameters.append(kw)
            update(**kw)

        def submit_array(fn, *items):
            jobs = map_array(fn, *items)
            self.jobs += jobs
            return jobs

        executor.update_parameters, executor.map_array = update_parameters, submit_array
        return executor


def test_a_grid_goes_out_as_one_array_runs_every_cell_resumes_the_unfinished_and_is_not_sent_again(
    tmp_path, monkeypatch, capsys
):
    out = tmp_path / "grid"
    # the ce cell was started before and killed after its first epoch: a checkpoint to resume
    env = dict(os.environ, MEMOMENTUM_TEST_KILL_AT="epoch:1")
    killed = subprocess.run(
        [
            sys.executable,
            "-m",
            "memomentum",
            "run",
            *TINY,
            "--method",
            "ce",
            "--quiet",
            "--out",
            str(out / "method-ce"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert killed.returncode == -signal.SIGKILL and grid.state(out / "method-ce") == "unfinished", killed.stderr
    assert main(["grid", *GRID, "--out", str(out), "--print-commands"]) == 0
    printed = capsys.readouterr().out.strip().splitlines()
    assert printed[1] == f"memomentum run --resume {out / 'method-ce'}"

    executors = LocalExecutors()
    monkeypatch.setattr(grid_command, "_executor_factory", executors)
    assert (
        main(
            [
                "grid",
                *GRID,
                "--out",
                str(out),
                "--launcher",
                "slurm",
                "--time",
                "20",
                "--partition",
                "gpu",
                "--mem-gb",
                "2",
            ]
        )
        == 0
    )
    said = capsys.readouterr()
    assert executors.folders == [out / ".slurm"] and len(executors.jobs) == 2
    assert executors.parameters == [
        {
            "slurm_array_parallelism": 2,
            "name": "memomentum-grid",
            "timeout_min": 20,
            "cpus_per_task": 1,
            "nodes": 1,
            "tasks_per_node": 1,
            "mem_gb": 2.0,
            "slurm_partition": "gpu",
        }
    ]
    # submitit's local executor has no arrays: one job of one task per cell
    lines = said.out.strip().splitlines()
    assert lines[:2] == [
        f"grid: submitted job {job.job_id}: 1 task (one per cell), logs in {out / '.slurm'}" for job in executors.jobs
    ]
    assert lines[2:] == [f"grid: when the jobs have finished, gather the table with: memomentum table {out}"]
    assert [job.result() for job in executors.jobs] == [str(out / "method-memomentum"), str(out / "method-ce")]
    for job, command in zip(executors.jobs, printed):  # each task ran its cell's own command (and --quiet)
        assert f"\n{command} --quiet\n" in f"\n{job.stdout()}"
    summaries = [json.loads((out / f"method-{m}" / "summary.json").read_text()) for m in ("memomentum", "ce")]
    assert [s["method"] for s in summaries] == ["memomentum", "ce"] and {s["threads"] for s in summaries} == {1}

    stamps = [(out / f"method-{m}" / "summary.json").stat().st_mtime_ns for m in ("memomentum", "ce")]
    assert main(["grid", *GRID, "--out", str(out), "--launcher", "slurm", "--time", "20"]) == 0
    again = capsys.readouterr()
    assert executors.folders == [out / ".slurm"] and len(executors.jobs) == 2  # nothing submitted
    assert "grid: all 2 cells had finished before: nothing to submit" in again.err
    assert stamps == [(out / f"method-{m}" / "summary.json").stat().st_mtime_ns for m in ("memomentum", "ce")]

    assert main(["table", str(out)]) == 0
    assert capsys.readouterr().out == again.out  # the same table
    table = json.loads((out / "table.json").read_text())
    assert len(table["rows"]) == 1 and table["unfinished"] == []
    for s in summaries:
        stats = table["rows"][0]["methods"][s["method"]]["test_accuracy"]
        assert stats["n"] == 1 and abs(stats["mean"] - s["test_accuracy"]) < 0.0051


def test_the_job_script_asks_slurm_for_what_was_given(tmp_path, monkeypatch, capsys):
    """The default executor (submitit's AutoExecutor) on a machine with srun: a stand-in sbatch
    keeps the script it is given."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "srun").write_text("#!/bin/sh\nexit 1\n")
    (bin_dir / "sbatch").write_text(f"#!/bin/sh\ncp \"$1\" {tmp_path}/job.sh\necho 'Submitted batch job 4242'\n")
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.chdir(tmp_path)
    done = Path("runs/grid/seed-1")  # a finished cell is left out of the array
    done.mkdir(parents=True)
    (done / "summary.json").write_text("{}")
    assert (
        main(
            [
                "grid",
                "--seed",
                "1,2,3",
                "--epochs",
                "2",
                "--out",
                "runs/grid",
                "--launcher",
                "slurm",
                "--time",
                "90",
                "--partition",
                "gpu",
                "--gpus-per-task",
                "1",
                "--cpus-per-task",
                "4",
                "--mem-gb",
                "16",
                "--slurm-array-parallelism",
                "1",
                "--slurm-folder",
                "logs",
            ]
        )
        == 0
    )
    said = capsys.readouterr()
    assert said.out.splitlines() == [
        "grid: submitted job 4242: 2 tasks (one per cell), logs in logs",
        "grid: when the jobs have finished, gather the table with: memomentum table runs/grid",
    ]
    assert "grid: 1 cell had finished before: not submitted again" in said.err
    script = (tmp_path / "job.sh").read_text()
    flags = dict(re.findall(r"^#SBATCH --([\w-]+)=(.*)$", script, flags=re.MULTILINE))
    assert {
        k: flags.get(k)
        for k in (
            "array",
            "partition",
            "time",
            "cpus-per-task",
            "gpus-per-node",
            "mem",
            "nodes",
            "ntasks-per-node",
            "job-name",
        )
    } == {
        "array": "0-1%1",
        "partition": "gpu",
        "time": "90",
        "cpus-per-task": "4",
        "gpus-per-node": "1",
        "mem": "16GB",
        "nodes": "1",
        "ntasks-per-node": "1",
        "job-name": "memomentum-grid",
    }
    assert flags["output"].startswith(str(tmp_path / "logs"))
    # each task's pickled call: its cell's command, with the cores as its threads, from this folder
    tasks = [
        submitit.core.utils.DelayedSubmission.load(p).args[0]
        for p in sorted((tmp_path / "logs").glob("4242_*_submitted.pkl"))
    ]
    assert [(t.cell.name, t.run_dir, t.threads, t.cwd) for t in tasks] == [
        ("seed-2", "runs/grid/seed-2", 4, str(tmp_path)),
        ("seed-3", "runs/grid/seed-3", 4, str(tmp_path)),
    ]
    assert grid.command(tasks[0].cell, Path(tasks[0].run_dir), threads=4, quiet=True) == [
        "memomentum",
        "run",
        "--seed",
        "2",
        "--epochs",
        "2",
        "--out",
        "runs/grid/seed-2",
        "--threads",
        "4",
        "--quiet",
    ]


def test_a_task_told_to_stop_pauses_its_run_which_the_next_task_resumes(tmp_path, monkeypatch, capfd):
    """submitit's SIGUSR2 (the time limit is near) reaches the run too, which ignores it; the
    task's handler raises, and the task pauses the run (a checkpoint) before it ends. The run
    directory is relative to the folder the grid was submitted from, not to the task's."""
    longer = [
        "--seed",
        "1",
        "--epochs",
        "8",
        "--max-outer-loop",
        "1",
        "--max-inner-loop",
        "2",
        "--batch-size",
        "16",
        "--threads",
        "1",
    ]
    cell = grid.expand([(flag, [value]) for flag, value in zip(longer[::2], longer[1::2])])[0]
    task = slurm.CellTask(cell, "run", None, str(tmp_path))
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")

    class TimedOut(Exception):
        pass

    def handler(signum, frame):
        raise TimedOut

    def warn_when_training():
        deadline = time.monotonic() + 300
        while not (tmp_path / "run" / "checkpoint.pt").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)  # training
        for child in psutil.Process().children(recursive=True):  # as Slurm does: every process of the task
            child.send_signal(signal.SIGUSR2)
        os.kill(os.getpid(), signal.SIGUSR2)

    previous = signal.signal(signal.SIGUSR2, handler)
    try:
        threading.Thread(target=warn_when_training, daemon=True).start()
        with pytest.raises(TimedOut):
            task()
    finally:
        signal.signal(signal.SIGUSR2, previous)
    assert grid.state(tmp_path / "run") == "unfinished"
    assert "interrupted by SIGINT; checkpoint saved" in capfd.readouterr().err
    assert task() == "run"
    assert grid.state(tmp_path / "run") == "done"
    assert "memomentum run --resume run --quiet" in capfd.readouterr().out
    stamp = (tmp_path / "run" / "summary.json").stat().st_mtime_ns
    assert task() == "run"  # the cell finished (a task sent twice): nothing runs
    assert "grid: cell run had finished before: not trained again" in capfd.readouterr().out
    assert (tmp_path / "run" / "summary.json").stat().st_mtime_ns == stamp
    assert list((tmp_path / "elsewhere").iterdir()) == []


def test_without_submitit_the_slurm_launcher_says_how_to_install_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "submitit", None)  # import submitit raises ImportError
    assert main(["grid", *GRID, "--out", str(tmp_path / "g"), "--launcher", "slurm", "--time", "10"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        'memomentum: error: --launcher slurm submits through submitit: pip install "memomentum[slurm]"'
    ]
    assert not (tmp_path / "g").exists()


def test_without_slurm_the_slurm_launcher_refuses_rather_than_running_here(tmp_path, monkeypatch, capsys):
    (tmp_path / "bin").mkdir()
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))  # no srun
    assert main(["grid", *GRID, "--out", str(tmp_path / "g"), "--launcher", "slurm", "--time", "10"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "memomentum: error: --launcher slurm found no Slurm here (no srun on PATH): submit from a machine of the "
        "cluster, or print the cells' commands with --print-commands"
    ]
    assert not (tmp_path / "g").exists()


@pytest.mark.parametrize(
    "option",
    [
        ["--partition", "gpu"],
        ["--time", "10"],
        ["--gpus-per-task", "0"],
        ["--cpus-per-task", "2"],
        ["--mem-gb", "4"],
        ["--slurm-array-parallelism", "2"],
        ["--slurm-folder", "logs"],
    ],
)
def test_slurm_options_are_refused_with_the_local_launcher(tmp_path, capsys, option):
    assert main(["grid", *GRID, "--out", str(tmp_path / "g"), *option]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"memomentum: error: {option[0]} is a Slurm option: it needs --launcher slurm (the local launcher runs the "
        f"cells on this machine, --jobs at a time)"
    ]
    assert not (tmp_path / "g").exists()


def test_the_slurm_launcher_needs_a_time_limit_and_sane_values(tmp_path, capsys):
    base = ["grid", *GRID, "--out", str(tmp_path / "g"), "--launcher", "slurm"]
    assert main(base) == 2
    assert capsys.readouterr().err.splitlines() == [
        "memomentum: error: --launcher slurm needs --time MINUTES, each task's time limit (submitit's own default "
        "would stop a task after 5 minutes)"
    ]
    assert main([*base, "--time", "5", "--gpus-per-task", "-1"]) == 2
    assert "--gpus-per-task -1: expected a whole number of at least 0" in capsys.readouterr().err
    assert main([*base, "--time", "5", "--print-commands"]) == 2
    assert "leave out --launcher slurm" in capsys.readouterr().err
    assert not (tmp_path / "g").exists()

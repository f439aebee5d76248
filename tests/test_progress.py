"""The run's progress on standard error: a live bar on a terminal, plain lines in a log
(a file, a pipe, a Slurm job's output): no carriage returns, a line per phase and round,
otherwise at most one every 30 seconds."""

import io
import subprocess
import sys

from helpers import SCHEDULE_2_ROUNDS

from memomentum.config import RunConfig
from memomentum.runner.progress import LOG_INTERVAL_S, ProgressBar, ProgressLines, progress_bar

CFG = RunConfig(**SCHEDULE_2_ROUNDS)


class Terminal(io.StringIO):
    def isatty(self):
        return True


class Clock:
    """Seconds that a test moves by hand."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def row(inner, epoch, val=50.0):
    return {"outer": 1, "inner": inner, "epoch": epoch, "n_train": 100, "val_accuracy": val}


def test_a_terminal_gets_the_live_bar_and_a_log_gets_lines():
    terminal, log = Terminal(), io.StringIO()
    bar, lines = progress_bar(CFG, terminal), progress_bar(CFG, log)
    assert isinstance(bar, ProgressBar) and isinstance(lines, ProgressLines)
    for p in (bar, lines):
        p.epoch_done(row(0, 1), 1234.0, "margin 0.0/0.9")
        p.close()
    assert "\r" in terminal.getvalue()  # tqdm redraws its line in place
    assert "\r" not in log.getvalue() and "\x1b" not in log.getvalue()
    assert progress_bar(RunConfig(progress=False), log) is None


def test_a_log_gets_a_line_at_the_start_at_every_phase_and_round_and_at_the_end():
    log, clock = io.StringIO(), Clock()
    p = ProgressLines(CFG, log, clock=clock)
    for inner in (0, 1, 2):
        for epoch in (1, 2, 3):
            clock.now += 1.0
            p.epoch_done(row(inner, epoch, val=10.0 * inner + epoch), 1234.0)
    p.close()
    lines = log.getvalue().splitlines()
    assert lines[0] == "memomentum digits (at most 1 outer loop of a first phase and 2 rounds, 3 epochs each): started"
    assert lines[1] == (
        "memomentum digits: 1 epoch in 0:01 | outer 1 first phase | train 100 | val 1.00% | 1,234 img/s"
    )
    assert [line.split(" | ")[1] for line in lines[1:]] == [
        "outer 1 first phase",
        "outer 1 round 1",
        "outer 1 round 2",
        "outer 1 round 2",
    ]
    assert lines[-1].startswith("memomentum digits: 9 epochs in 0:09 | outer 1 round 2") and "val 23.00%" in lines[-1]


def test_within_a_phase_a_log_gets_at_most_one_line_every_30_seconds():
    log, clock = io.StringIO(), Clock()
    p = ProgressLines(CFG, log, clock=clock)
    p.epoch_done(row(0, 1), 1.0)  # a new phase: a line
    written = len(log.getvalue().splitlines())
    for _ in range(29):  # 29 s of updates inside and after epochs: no line
        clock.now += 1.0
        p.steps_done({"outer": 1, "inner": 0, "epoch": 2}, 50, 100, 10.0)
    p.epoch_done(row(0, 2), 1.0)
    assert len(log.getvalue().splitlines()) == written
    clock.now += LOG_INTERVAL_S - 29.0  # 30 s since the last line
    p.steps_done({"outer": 1, "inner": 0, "epoch": 3}, 50, 100, 10.0)
    lines = log.getvalue().splitlines()
    assert len(lines) == written + 1
    assert lines[-1] == "memomentum digits: 2 epochs in 0:30 | outer 1 first phase | epoch 3/3 50% | 10 img/s"
    clock.now += 1.0
    p.close()  # the last status was written a second ago, but it changed since: one line more
    assert len(log.getvalue().splitlines()) == written + 1


def test_an_hour_long_run_shows_hours():
    log, clock = io.StringIO(), Clock()
    p = ProgressLines(CFG, log, clock=clock)
    clock.now += 2 * 3600 + 61
    p.epoch_done(row(0, 1), 1.0)
    assert " in 2:01:01 | " in log.getvalue()


def test_a_run_redirected_to_a_file_logs_lines_without_carriage_returns(tmp_path):
    with open(tmp_path / "log", "w") as log:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "memomentum",
                "run",
                "--epochs",
                "3",
                "--max-outer-loop",
                "1",
                "--max-inner-loop",
                "2",
                "--out",
                str(tmp_path / "run"),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            timeout=600,
        )
    text = (tmp_path / "log").read_text()
    assert done.returncode == 0, text
    assert "\r" not in text
    assert "memomentum digits (at most 1 outer loop of a first phase and 1 round, 3 epochs each): started" in text
    assert "outer 1 round 1 | train" in text and "test accuracy" in text

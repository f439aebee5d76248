"""Runs that cannot be trusted are not reported as results: one writer per run directory
(a lock file, stale locks taken over), history.csv growing epoch by epoch, and a diverging
run stopped with exit status 1 and nothing written (``memomentum.runner.rundir``)."""

import csv
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import REPO, SCHEDULE_1_EPOCH, flags, run_with_stderr, start_in_child

import memomentum
from memomentum import InputError, RunConfig
from memomentum.base.errors import TrainingDiverged
from memomentum.runner import files as run_files
from memomentum.runner import rundir
from memomentum.training.engine import Engine

# a tiny digits run: 1 epoch per phase, one outer loop, one inner round
TINY = [*flags(**SCHEDULE_1_EPOCH), "--noise-type", "symmetric", "--quiet", "--threads", "1"]


def dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def write_lock(run_dir: Path, pid, host) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / run_files.LOCK).write_text(json.dumps({"pid": pid, "host": host}) + "\n")


# -- two writers ---------------------------------------------------------------------------


def test_two_runs_started_at_once_into_one_directory(tmp_path):
    out = tmp_path / "d"
    first, second = (
        start_in_child("run", "--seed", "1", "--out", str(out), *TINY, cwd=REPO),
        start_in_child("run", "--seed", "2", "--out", str(out), *TINY, cwd=REPO),
    )
    results = [(p.wait(timeout=300), p.stderr.read(), seed) for p, seed in ((first, 1), (second, 2))]
    codes = sorted(code for code, _, _ in results)
    assert codes == [0, 2], results
    (_, _, winner), (_, refusal, _) = sorted(results, key=lambda r: r[0])
    line = refusal.strip().splitlines()[-1]
    # refused at the lock while the other one writes, or after it finished
    assert (
        (
            line.startswith("memomentum: error: another memomentum run (process ")
            and line.endswith(f"is writing to {out}; wait for it to finish or choose another --out")
        )
        or line
        == f"memomentum: error: {out} already holds a finished run; pass --overwrite to replace it "
        f"or --out to choose another directory"
    ), line
    config = json.loads((out / "config.json").read_text())
    summary = json.loads((out / "summary.json").read_text())
    assert config["seed"] == summary["seed"] == winner  # one run's files only
    names = {p.name for p in out.iterdir()}
    assert names <= run_files.RUN_FILES and run_files.LOCK not in names and "checkpoint.pt" not in names


def test_a_run_still_going_refuses_a_second_writer_and_a_resume_then_releases_its_lock(tmp_path):
    out = tmp_path / "d"
    going = start_in_child(
        "run",
        "--seed",
        "1",
        "--out",
        str(out),
        "--epochs",
        "60",
        "--max-outer-loop",
        "1",
        "--max-inner-loop",
        "2",
        "--quiet",
        "--threads",
        "1",
        cwd=REPO,
    )
    deadline = time.monotonic() + 240
    while not (out / "checkpoint.pt").exists() and going.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert going.poll() is None, going.stderr.read()
    lock = json.loads((out / run_files.LOCK).read_text())
    assert lock == {"pid": going.pid, "host": socket.gethostname()}
    holder = f"process {going.pid} on {socket.gethostname()}"

    code, err = run_with_stderr("--seed", "2", "--out", str(out), "--quiet")
    assert code == 2 and err == (
        f"memomentum: error: another memomentum run ({holder}) is writing to {out}; wait "
        f"for it to finish or choose another --out\n"
    )
    code, err = run_with_stderr("--resume", str(out), "--quiet")
    assert code == 2 and err == (
        f"memomentum: error: the run in {out} is still going ({holder}): stop it first "
        f"(it saves a checkpoint on Ctrl-C or SIGTERM), then resume it\n"
    )
    code, err = run_with_stderr("--seed", "1", "--out", str(out), "--quiet", "--overwrite")
    assert code == 2 and "is writing to" in err
    assert json.loads((out / "config.json").read_text())["seed"] == 1

    going.send_signal(signal.SIGTERM)  # a pause: checkpoint, exit 143, lock released
    assert going.wait(timeout=120) == 143
    assert not (out / run_files.LOCK).exists() and (out / "checkpoint.pt").exists()
    rundir.check_run_dir(out, resume=True, overwrite=False)  # now it may be resumed


def test_a_stale_lock_is_taken_over_with_a_note(tmp_path, capsys):
    out = tmp_path / "d"
    pid = dead_pid()
    write_lock(out, pid, socket.gethostname())
    assert rundir.lock_holder(out) is None
    rundir.acquire_lock(out, resume=False)
    assert (
        capsys.readouterr().err
        == f"memomentum: note: took over the lock of {out} from process {pid}, which no longer runs\n"
    )
    assert json.loads((out / run_files.LOCK).read_text()) == {"pid": os.getpid(), "host": socket.gethostname()}
    rundir.acquire_lock(out, resume=False)  # this process again: nothing to do
    rundir.release_lock(out)
    assert not (out / run_files.LOCK).exists()
    assert sorted(p.name for p in out.iterdir()) == []  # nothing left aside


@pytest.mark.parametrize(
    "host, content, message",
    [
        (
            "elsewhere",
            None,
            "another memomentum run (process 4242 on elsewhere) is writing to {out}; wait for it to finish "
            "or choose another --out; if no run uses it any more, delete {out}/run.lock",
        ),
        (
            None,
            "{not json",
            "another memomentum run (a process whose lock file cannot be read) is writing to {out}; wait "
            "for it to finish or choose another --out; if no run uses it any more, delete {out}/run.lock",
        ),
    ],
)
def test_locks_that_cannot_be_checked_are_refused_with_their_path(tmp_path, host, content, message):
    out = tmp_path / "d"
    if content is None:
        write_lock(out, 4242, host)
    else:
        out.mkdir()
        (out / run_files.LOCK).write_text(content)
    for check in (
        lambda: rundir.check_run_dir(out, resume=False, overwrite=False),
        lambda: rundir.acquire_lock(out, resume=False),
    ):
        with pytest.raises(InputError) as e:
            check()
        assert str(e.value) == message.format(out=out)
    assert (out / run_files.LOCK).exists()  # left for its owner


def test_a_live_lock_is_never_taken_over(tmp_path):
    out = tmp_path / "d"
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        write_lock(out, sleeper.pid, socket.gethostname())
        with pytest.raises(InputError, match=f"process {sleeper.pid} on .* is writing to"):
            rundir.acquire_lock(out, resume=False)
    finally:
        sleeper.kill()
        sleeper.wait()
    rundir.acquire_lock(out, resume=False)  # its process gone: stale now
    rundir.release_lock(out)


# -- history.csv, live ---------------------------------------------------------------------


def test_live_history_appends_each_epoch_durably(tmp_path, monkeypatch):
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(fd) or real_fsync(fd))
    rows = [
        {"outer": 1, "inner": 0, "epoch": e, "n_train": 10, "train_loss": 0.5, "val_accuracy": 50.0, "lr": 0.1}
        for e in range(1, 4)
    ]
    history = rundir.LiveHistory(
        tmp_path / "history.csv", ["outer", "inner", "epoch", "n_train", "train_loss", "val_accuracy", "lr"]
    )
    history.start(rows[:1])
    n = len(synced)
    history.extend(rows[:2])
    assert len(synced) == n + 1  # the append is fsynced
    history.extend(rows[:2])  # nothing new: nothing written
    history.extend(rows)
    assert list(csv.DictReader((tmp_path / "history.csv").open())) == [{k: str(v) for k, v in r.items()} for r in rows]
    history.start(rows[:2])  # a resumed run starts again from its checkpoint's rows
    assert (tmp_path / "history.csv").read_text().count("\n") == 3


def test_history_grows_while_the_run_trains(tmp_path, monkeypatch):
    """Each epoch's row is in history.csv once its checkpoint is: what a user watching the
    file sees matches the finished file line for line."""
    seen = []
    real_extend = rundir.LiveHistory.extend

    def extend(self, rows):
        real_extend(self, rows)
        if self.path.exists():  # not yet at the initial checkpoint, before any epoch
            seen.append(self.path.read_text())

    monkeypatch.setattr(rundir.LiveHistory, "extend", extend)
    out = tmp_path / "run"
    result = memomentum.run(
        RunConfig(
            out=str(out),
            noise_type="symmetric",
            epochs=2,
            max_outer_loop=1,
            max_inner_loop=2,
            progress=False,
            threads=1,
        )
    )
    final = (out / "history.csv").read_text()
    epochs = result.summary["epochs_run"]
    assert epochs >= 3
    assert [s.count("\n") - 1 for s in seen] == list(range(1, epochs + 1))  # a row more after each epoch
    assert all(final.startswith(s) for s in seen) and seen[-1] == final


# -- divergence ----------------------------------------------------------------------------


def make_the_weights_blow_up(monkeypatch) -> None:
    """Every epoch's last update makes the weights infinite (its loss is still finite)."""
    real = Engine.train_steps

    def blow_up(self, model, *args, **kwargs):
        result = real(self, model, *args, **kwargs)
        with torch.no_grad():
            next(model.parameters()).fill_(float("inf"))
        return result

    monkeypatch.setattr(Engine, "train_steps", blow_up)


def test_weights_that_blow_up_in_the_last_step_stop_the_run_and_release_the_lock(tmp_path, monkeypatch):
    """The epoch's loss is still finite when the last update makes the weights infinite: the
    run must stop all the same, instead of reporting NaN confidences."""
    make_the_weights_blow_up(monkeypatch)
    out = tmp_path / "run"
    out.mkdir()  # the user's directory: kept, but emptied of what the run wrote
    with pytest.raises(TrainingDiverged) as e:
        memomentum.run(
            RunConfig(out=str(out), lr=0.05, epochs=1, max_outer_loop=1, max_inner_loop=1, progress=False, threads=1)
        )
    assert str(e.value) == (
        "training diverged: the weights became NaN or infinite in epoch 1 of the first phase of "
        "outer loop 1 with learning rate 0.05; no results were written, start again with a lower --lr"
    )
    assert list(out.iterdir()) == []  # no results, no lock


def test_overwrite_keeps_the_previous_run_until_the_new_one_has_results(tmp_path, monkeypatch):
    out = tmp_path / "run"
    small = dict(out=str(out), **SCHEDULE_1_EPOCH, progress=False, threads=1)
    memomentum.run(RunConfig(**small))
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    make_the_weights_blow_up(monkeypatch)
    with pytest.raises(TrainingDiverged) as e:
        memomentum.run(RunConfig(**{**small, "seed": 2}), overwrite=True)
    assert str(e.value).endswith(
        f"start again with a lower --lr; the run that --overwrite was to replace is back in {out}"
    )
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # the finished run, untouched
    monkeypatch.undo()
    memomentum.run(RunConfig(**{**small, "seed": 2}), overwrite=True)  # a new run that finishes replaces it
    assert not (out / run_files.PREVIOUS).exists()
    assert json.loads((out / "summary.json").read_text())["seed"] == 2


def test_a_folder_that_is_no_run_is_never_offered_overwrite(tmp_path):
    out = tmp_path / "photos"
    out.mkdir()
    (out / "holiday.jpg").write_bytes(b"x")
    for extra in ([], ["--overwrite"]):
        code, err = run_with_stderr(*TINY, "--out", str(out), *extra)
        assert code == 2 and "holds files that are not part of a memomentum run (holiday.jpg)" in err
        assert "pass --overwrite" not in err
    assert [p.name for p in out.iterdir()] == ["holiday.jpg"]


def test_resuming_an_empty_folder_says_it_is_empty(tmp_path):
    (tmp_path / "empty").mkdir()
    code, err = run_with_stderr("--resume", str(tmp_path / "empty"))
    assert code == 2 and err.strip() == (
        f"memomentum: error: nothing to resume: {tmp_path / 'empty'} is empty; start a run there without --resume"
    )


def test_the_lock_is_refused_before_any_data_is_loaded(tmp_path, monkeypatch):
    out = tmp_path / "d"
    write_lock(out, 4242, "elsewhere")
    monkeypatch.setattr("memomentum.runner.pipeline.prepare_data", lambda *a, **k: pytest.fail("data loaded"))
    with pytest.raises(InputError, match="is writing to"):
        memomentum.run(RunConfig(out=str(out), progress=False))
    np.testing.assert_array_equal(sorted(p.name for p in out.iterdir()), [run_files.LOCK])

"""Nothing lost: a run killed or interrupted anywhere resumes exactly.

The killed runs are real processes (``python -m memomentum run``). SIGKILL lands at exact
points through the test hook ``MEMOMENTUM_TEST_KILL_AT=POINT:N`` (documented in
``memomentum/runner/signals.py``); SIGINT and SIGTERM are sent from outside while the run trains.
Each resumed run must give the same summary.json (all but the timings), examples.csv,
history.csv and best weights as one uninterrupted run with the same seed.
"""

import csv
import shutil
import signal
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import assert_finished_like, checkpoint_state, flags, results, run_in_process, start_in_child

from memomentum.base.atomic import is_temp_file
from memomentum.runner import files as run_files

# 360 training examples: 12 steps per epoch in the first phase, 7 in the first inner round;
# 18 epochs over 2 outer loops with 2 inner rounds each.
SCHEDULE = [
    *flags(noise_type="symmetric", noise_rate=0.3, seed=3, epochs=3, max_outer_loop=2, max_inner_loop=3, batch_size=32),
    "--quiet",
]


def write_blobs(path: Path, n: int, seed: int = 0) -> Path:
    """Four Gaussian blobs in 8 dimensions, with a test set."""
    rs = np.random.RandomState(seed)
    y, yt = rs.randint(0, 4, n), rs.randint(0, 4, 100)
    centre = 2.0 * np.eye(4, 8, dtype=np.float32)
    np.savez(
        path,
        x=rs.randn(n, 8).astype(np.float32) + centre[y],
        y=y,
        x_test=rs.randn(100, 8).astype(np.float32) + centre[yt],
        y_test=yt,
    )
    return path


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return write_blobs(tmp_path_factory.mktemp("data") / "blobs.npz", 400)


@pytest.fixture(scope="module")
def baseline(data, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("baseline") / "run"
    assert run_in_process("--dataset", str(data), *SCHEDULE, "--out", str(out)) == 0
    return out


# point -> (hook, what the saved state must look like afterwards)
KILLS = {
    "inside the first phase": ("step:18", dict(stage="first", outer=0, epoch=1, phase_started=True)),
    "before an epoch's checkpoint": ("epoch:5", dict(stage="inner", outer=0, inner=1, epoch=1)),
    "between rounds": ("round:2", dict(stage="inner", outer=0, inner=2, epoch=0, phase_started=False)),
    "inside an inner round": ("step:47", dict(stage="inner", outer=0, inner=1, epoch=1, phase_started=True)),
    "during a checkpoint write": ("checkpoint-write:6", dict(stage="inner", outer=0, inner=1, epoch=1)),
}


@pytest.mark.parametrize("where", list(KILLS))
def test_sigkill_anywhere_then_resume_equals_uninterrupted_run(where, data, baseline, tmp_path, capsys):
    hook, expected_state = KILLS[where]
    out = tmp_path / "run"
    args = ["--dataset", str(data), *SCHEDULE, "--out", str(out)]
    p = start_in_child("run", *args, kill_at=hook)
    _, err = p.communicate(timeout=300)
    assert p.returncode == -signal.SIGKILL, err
    assert not (out / "summary.json").exists()
    saved = checkpoint_state(out)
    state = saved["procedure"]
    assert {k: state[k] for k in expected_state} == expected_state
    temp_files = [f.name for f in out.iterdir() if is_temp_file(f)]
    assert bool(temp_files) == (where == "during a checkpoint write")
    # history.csv grew with the run: it holds exactly the epochs of the last checkpoint
    rows = list(csv.DictReader((out / "history.csv").open()))
    assert [(int(r["outer"]), int(r["inner"]), int(r["epoch"])) for r in rows] == [
        (h["outer"], h["inner"], h["epoch"]) for h in state["history"]
    ]

    # the same command again does not start over: it says how to resume
    assert run_in_process(*args) == 2
    assert f"continue it with: memomentum run --resume {out}" in capsys.readouterr().err

    assert run_in_process("--resume", str(out), "--quiet") == 0
    assert not [f for f in out.iterdir() if is_temp_file(f)]
    assert_finished_like(out, baseline, saved["elapsed"])


def test_resume_refuses_changed_settings_and_leaves_the_run_alone(data, baseline, tmp_path, capsys):
    out = tmp_path / "run"
    between_outer_loops = "round:3"
    p = start_in_child("run", "--dataset", str(data), *SCHEDULE, "--out", str(out), kill_at=between_outer_loops)
    p.communicate(timeout=300)
    assert p.returncode == -signal.SIGKILL
    saved = checkpoint_state(out)
    assert {k: saved["procedure"][k] for k in ("stage", "outer", "epoch", "phase_started")} == dict(
        stage="first", outer=1, epoch=0, phase_started=False
    )
    before = {f.name: f.read_bytes() for f in out.iterdir()}

    assert run_in_process("--resume", str(out), "--lr", "0.1", "--seed", "4", "--quiet") == 2
    msg = capsys.readouterr().err.strip()
    assert msg == f"memomentum: error: cannot resume {out}: these settings differ from the saved run: lr, seed"
    assert {f.name: f.read_bytes() for f in out.iterdir()} == before

    # settings that do not change results (device, threads, output, progress) may differ
    assert run_in_process("--resume", str(out), "--device", "cpu", "--threads", "1", "--quiet") == 0
    assert_finished_like(out, baseline, saved["elapsed"])
    # the killed process left its lock behind: a dead process on this host, so it is taken over
    assert capsys.readouterr().err.strip() == (
        f"memomentum: note: took over the lock of {out} from process {p.pid}, which no longer runs"
    )

    assert run_in_process("--resume", str(out)) == 2
    assert (
        capsys.readouterr().err.strip()
        == f"memomentum: error: the run in {out} has already finished; nothing to resume"
    )


def _killed_between_outer_loops(data: Path, out: Path) -> None:
    p = start_in_child("run", "--dataset", str(data), *SCHEDULE, "--out", str(out), kill_at="round:3")
    p.communicate(timeout=300)
    assert p.returncode == -signal.SIGKILL


@pytest.mark.parametrize("change", ["fewer rows", "other labels", "other features"])
def test_resume_refuses_data_that_changed_and_names_what(data, tmp_path, capsys, change):
    local = tmp_path / "blobs.npz"
    shutil.copy(data, local)
    out = tmp_path / "run"
    _killed_between_outer_loops(local, out)
    before = {f.name: f.read_bytes() for f in out.iterdir()}
    with np.load(local) as f:
        arrays = dict(f)
    if change == "fewer rows":
        arrays["x"], arrays["y"] = arrays["x"][:-3], arrays["y"][:-3]
    elif change == "other labels":
        arrays["y"] = (arrays["y"] + 1) % 4  # the same number of rows
    else:
        arrays["x"] = arrays["x"] + 0.5
    np.savez(local, **arrays)
    assert run_in_process("--resume", str(out), "--quiet") == 2
    err = capsys.readouterr().err.strip().splitlines()
    expected = {
        "fewer rows": "the number of training examples (400 then, 397 now), the labels, the noisy labels, the features",
        "other labels": "the labels, the noisy labels",
        "other features": "the features",
    }[change]
    assert err == [
        f"memomentum: error: cannot resume {out}: its data changed since the run started ({expected}); "
        f"resume with the data it started with, or start a new run"
    ]
    assert {f.name: f.read_bytes() for f in out.iterdir()} == before  # left as it was


@pytest.mark.parametrize("edit", ["edited", "deleted"])
def test_a_resumed_run_rewrites_config_json_from_its_checkpoint(data, baseline, tmp_path, edit):
    out = tmp_path / "run"
    _killed_between_outer_loops(data, out)
    original = (out / "config.json").read_text()
    if edit == "edited":
        (out / "config.json").write_text(original.replace('"lr": 0.01', '"lr": 0.5'))
        assert (out / "config.json").read_text() != original
    else:
        (out / "config.json").unlink()
    assert run_in_process("--resume", str(out), "--quiet") == 0
    assert (out / "config.json").read_text() == original
    assert results(out)["config"] == results(baseline)["config"]


def test_a_hand_edited_config_json_is_named_in_one_note_on_resume(data, baseline, tmp_path, capsys):
    """Keeping the saved schedule is right; putting the old lr back without a word is not."""
    out = tmp_path / "run"
    _killed_between_outer_loops(data, out)
    original = (out / "config.json").read_text()
    (out / "config.json").write_text(original.replace('"lr": 0.01', '"lr": 0.5'))
    capsys.readouterr()
    assert run_in_process("--resume", str(out), "--quiet") == 0
    err = [line for line in capsys.readouterr().err.splitlines() if "took over the lock" not in line]  # SIGKILLed
    assert err == [
        f"memomentum: note: {out / 'config.json'} was edited since the checkpoint: lr 0.5 (saved: 0.01); "
        f"--resume continues with the settings saved in the checkpoint and writes config.json back from "
        f"them (a run's settings cannot change halfway: start a new run to train with others)"
    ]
    assert (out / "config.json").read_text() == original
    assert results(out)["config"] == results(baseline)["config"]


# A longer schedule (about 2 s of training on an idle 2-core machine, 36 steps per epoch) so
# that the signal surely arrives while the run trains.
SIGNAL_SCHEDULE = [
    *flags(
        noise_type="symmetric", noise_rate=0.3, seed=5, epochs=20, max_outer_loop=1, max_inner_loop=3, batch_size=16
    ),
    "--quiet",
]


@pytest.fixture(scope="module")
def signal_baseline(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("signals")
    data = write_blobs(root / "blobs.npz", 600, seed=1)
    out = root / "uninterrupted"
    assert run_in_process("--dataset", str(data), *SIGNAL_SCHEDULE, "--out", str(out)) == 0
    return data, out


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_sigint_and_sigterm_checkpoint_and_exit_with_a_resume_hint(sig, code, signal_baseline, tmp_path):
    data, baseline = signal_baseline
    out = tmp_path / "run"
    p = start_in_child("run", "--dataset", str(data), *SIGNAL_SCHEDULE, "--out", str(out))
    # the initial checkpoint is written just before training starts (with the signal
    # handlers already in place): signal a moment later, while the run trains
    deadline = time.monotonic() + 240
    while not (out / run_files.CHECKPOINT).exists() and p.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    time.sleep(0.2)
    assert p.poll() is None, "the run ended before it could be interrupted"
    p.send_signal(sig)
    _, stderr = p.communicate(timeout=120)
    assert p.returncode == code, stderr
    assert stderr.strip().splitlines() == [
        f"memomentum: interrupted by {sig.name}; checkpoint saved. Resume with: memomentum run --resume {out}"
    ]
    saved = checkpoint_state(out)
    state = saved["procedure"]
    assert state["stage"] != "done" and not (out / "summary.json").exists()
    assert state["step_pos"] > 0 or state["history"], "it stops after a training step, not before"

    assert run_in_process("--resume", str(out), "--quiet") == 0
    assert_finished_like(out, baseline, saved["elapsed"])


def test_run_killed_before_its_first_checkpoint_starts_again(data, baseline, tmp_path, capsys):
    # what MEMOMENTUM_TEST_KILL_AT=checkpoint-write:1 leaves (the initial checkpoint,
    # written before training, cut half way): config.json and a temporary file
    out = tmp_path / "run"
    args = ["--dataset", str(data), *SCHEDULE, "--out", str(out)]
    out.mkdir()
    shutil.copy(baseline / "config.json", out / "config.json")
    (out / ".checkpoint.pt.x1y2z3.tmp").write_bytes(b"PK\x03\x04 half a checkpoint")
    assert run_in_process("--resume", str(out)) == 2
    assert "stopped before its first checkpoint; start it again with the same command" in capsys.readouterr().err
    assert run_in_process(*args) == 0  # no --overwrite needed: nothing was lost
    assert_finished_like(out, baseline, 1e-9)

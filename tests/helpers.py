"""What several test files share, each in one place: the checkout and the data files on this
machine, the fast schedules, the command line run in this process or in a child process, an
interrupted run compared with the uninterrupted one, and small problems to train on.

``conftest.py`` holds pytest's fixtures; ``review_helpers.py`` the run directories that
``memomentum review``'s tests fake. Only numpy and the standard library load with this module:
the package (and torch) load in the functions that need them.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from types import MappingProxyType

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"  # in the repository (fixtures/README.md)
FASHION = Path("/usr/share/datasets/fashion-mnist")


# -- data on this machine -------------------------------------------------------------------
def skip_or_fail(reason: str):
    """Missing external data skips a test on a developer's machine but fails in CI, where
    .ci/run installs it: a skipped proof is no proof."""
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def fixture_dir(sub: str = "") -> Path:
    """A folder of the repository's test fixtures (``tests/fixtures/SUB``), or
    ``$MEMOMENTUM_FIXTURES/SUB`` when that variable is set."""
    base = Path(os.environ["MEMOMENTUM_FIXTURES"]) if os.environ.get("MEMOMENTUM_FIXTURES") else FIXTURES
    return base / sub if sub else base


def fixture_file(name: str):
    """A reference fixture recorded from the reference implementation (``tests/fixtures``)."""
    path = fixture_dir() / name
    if not path.is_file():
        skip_or_fail(f"reference fixture {name} not found in {fixture_dir()}")
    return np.load(path)


def require_fashion_mnist() -> Path:
    if not (FASHION / "train-images-idx3-ubyte.gz").is_file():
        skip_or_fail(f"Fashion-MNIST is not installed at {FASHION} (Debian package dataset-fashion-mnist)")
    return FASHION


# -- fast schedules -------------------------------------------------------------------------
# RunConfig's (and the estimator's) keyword arguments, read-only (several files share them);
# `flags` spells them for the command line. One outer loop each: the first phase, then at most
# max_inner_loop - 1 inner rounds, `epochs` epochs a phase.
SCHEDULE_1_EPOCH = MappingProxyType({"epochs": 1, "max_outer_loop": 1, "max_inner_loop": 2})  # one round
SCHEDULE_2_EPOCHS = MappingProxyType({"epochs": 2, "max_outer_loop": 1, "max_inner_loop": 2})  # one round
SCHEDULE_3_EPOCHS = MappingProxyType({"epochs": 3, "max_outer_loop": 1, "max_inner_loop": 2})  # one round
SCHEDULE_2_ROUNDS = MappingProxyType({"epochs": 3, "max_outer_loop": 1, "max_inner_loop": 3})  # up to two rounds
# Image files that train in seconds: packed at 24 pixels, an MLP trained from scratch.
SMALL_IMAGES = ["--image-size", "24", "--model", "mlp", "--pretrained", "none"]


def flags(**settings) -> list[str]:
    """Settings as command-line options, in the order given: ``flags(max_outer_loop=1, lr=0.05)``
    is ``["--max-outer-loop", "1", "--lr", "0.05"]``."""
    return [item for key, value in settings.items() for item in (f"--{key.replace('_', '-')}", str(value))]


# -- the command line -----------------------------------------------------------------------
def checkout_env(**extra: str) -> dict[str, str]:
    """This process's environment with the checkout first on the import path, so that a child
    process runs the code under test (not an installed copy); plus ``extra``."""
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, **extra}


def run_in_process(*args: str) -> int:
    """``memomentum run ARGS`` in this process (what ``python -m memomentum`` runs, minus the
    interpreter start): its exit status."""
    from memomentum.cli import main

    return main(["run", *args])


def run_with_stderr(*args: str) -> tuple[int, str]:
    """``memomentum run ARGS`` in this process: (exit status, standard error). A refusal of
    argparse's own (SystemExit) gives its status too."""
    from memomentum.cli import main

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            code = main(["run", *args])
        except SystemExit as e:  # argparse's own errors
            code = e.code
    return code, err.getvalue()


def run_in_child(*argv: str, timeout: float = 600, **kwargs) -> subprocess.CompletedProcess:
    """``python -m memomentum ARGV`` in a child process on the checkout, waited for; its output
    captured as text. ``kwargs`` go to :func:`subprocess.run` (``cwd``, ...)."""
    return subprocess.run(
        [sys.executable, "-m", "memomentum", *argv],
        env=checkout_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        **kwargs,
    )


def start_in_child(*argv: str, kill_at: str | None = None, **popen) -> subprocess.Popen:
    """``python -m memomentum ARGV`` started in a child process on the checkout, its output
    piped as text. With ``kill_at`` (``POINT:N``) the run kills itself there with SIGKILL
    (the test hook of :mod:`memomentum.runner.signals`)."""
    from memomentum.runner.signals import KILL_AT_ENV

    env = checkout_env()
    env.pop(KILL_AT_ENV, None)
    if kill_at:
        env[KILL_AT_ENV] = kill_at
    return subprocess.Popen(
        [sys.executable, "-m", "memomentum", *argv],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )


# -- an interrupted run against the uninterrupted one -----------------------------------------
TIMING_KEYS = ("wall_time_s", "time_s", "threads_reason", "openmp_wait")  # the session's, not the results'


def results(run_dir: Path) -> dict:
    """Everything a run leaves that must not depend on interruptions."""
    import torch

    summary = json.loads((run_dir / "summary.json").read_text())
    for key in TIMING_KEYS:
        summary.pop(key)
    config = json.loads((run_dir / "config.json").read_text())
    config.pop("out")
    model = torch.load(run_dir / "model.pt", weights_only=True)
    return {
        "summary": summary,
        "examples": (run_dir / "examples.csv").read_text(),
        "history": (run_dir / "history.csv").read_text(),
        "config": config,
        "weights": {k: v.numpy().tobytes() for k, v in model["state_dict"].items()},
    }


def assert_finished_like(run_dir: Path, baseline: Path, elapsed_before: float) -> None:
    from memomentum.runner import files as run_files

    assert sorted(p.name for p in run_dir.iterdir()) == sorted(p.name for p in baseline.iterdir())
    assert not (run_dir / run_files.CHECKPOINT).exists()
    got, want = results(run_dir), results(baseline)
    assert got["summary"] == want["summary"]
    for key in ("examples", "history", "config", "weights"):
        assert got[key] == want[key], key
    rows = list(csv.DictReader((run_dir / "history.csv").open()))
    epochs = [(r["outer"], r["inner"], r["epoch"]) for r in rows]
    assert len(epochs) == len(set(epochs)), "an epoch appears twice in history.csv"
    wall = json.loads((run_dir / "summary.json").read_text())["wall_time_s"]
    assert wall >= elapsed_before > 0  # the time before the interruption is carried over


def checkpoint_state(run_dir: Path) -> dict:
    import torch

    from memomentum.runner import files as run_files

    return torch.load(run_dir / run_files.CHECKPOINT, weights_only=False)


# -- small problems -------------------------------------------------------------------------
def gaussian_blobs(n, classes, features, *, separation, noise, spread=1.0, flip_to="next", seed=0):
    """Gaussian blobs, class c centred ``separation`` along axis c (spread ``spread``), and
    noisy labels: a ``noise`` fraction moved to the next class, or with ``flip_to="other"`` to
    a uniformly drawn other class. Returns ``(x, clean, noisy)``, x float32 of shape (n, features)."""
    rs = np.random.RandomState(seed)
    clean = rs.randint(0, classes, n)
    x = rs.randn(n, features).astype(np.float32)
    if spread != 1.0:
        x = x * spread
    x = x + separation * np.eye(classes, features, dtype=np.float32)[clean]
    flip = rs.rand(n) < noise
    moved = (clean + 1 + rs.randint(0, classes - 1, n)) % classes if flip_to == "other" else (clean + 1) % classes
    return x, clean, np.where(flip, moved, clean)


def run_tensors(x, noisy, clean, *, split, num_classes, input_shape, noisy_validation=False, **device_data):
    """A problem as the procedures take it (on the CPU), from the rows ``split = (train, val,
    test)`` (slices) of ``x``: training rows with their noisy labels (their clean ones kept
    for the difficulty tracker), validation rows with their clean labels (the noisy ones with
    ``noisy_validation``, as the benchmark protocol has it), test rows with their clean
    labels. ``device_data`` (mean, std, padding) goes to ``to_device_data``."""
    import torch

    from memomentum.method.procedure import RunTensors
    from memomentum.training.sources import to_device_data

    def data(a):
        return to_device_data(a, device=torch.device("cpu"), channels_last=True, **device_data)

    def labels(a):
        return torch.as_tensor(a, dtype=torch.long)

    train, val, test = split
    return RunTensors(
        train=data(x[train]),
        train_labels=labels(noisy[train]),
        val=data(x[val]),
        val_labels=labels((noisy if noisy_validation else clean)[val]),
        test=data(x[test]),
        test_labels=labels(clean[test]),
        num_classes=num_classes,
        input_shape=input_shape,
        clean_train_labels=labels(clean[train]),
    )

"""Signals during a run: SIGINT and SIGTERM pause it resumably (after the current step,
once a checkpoint is written), and a test hook that kills the process at a chosen point."""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path


class Interrupted(Exception):
    """The run was stopped by a signal after writing a checkpoint."""

    def __init__(self, signum: int, run_dir: Path):
        self.signum = signum
        self.run_dir = run_dir
        super().__init__(f"interrupted by {signal.Signals(signum).name}; checkpoint saved in {run_dir}")


@contextlib.contextmanager
def pause_on_signals():
    """Turn SIGINT/SIGTERM into a polite request: the procedure finishes its current step,
    checkpoints, and returns. A second signal of the same kind stops at once."""
    received: list[int] = []

    def handler(signum, frame):
        # Ctrl-C under torchrun: SIGINT from the terminal, then SIGTERM from torchrun's agent;
        # only a repeat of the same signal means "stop now"
        if signum in received:
            raise KeyboardInterrupt
        received.append(signum)

    old = {}
    try:
        for sig in (signal.SIGINT, signal.SIGTERM):
            old[sig] = signal.signal(sig, handler)
    except ValueError:  # not the main thread: no signal handling
        pass
    try:
        yield received
    finally:
        for sig, h in old.items():
            signal.signal(sig, h)


# -- test hook ---------------------------------------------------------------------------
# MEMOMENTUM_TEST_KILL_AT=POINT:N makes the process SIGKILL itself at the N-th (1-based)
# occurrence of POINT in this process, so that tests can check that a run killed at any
# point resumes exactly (tests/test_resume.py). POINT is one of
#   step              right after a training step
#   epoch             after an epoch has finished, before its checkpoint is written
#   round             at a phase boundary (first phase -> inner round, round -> round,
#                     last round -> next outer loop or the end), after the checkpoint
#   checkpoint-write  inside a checkpoint write: half of the temporary file written,
#                     not yet renamed over checkpoint.pt
# Not for users. This is the only place that reads the variable.
KILL_AT_ENV = "MEMOMENTUM_TEST_KILL_AT"
KILL_POINTS = ("step", "epoch", "round", "checkpoint-write")


class KillHook:
    def __init__(self, spec: str):
        self.point, self.n, self.count = None, 0, 0
        if spec:
            point, _, n = spec.rpartition(":")
            if point not in KILL_POINTS or not n.isdigit() or int(n) < 1:
                raise ValueError(f"{KILL_AT_ENV}={spec!r}: expected POINT:N with POINT in {', '.join(KILL_POINTS)}")
            self.point, self.n = point, int(n)

    def __call__(self, point: str) -> None:
        if point == self.point:
            self.count += 1
            if self.count == self.n:
                os.kill(os.getpid(), signal.SIGKILL)

    def at(self, point: str):
        """A callable for one point, or None when the hook is not aimed at it."""
        return (lambda: self(point)) if point == self.point else None

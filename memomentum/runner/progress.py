"""The progress of a run on standard error: a live tqdm bar counting epochs on a terminal,
plain lines in a log (a file, a pipe, a Slurm job's output), both saying where the run
stands in the protocol."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

from ..base.checks import counted
from ..config import RunConfig, resolved

LOG_INTERVAL_S = 30.0  # a log gets a line at most this often, besides one per phase and round


class ProgressBar:
    """One tqdm bar counting epochs; its status line shows where the run is and how many
    training images per second it gets through, so that a slow machine shows at once."""

    def __init__(self, cfg: RunConfig, stream: TextIO | None = None):
        from tqdm.auto import tqdm

        self.cfg = cfg
        self.bar = tqdm(desc=_title(cfg), unit="epoch", file=stream or sys.stderr, dynamic_ncols=True)

    def steps_done(self, where: dict, done: int, total: int, images_per_s: float) -> None:
        self.bar.set_postfix_str(_steps_status(self.cfg, where, done, total, images_per_s))

    def epoch_done(self, row: dict, images_per_s: float, stopping: str | None = None) -> None:
        """After an epoch: where it was, its training set and validation accuracy, and where
        early stopping stands (``stopping``, after a first-phase epoch)."""
        self.bar.set_postfix_str(_epoch_status(row, images_per_s, stopping))
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()


class ProgressLines:
    """The bar's content as plain lines, for a log that is not a terminal: carriage-return
    updates would fill it with megabytes nobody can read (a full protocol runs some 1,000
    epochs). A line when the run starts, when a phase or round begins, at most every
    ``interval`` seconds in between, and when the run ends.

    ``clock`` gives seconds (``time.monotonic``); a test passes its own.
    """

    def __init__(
        self,
        cfg: RunConfig,
        stream: TextIO | None = None,
        *,
        interval: float = LOG_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.cfg, self.stream, self.interval, self.clock = cfg, stream or sys.stderr, interval, clock
        self.start = self.last = clock()
        self.epochs = 0
        self.phase: tuple | None = None  # (outer, inner) of the last epoch
        self.status = ""  # what a line would say now
        self.unwritten = False  # whether the status changed since the last line
        self._write(f"{_title(cfg)}: started")

    def steps_done(self, where: dict, done: int, total: int, images_per_s: float) -> None:
        self.status, self.unwritten = _steps_status(self.cfg, where, done, total, images_per_s), True
        if self.clock() - self.last >= self.interval:
            self._write_status()

    def epoch_done(self, row: dict, images_per_s: float, stopping: str | None = None) -> None:
        self.epochs += 1
        self.status, self.unwritten = _epoch_status(row, images_per_s, stopping), True
        phase = (row["outer"], row["inner"])
        new_phase, self.phase = phase != self.phase, phase
        if new_phase or self.clock() - self.last >= self.interval:
            self._write_status()

    def close(self) -> None:
        if self.unwritten:  # where the run ended, unless the last line said it already
            self._write_status()

    def _write_status(self) -> None:
        elapsed = _clock_time(self.clock() - self.start)
        epochs = counted(self.epochs, "epoch", grouped=False)
        self._write(f"{self.cfg.method} {self.cfg.dataset}: {epochs} in {elapsed} | {self.status}")
        self.unwritten = False

    def _write(self, line: str) -> None:
        self.last = self.clock()
        print(line, file=self.stream, flush=True)


def _title(cfg: RunConfig) -> str:
    return f"{cfg.method} {cfg.dataset} ({protocol_bounds(cfg)})"


def protocol_bounds(cfg: RunConfig) -> str:
    """How far the protocol can go: a run's length is only known at its end (early
    stopping, rounds that stop without gain), so the bar names the bounds."""
    epochs = counted(resolved(cfg.epochs), "epoch", grouped=False)
    if cfg.method == "ce":
        return f"one phase of at most {epochs}"
    inner = resolved(cfg.max_inner_loop)
    rounds = inner - 1 if cfg.mode == "benchmark" else inner
    outer = counted(resolved(cfg.max_outer_loop), "outer loop", grouped=False)
    return f"at most {outer} of a first phase and {counted(rounds, 'round', grouped=False)}, {epochs} each"


def _where(d: dict) -> str:
    return f"outer {d['outer']} " + ("first phase" if d["inner"] == 0 else f"round {d['inner']}")


def _steps_status(cfg: RunConfig, where: dict, done: int, total: int, images_per_s: float) -> str:
    """Inside an epoch: where, how far through the epoch, and the speed."""
    return (
        f"{_where(where)} | epoch {where['epoch']}/{cfg.epochs} "
        f"{100 * done / max(total, 1):.0f}% | {images_per_s:,.0f} img/s"
    )


def _epoch_status(row: dict, images_per_s: float, stopping: str | None) -> str:
    return (
        f"{_where(row)} | train {row['n_train']} | val {row['val_accuracy']:.2f}% | "
        + (f"{stopping} | " if stopping else "")
        + f"{images_per_s:,.0f} img/s"
    )


def _clock_time(seconds: float) -> str:
    """Elapsed time as tqdm writes it: m:ss, or h:mm:ss from an hour on."""
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def is_live(stream: TextIO) -> bool:
    """Whether ``stream`` shows a live bar: a terminal, or a Jupyter kernel's output (where
    tqdm.auto draws a widget). Anything else is a log, kept line by line."""
    isatty = getattr(stream, "isatty", None)
    try:
        if isatty is not None and isatty():
            return True
    except ValueError:  # a closed stream
        return False
    return type(stream).__module__.startswith("ipykernel")


def progress_bar(cfg: RunConfig, stream: TextIO | None = None) -> ProgressBar | ProgressLines | None:
    """The run's progress on ``stream`` (standard error): a live bar on a terminal, plain
    lines in a log; None when ``cfg.progress`` is off."""
    if not cfg.progress:
        return None
    stream = stream or sys.stderr
    return ProgressBar(cfg, stream) if is_live(stream) else ProgressLines(cfg, stream)

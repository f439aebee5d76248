"""A grid of runs: every combination of ``memomentum run`` options given as comma-separated
lists (``--seed 1,2,3 --method memomentum,ce``), each cell an ordinary run directory under
the grid's folder, named by the settings that vary (``method-ce_seed-2``).

Cells run as their own ``memomentum run`` processes, ``jobs`` at a time, the CPU's cores
shared out between them (the thread count is part of a run's numerics, so it is fixed by the
command, never by the load). The same grid started again trains nothing that finished and
resumes the unfinished cells from their checkpoints; SIGINT or SIGTERM pauses every running
cell (each writes its checkpoint) and starts no new one; a cell that fails is reported with
its one-line reason while the others go on. At the end :func:`memomentum.table.write_tables`
gathers the finished cells. ``--print-commands`` gives one command per cell instead, for a
scheduler (a Slurm job array, GNU parallel).
"""
from __future__ import annotations

import itertools
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .runner import outputs

LOGS = ".logs"  # the cells' output, beside (not inside) their run directories


@dataclass(frozen=True)
class Cell:
    """One combination: ``options`` are ``(flag, value)`` pairs (value None for a switch)."""

    name: str
    options: tuple[tuple[str, str | None], ...]

    def argv(self) -> list[str]:
        return [part for flag, value in self.options for part in ((flag,) if value is None else (flag, value))]


def expand(options: list[tuple[str, list[str | None]]]) -> list[Cell]:
    """The cartesian product of the options' values, in the order given (the last option
    varies fastest); each cell is named by the options with more than one value."""
    varying = [flag for flag, values in options if len(values) > 1]
    cells = []
    for combo in itertools.product(*(values for _, values in options)):
        chosen = tuple((flag, value) for (flag, _), value in zip(options, combo))
        parts = [f"{flag.lstrip('-')}-{_name_part(value)}" for flag, value in chosen if flag in varying]
        cells.append(Cell("_".join(parts) or "run", chosen))
    return cells


def _name_part(value: str | None) -> str:
    text = "on" if value is None else Path(value).name if "/" in value else value
    return "".join(c if c.isalnum() or c in ".-" else "-" for c in text)


def state(run_dir: Path) -> str:
    """``done`` (a summary), ``unfinished`` (a checkpoint to resume) or ``new``."""
    if (run_dir / outputs.SUMMARY).is_file():
        return "done"
    return "unfinished" if (run_dir / outputs.CHECKPOINT).is_file() else "new"


def command(cell: Cell, run_dir: Path, *, threads: int | None = None, quiet: bool = False) -> list[str]:
    """The ``memomentum run`` command line of a cell: the whole run, or its resumption."""
    head = ["memomentum", "run"]
    extra = (["--threads", str(threads)] if threads is not None else []) + (["--quiet"] if quiet else [])
    if state(run_dir) == "unfinished":
        return [*head, "--resume", str(run_dir), *extra]
    return [*head, *cell.argv(), "--out", str(run_dir), *extra]


def shell_line(argv: list[str]) -> str:
    return " ".join(shlex.quote(a) for a in argv)


@dataclass
class Outcome:
    done: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # cell -> its one-line reason
    paused: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # finished before this call

    @property
    def exit_code(self) -> int:
        return 143 if self.paused else 1 if self.failed else 0


def run_cells(cells: list[Cell], grid_dir: Path, *, jobs: int, threads: int | None,
              say: Callable[[str], None] = print) -> Outcome:
    """Run the cells ``jobs`` at a time (see the module's docstring); returns what happened."""
    outcome = Outcome()
    pending = []
    for cell in cells:
        (outcome.skipped if state(grid_dir / cell.name) == "done" else pending).append(cell)
    logs = grid_dir / LOGS
    logs.mkdir(parents=True, exist_ok=True)
    running: dict[str, tuple[subprocess.Popen, float]] = {}
    stop: list[int] = []
    asked: set[str] = set()  # the cells told to pause
    previous = {s: signal.signal(s, lambda signum, _: stop.append(signum)) for s in (signal.SIGINT, signal.SIGTERM)}
    wall: list[float] = []  # seconds each cell finished in this call took
    total = len(cells)
    try:
        while pending or running:
            while pending and len(running) < jobs and not stop:
                cell = pending.pop(0)
                argv = command(cell, grid_dir / cell.name, threads=threads, quiet=True)
                with open(logs / f"{cell.name}.log", "a") as log:
                    proc = subprocess.Popen([sys.executable, "-m", "memomentum", *argv[1:]], stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True)
                running[cell.name] = (proc, time.monotonic())
                say(_progress(outcome, running, pending, total, wall, jobs, f"{cell.name}: started"))
            if stop:
                for name, (proc, _) in running.items():
                    if name not in asked and proc.poll() is None:
                        proc.send_signal(signal.SIGTERM)  # once: a second SIGTERM would stop it at once
                        asked.add(name)
            time.sleep(0.2)
            for name, (proc, started) in list(running.items()):
                code = proc.poll()
                if code is None:
                    continue
                del running[name]
                if code == 0:
                    outcome.done.append(name)
                    wall.append(time.monotonic() - started)
                    what = f"{name}: done in {wall[-1]:.0f} s"
                elif code in (130, 143, -signal.SIGTERM, -signal.SIGINT) and stop:
                    outcome.paused.append(name)
                    what = f"{name}: paused (its checkpoint is kept)"
                else:
                    outcome.failed[name] = _last_line(logs / f"{name}.log") or f"exit status {code}"
                    what = f"{name}: failed: {outcome.failed[name]}"
                say(_progress(outcome, running, pending, total, wall, jobs, what))
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    outcome.paused += [cell.name for cell in pending] if stop else []
    return outcome


def _last_line(log: Path) -> str:
    lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("memomentum: error:")]
    return (errors or lines or [""])[-1].removeprefix("memomentum: error: ")


def _progress(outcome: Outcome, running: dict, pending: list, total: int, wall: list[float], jobs: int,
              what: str) -> str:
    finished = len(outcome.done) + len(outcome.skipped)
    eta = ""
    if wall and (pending or running):
        left = len(pending) + len(running)
        eta = f", about {_duration(sum(wall) / len(wall) * left / jobs)} left"
    return f"grid: {finished}/{total} done, {len(running)} running, {len(pending)} waiting{eta} | {what}"


def _duration(seconds: float) -> str:
    minutes, s = divmod(int(seconds), 60)
    hours, m = divmod(minutes, 60)
    return f"{hours} h {m:02d} min" if hours else f"{m} min {s:02d} s" if m else f"{s} s"

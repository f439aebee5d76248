"""A grid of runs: every combination of ``memomentum run`` options given as comma-separated
lists (``--seed 1,2,3 --method memomentum,ce``), each cell an ordinary run directory under
the grid's folder, named by the settings that vary (``method-ce_seed-2``).

Cells run as their own ``memomentum run`` processes, ``jobs`` at a time, the CPU's cores
shared out between them (the thread count is part of a run's numerics, so it is fixed by the
command, never by the load). The same grid started again trains nothing that finished and
resumes the unfinished cells from their checkpoints; SIGINT or SIGTERM pauses every running
cell (each writes its checkpoint) and starts no new one; a cell that fails is reported with
its one-line reason while the others go on. At the end :func:`memomentum.entrypoints.table.write_tables`
gathers the finished cells, and :func:`write_seed_consensus` combines the verdicts of the cells
that differ only by seed. ``--print-commands`` gives one command per cell instead, for a
scheduler (a Slurm job array, GNU parallel).

``--gpus 0,1 --cells-per-gpu K`` spreads the local cells over GPUs (:class:`GpuSlots`): at most
``len(gpus) * K`` run at once, each in a free slot taken when it starts and given back when it
ends, its process started with ``CUDA_VISIBLE_DEVICES`` set to its one GPU (which the cell sees
as ``cuda:0``; its ``--device`` is left as given).

When each local cell gets two or more threads and the cells' threads fit in the cores this
process may use, each cell also gets a block of cores of its own (:class:`CoreBlocks`, its
process's CPU affinity): the cells do not compete for cores, and each one, running one thread
per core it may use, binds its threads (:func:`memomentum.training.threads.bind_openmp_threads`).

A grid is refused before any cell runs, in one sentence, for a folder that cannot hold it
(:func:`check_grid_folder`), a bad value (named with its cell) or two cells that are one run
(:func:`check_cells`, :func:`refuse_repeated_cells`) and GPU settings that do not fit
(:func:`gpu_slots`); :func:`run_cells` and :mod:`memomentum.entrypoints.slurm`'s ``submit_cells``
check the folder and the cells' run directories themselves.

``--launcher slurm`` submits the cells that have not finished as one Slurm job array instead
(:mod:`memomentum.entrypoints.slurm`).
"""

from __future__ import annotations

import itertools
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..base.cores import core_ids
from ..base.errors import InputError
from ..runner import files

if TYPE_CHECKING:
    from ..config import RunConfig

DEFAULT_FOLDER = "runs/grid"  # the grid's folder when none is named (memomentum grid --out)
LAUNCHERS = ("local", "slurm")  # the cells run here, or go to Slurm as one job array (memomentum.entrypoints.slurm)
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
    # a path's name part is its file name, or the whole path where two of the option's
    # files have one name (a/data.csv, b/data.csv: a-data.csv, b-data.csv, never one folder)
    whole = {
        flag
        for flag, values in options
        if len({_name_part(v) for v in values}) < len({_name_part(v, whole=True) for v in values})
    }
    cells = []
    for combo in itertools.product(*(values for _, values in options)):
        chosen = tuple((flag, value) for (flag, _), value in zip(options, combo))
        parts = [
            f"{flag.lstrip('-')}-{_name_part(value, whole=flag in whole)}" for flag, value in chosen if flag in varying
        ]
        cells.append(Cell("_".join(parts) or "run", chosen))
    return cells


def _name_part(value: str | None, whole: bool = False) -> str:
    text = "on" if value is None else value.strip("/") if whole else Path(value).name if "/" in value else value
    return "".join(c if c.isalnum() or c in ".-" else "-" for c in text)


def state(run_dir: Path) -> str:
    """``done`` (a summary), ``unfinished`` (a checkpoint to resume) or ``new``."""
    if files.is_finished(run_dir):
        return "done"
    return "unfinished" if (run_dir / files.CHECKPOINT).is_file() else "new"


def command(
    cell: Cell, run_dir: Path, *, threads: int | None = None, quiet: bool = False, cwd: Path | str | None = None
) -> list[str]:
    """The ``memomentum run`` command line of a cell: the whole run, or its resumption (a
    relative ``run_dir`` is looked at from ``cwd``, the folder the command will run in)."""
    head = ["memomentum", "run"]
    extra = (["--threads", str(threads)] if threads is not None else []) + (["--quiet"] if quiet else [])
    if state(Path(cwd or ".", run_dir)) == "unfinished":
        return [*head, "--resume", str(run_dir), *extra]
    return [*head, *cell.argv(), "--out", str(run_dir), *extra]


def shell_line(argv: list[str]) -> str:
    return " ".join(shlex.quote(a) for a in argv)


# -- launch checks: what a grid is refused for, before any of its cells runs ----------------------


def check_grid_folder(out: str | Path) -> None:
    """``out`` must name a folder (or a path where one can be made): not a file, not below one,
    not a run directory itself (the table would take that run for one of the cells)."""
    if not str(out).strip():
        raise InputError(f"--out '' names no folder; give the grid's folder (default {DEFAULT_FOLDER})")
    out = Path(out)
    for place in (out, *out.parents):
        if place.is_dir():
            break
        if place.exists() or place.is_symlink():
            raise InputError(
                f"--out {out}: {place} is {'a file' if place == out else 'a file, not a folder'}; "
                f"the grid's folder holds one run directory per cell: give the path of a folder"
            )
    if out.is_dir() and any((out / name).exists() for name in (files.CONFIG, files.CHECKPOINT)):
        raise InputError(
            f"--out {out} is a run directory (it holds {files.CONFIG}): the grid's folder holds one "
            f"run directory per cell, so give a folder of its own"
        )


def check_cells(cells: list[Cell], grid_dir: Path, config_of: Callable[[list[str]], RunConfig]) -> list[RunConfig]:
    """Every cell's settings, checked before any cell runs: ``config_of`` makes a cell's
    configuration from its ``memomentum run`` options (as the command line reads them); a bad
    value is refused naming its cell, and so are two cells that are one run
    (:func:`refuse_repeated_cells`). Returns the cells' configurations."""
    configs = []
    for cell in cells:
        try:
            cfg = config_of([*cell.argv(), "--out", str(grid_dir / cell.name)])
        except InputError as e:
            raise InputError(f"cell {cell.name}: {e}") from None
        configs.append(cfg)
    refuse_repeated_cells(cells, configs)
    return configs


def refuse_repeated_cells(cells: list[Cell], configs: list[RunConfig] | None = None) -> None:
    """Two cells that are the same run (``--seed 1,01``, ``--noise-rate 0.2,0.20``,
    ``--dataset data.csv,./data.csv``), or two cells with one run directory, are refused
    before anything runs: the second would train the same run again or fail late. Without
    ``configs`` (the cells' configurations, in order) only the run directories are compared."""
    runs: dict[str, Cell] = {}  # the run a cell is (its settings, paths resolved) -> the first cell that is it
    names: dict[str, Cell] = {}  # a run directory's name -> the first cell that has it
    for i, cell in enumerate(cells):
        if configs is not None:
            cfg = configs[i]
            run = json.dumps({**cfg.to_dict(), **cfg.resolved_paths(), "out": None}, sort_keys=True, default=str)
            if run in runs:
                raise InputError(
                    f"cells {runs[run].name} and {cell.name} are the same run: "
                    f"{_differences(runs[run], cell)} mean the same; give each value once"
                )
            runs[run] = cell
        if cell.name in names:
            raise InputError(
                f"cells of {_differences(names[cell.name], cell)} would share the run directory "
                f"{cell.name}; give values whose names differ"
            )
        names[cell.name] = cell


def _differences(a: Cell, b: Cell) -> str:
    """What differs between two cells' options, in words: ``--seed '1' and '01'``."""
    return "; ".join(f"{flag} {x!r} and {y!r}" for (flag, x), (_, y) in zip(a.options, b.options) if x != y)


def gpu_slots(
    gpus: str | None, cells_per_gpu: int | None = None, *, launcher: str = "local", print_commands: bool = False
) -> GpuSlots | None:
    """The GPU slots of ``--gpus`` and ``--cells-per-gpu`` (None without GPUs), or an
    :class:`InputError`: GPUs place the cells this machine runs, ``cells_per_gpu`` needs them."""
    if gpus is None:
        if cells_per_gpu is not None:
            raise InputError(f"--cells-per-gpu {cells_per_gpu} needs --gpus LIST (the GPUs to spread the cells over)")
        return None
    if launcher == "slurm" or print_commands:
        raise InputError(
            "--gpus places the cells this machine runs: leave it out with "
            + ("--launcher slurm (use --gpus-per-task)" if launcher == "slurm" else "--print-commands")
        )
    per_gpu = 1 if cells_per_gpu is None else cells_per_gpu
    if per_gpu < 1:
        raise InputError(f"--cells-per-gpu {per_gpu}: expected a whole number of at least 1")
    return GpuSlots(parse_gpus(gpus), per_gpu)


# -- GPUs ---------------------------------------------------------------------------------


def gpu_count() -> int:
    """The GPUs torch sees here (torch imported only now; replaced by the tests)."""
    import torch

    return torch.cuda.device_count()


def parse_gpus(text: str) -> list[int]:
    """``--gpus``: comma-separated GPU indices, each among the GPUs torch sees, or ``auto`` for
    every one of them; an :class:`InputError` names a bad value."""
    if text.strip() == "auto":
        count = gpu_count()
        if count < 1:
            raise InputError(
                "--gpus auto found no GPU (torch sees none): leave out --gpus to run the cells "
                "on this machine's CPU cores"
            )
        return list(range(count))
    gpus: list[int] = []
    for item in (part.strip() for part in text.split(",")):
        if not item.isdigit():
            raise InputError(
                f"--gpus {text!r}: {item!r} is not a GPU index (a whole number of at least 0); "
                f"give a comma-separated list like 0,1 or auto"
            )
        if int(item) in gpus:
            raise InputError(
                f"--gpus {text!r}: GPU {int(item)} is listed twice (use --cells-per-gpu for more cells on one GPU)"
            )
        gpus.append(int(item))
    count = gpu_count()
    missing = [gpu for gpu in gpus if gpu >= count]
    if missing:
        raise InputError(
            f"--gpus {text!r}: GPU {missing[0]} is not present (torch sees {count} "
            f"GPU{'' if count == 1 else 's'}{': 0 to ' + str(count - 1) if count else ''})"
        )
    return gpus


class GpuSlots:
    """``per_gpu`` slots on each GPU: :meth:`take` gives the index of a GPU with a free slot (the
    one with most free slots, the first listed among equals) or None when every slot is taken,
    :meth:`give` returns a slot of that GPU."""

    def __init__(self, gpus: list[int], per_gpu: int = 1):
        if not gpus or per_gpu < 1:
            raise ValueError("GpuSlots needs at least one GPU and one slot per GPU")
        self.per_gpu = per_gpu
        self.free = dict.fromkeys(gpus, per_gpu)  # GPU -> its free slots, in the order given

    @property
    def size(self) -> int:
        return len(self.free) * self.per_gpu

    def take(self) -> int | None:
        gpu = max(self.free, key=lambda g: self.free[g])  # max keeps the first of equals
        if self.free[gpu] == 0:
            return None
        self.free[gpu] -= 1
        return gpu

    def give(self, gpu: int) -> None:
        if self.free.get(gpu, self.per_gpu) >= self.per_gpu:
            raise ValueError(f"GPU {gpu} has no slot taken to give back")
        self.free[gpu] += 1

    def describe(self) -> str:
        n, k = len(self.free), self.per_gpu
        return (
            f"{n} GPU{'s' if n > 1 else ''} x {k} cell{'s' if k > 1 else ''} "
            f"(GPU{'s' if n > 1 else ''} {','.join(map(str, self.free))})"
        )


class CoreBlocks:
    """Disjoint blocks of ``threads`` cores, one for each of ``jobs`` cells running at once:
    :meth:`take` gives a free block (None when none is free), :meth:`give` returns it."""

    def __init__(self, cores: list[int], threads: int, jobs: int):
        if threads < 1 or jobs < 1 or threads * jobs > len(cores):
            raise ValueError(f"{jobs} blocks of {threads} cores do not fit in {len(cores)} cores")
        cores = sorted(cores)
        self.free = [tuple(cores[i * threads : (i + 1) * threads]) for i in range(jobs)]

    def take(self) -> tuple[int, ...] | None:
        return self.free.pop(0) if self.free else None

    def give(self, block: tuple[int, ...]) -> None:
        self.free.append(block)


def core_blocks(threads: int | None, jobs: int) -> CoreBlocks | None:
    """Blocks of cores for local cells of ``threads`` threads each, or None where they do not
    apply: one thread a cell (nothing to bind), the thread count left to each cell, more threads
    than cores, or no CPU affinity on this system."""
    if threads is None or threads < 2 or not hasattr(os, "sched_setaffinity"):
        return None
    cores = core_ids()
    return CoreBlocks(cores, threads, jobs) if threads * jobs <= len(cores) else None


def gpu_environment(gpu: int) -> dict[str, str]:
    """A cell's environment on GPU ``gpu`` (an index among the GPUs this process sees): only that
    GPU visible. Under a ``CUDA_VISIBLE_DEVICES`` of this process the index names its entry."""
    seen = [d.strip() for d in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if d.strip()]
    return {**os.environ, "CUDA_VISIBLE_DEVICES": seen[gpu] if gpu < len(seen) else str(gpu)}


@dataclass
class Outcome:
    done: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # cell -> its one-line reason
    paused: list[str] = field(default_factory=list)
    skipped: list[Cell] = field(default_factory=list)  # finished before this call

    @property
    def exit_code(self) -> int:
        return 143 if self.paused else 1 if self.failed else 0


def run_cells(
    cells: list[Cell],
    grid_dir: Path,
    *,
    jobs: int,
    threads: int | None,
    say: Callable[[str], None] = print,
    gpus: GpuSlots | None = None,
    cores: CoreBlocks | None = None,
) -> Outcome:
    """Run the cells ``jobs`` at a time, each in a slot of ``gpus`` if given (at most its size at
    once) and on a block of ``cores`` if given (see the module's docstring); returns what happened."""
    check_grid_folder(grid_dir)
    refuse_repeated_cells(cells)
    jobs = min(jobs, gpus.size) if gpus else jobs
    outcome = Outcome()
    pending: list[Cell] = []
    for cell in cells:
        (outcome.skipped if state(grid_dir / cell.name) == "done" else pending).append(cell)
    (grid_dir / LOGS).mkdir(parents=True, exist_ok=True)
    running: dict[str, _Running] = {}
    stop: list[int] = []
    asked: set[str] = set()  # the cells told to pause
    previous = {s: signal.signal(s, lambda signum, _: stop.append(signum)) for s in (signal.SIGINT, signal.SIGTERM)}
    wall: list[float] = []  # seconds each cell finished in this call took
    total = len(cells)
    try:
        while running or (pending and not stop):  # once stopped, the waiting cells stay waiting
            while pending and len(running) < jobs and not stop:
                gpu = gpus.take() if gpus else None
                if gpus and gpu is None:
                    break  # every GPU slot is taken
                cell, block = pending.pop(0), cores.take() if cores else None
                running[cell.name] = _Running(_start(cell, grid_dir, threads, gpu, block), time.monotonic(), gpu, block)
                where = ("" if gpu is None else f" on GPU {gpu}") + (
                    "" if block is None else f" on cores {_cores(block)}"
                )
                say(_progress(outcome, running, pending, total, wall, jobs, f"{cell.name}: started{where}"))
            if stop:
                for name, cell_run in running.items():
                    if name not in asked and cell_run.process.poll() is None:
                        cell_run.process.send_signal(signal.SIGTERM)  # once: a second SIGTERM would stop it at once
                        asked.add(name)
            time.sleep(0.2)
            for name, cell_run in list(running.items()):
                code = cell_run.process.poll()
                if code is None:
                    continue
                del running[name]
                if gpus and cell_run.gpu is not None:
                    gpus.give(cell_run.gpu)
                if cores and cell_run.cores is not None:
                    cores.give(cell_run.cores)
                what = _record_end(
                    outcome,
                    name,
                    code,
                    bool(stop),
                    time.monotonic() - cell_run.started,
                    wall,
                    grid_dir / LOGS / f"{name}.log",
                )
                say(_progress(outcome, running, pending, total, wall, jobs, what))
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    outcome.paused += [cell.name for cell in pending] if stop else []
    return outcome


@dataclass
class _Running:
    process: subprocess.Popen
    started: float
    gpu: int | None
    cores: tuple[int, ...] | None


def _cores(block: tuple[int, ...]) -> str:
    return (
        f"{block[0]}-{block[-1]}" if list(block) == list(range(block[0], block[-1] + 1)) else ",".join(map(str, block))
    )


def _record_end(
    outcome: Outcome, name: str, code: int, stopping: bool, seconds: float, wall: list[float], log: Path
) -> str:
    """Enter a cell's end in ``outcome``; returns the line that says so."""
    if code == 0:
        outcome.done.append(name)
        wall.append(seconds)
        return f"{name}: done in {seconds:.0f} s"
    if code in (130, 143, -signal.SIGTERM, -signal.SIGINT) and stopping:
        outcome.paused.append(name)
        return f"{name}: paused (its checkpoint is kept)"
    outcome.failed[name] = _last_line(log) or f"exit status {code}"
    return f"{name}: failed: {outcome.failed[name]}"


def _start(
    cell: Cell, grid_dir: Path, threads: int | None, gpu: int | None, cores: tuple[int, ...] | None = None
) -> subprocess.Popen:
    """A cell's ``memomentum run`` process, its output in its log; on GPU ``gpu`` and confined
    to ``cores`` where they are not None."""
    argv = command(cell, grid_dir / cell.name, threads=threads, quiet=True)
    with open(grid_dir / LOGS / f"{cell.name}.log", "a") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "memomentum", *argv[1:]],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=None if gpu is None else gpu_environment(gpu),
            preexec_fn=None if cores is None else lambda: os.sched_setaffinity(0, cores),
        )


def _last_line(log: Path) -> str:
    lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("memomentum: error:")]
    return (errors or lines or [""])[-1].removeprefix("memomentum: error: ")


def _progress(
    outcome: Outcome, running: dict, pending: list, total: int, wall: list[float], jobs: int, what: str
) -> str:
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


# -- consensus of the seeds ------------------------------------------------------------------

CONSENSUS_FOLDER = "consensus"  # GRID_DIR/consensus[/GROUP]/consensus.csv


def seed_groups(cells: list[Cell]) -> dict[str, list[Cell]]:
    """The cells that differ only by ``--seed``, grouped (two cells or more a group), each group
    named by its cells' name without the seed part ("" when only the seed varies)."""
    groups: dict[tuple, list[Cell]] = {}
    for cell in cells:
        others = tuple(option for option in cell.options if option[0] != "--seed")
        groups.setdefault(others, []).append(cell)
    named = {}
    for members in groups.values():
        if len(members) > 1:
            named["_".join(p for p in members[0].name.split("_") if not p.startswith("seed-"))] = members
    return named


def write_seed_consensus(cells: list[Cell], grid_dir: Path, say: Callable[[str], None] = print) -> list[Path]:
    """For each group of finished cells that differ only by seed, their consensus
    (:func:`memomentum.entrypoints.consensus.write_consensus`) in ``GRID_DIR/consensus/GROUP``; a group whose
    runs cannot be combined (synthetic noise drawn from each seed: no ``--noise-seed``) is said
    in one line and skipped. Returns the files written."""
    from .consensus import write_consensus

    written = []
    for group, members in seed_groups(cells).items():
        done = [grid_dir / cell.name for cell in members if state(grid_dir / cell.name) == "done"]
        if len(done) < 2:
            continue
        try:
            path = write_consensus(done, grid_dir / CONSENSUS_FOLDER / group)
        except InputError as e:
            say(f"grid: no consensus of the cells {group or 'seed-*'}: {e}")
            continue
        say(f"grid: consensus of {len(done)} seeds{' of ' + group if group else ''} in {path}")
        written.append(path)
    return written

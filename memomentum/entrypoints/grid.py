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

``--launcher slurm`` submits the cells that have not finished as one Slurm job array through
submitit (:func:`submit_cells`): each array task runs its cell's ``memomentum run`` command as a
subprocess (:class:`CellTask`), into the same run directory as a local cell, and
``memomentum table GRID_DIR`` gathers them once the jobs are done.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..base.cores import core_ids
from ..runner import files

LOGS = ".logs"  # the cells' output, beside (not inside) their run directories
SLURM_FOLDER = ".slurm"  # submitit's folder (job scripts, pickles, logs) by default, beside them too


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


# -- GPUs ---------------------------------------------------------------------------------


def gpu_count() -> int:
    """The GPUs torch sees here (torch imported only now; replaced by the tests)."""
    import torch

    return torch.cuda.device_count()


def parse_gpus(text: str) -> list[int]:
    """``--gpus``: comma-separated GPU indices, each among the GPUs torch sees, or ``auto`` for
    every one of them; an :class:`InputError` names a bad value."""
    from ..base.errors import InputError

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
    from ..base.errors import InputError
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


# -- Slurm -------------------------------------------------------------------------------

SUBMITIT_MISSING = '--launcher slurm submits through submitit: pip install "memomentum[slurm]"'


def import_submitit():
    """The submitit module, or an :class:`InputError` telling how to install it."""
    from ..base.errors import InputError

    try:
        import submitit
    except ImportError:
        raise InputError(SUBMITIT_MISSING) from None
    return submitit


@dataclass(frozen=True)
class CellTask:
    """One array task: the cell's ``memomentum run`` command, run as a subprocess in ``cwd``
    (the folder the grid was submitted from, so that a relative ``--out`` names the same
    directory). The command is chosen when the task starts, as the local launcher chooses it:
    nothing for a finished cell, ``--resume`` for one with a checkpoint (a task requeued after
    preemption goes on from where it stopped), else the whole run. Picklable (submitit sends it
    to the node as a file)."""

    cell: Cell
    run_dir: str
    threads: int | None
    cwd: str

    def __call__(self) -> str:
        run_dir = Path(self.cwd, self.run_dir)
        if state(run_dir) == "done":
            print(f"grid: cell {self.cell.name} had finished before: not trained again", flush=True)
            return self.run_dir
        argv = command(self.cell, Path(self.run_dir), threads=self.threads, quiet=True, cwd=self.cwd)
        print(shell_line(argv), flush=True)
        # SIGUSR2 is submitit's warning before the time limit (Slurm sends it to every process
        # of the task): ignored by the run, whose default action would be to die at once
        proc = subprocess.Popen([sys.executable, "-m", "memomentum", *argv[1:]], cwd=self.cwd, preexec_fn=_ignore_usr2)
        try:
            code = proc.wait()
        except BaseException:  # submitit's handler ends the task (time limit near, preemption)
            _pause(proc)
            raise
        if code != 0:
            raise RuntimeError(f"cell {self.cell.name}: memomentum run exited with status {code} (its output is above)")
        return self.run_dir


def run_task(task: CellTask) -> str:
    """What each array task calls (submitit's ``map_array`` passes it one :class:`CellTask`)."""
    return task()


def _ignore_usr2() -> None:
    signal.signal(signal.SIGUSR2, signal.SIG_IGN)


def _pause(proc: subprocess.Popen, wait_s: float = 60.0) -> None:
    """Ask the run to pause (it finishes its step and writes its checkpoint). SIGINT, not
    SIGTERM: Slurm may have sent the run a SIGTERM already, and a second one stops it at once."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=wait_s)


@dataclass
class Submission:
    skipped: list[Cell] = field(default_factory=list)  # finished before this call: not submitted
    jobs: list[Any] = field(default_factory=list)  # submitit jobs, one per submitted cell, in order
    cells: list[str] = field(default_factory=list)  # the submitted cells, in the jobs' order
    folder: Path | None = None  # submitit's folder (logs)

    def arrays(self) -> list[tuple[str, int]]:
        """``(array job id, number of tasks)`` per job array, in submission order (a Slurm
        array's tasks have ids ``ARRAY_TASK``; an executor without arrays gives one job each)."""
        counts: dict[str, int] = {}
        for job in self.jobs:
            array_id = str(job.job_id).split("_")[0]
            counts[array_id] = counts.get(array_id, 0) + 1
        return list(counts.items())


NO_SLURM = (
    "--launcher slurm found no Slurm here (no srun on PATH): submit from a machine of the cluster, or "
    "print the cells' commands with --print-commands"
)


def default_executor(folder: Path):
    """submitit's executor for the cluster it finds, refused unless that is Slurm (elsewhere
    submitit would run the cells as processes of this machine, which end with this command)."""
    from ..base.errors import InputError

    submitit = import_submitit()
    if submitit.AutoExecutor.which() != "slurm":
        raise InputError(NO_SLURM)
    return submitit.AutoExecutor(folder=folder)


def submit_cells(
    cells: list[Cell],
    grid_dir: Path,
    *,
    parameters: dict[str, Any],
    threads: int | None,
    folder: Path,
    executor_factory: Callable[[Path], Any] = default_executor,
    cwd: Path | None = None,
) -> Submission:
    """Submit the cells that have not finished as one job array: ``executor_factory(folder)``
    gives a submitit executor (an ``AutoExecutor``'s by default), ``parameters`` go to its
    ``update_parameters`` (``slurm_array_parallelism`` defaults to every task at once).
    Returns at once, the jobs queued; nothing is submitted when every cell had finished."""
    submission = Submission(folder=folder)
    pending: list[Cell] = []
    for cell in cells:
        (submission.skipped if state(grid_dir / cell.name) == "done" else pending).append(cell)
    if not pending:
        return submission
    workdir = str(cwd or os.getcwd())
    tasks = [CellTask(cell, str(grid_dir / cell.name), threads, workdir) for cell in pending]
    executor = executor_factory(folder)
    folder.mkdir(parents=True, exist_ok=True)
    executor.update_parameters(**{"slurm_array_parallelism": len(tasks), **parameters})
    submission.jobs = executor.map_array(run_task, tasks)  # one job array
    submission.cells = [cell.name for cell in pending]
    return submission

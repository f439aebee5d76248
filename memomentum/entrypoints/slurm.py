"""The grid's Slurm launcher (``memomentum grid --launcher slurm``): the cells of a grid
(:mod:`memomentum.entrypoints.grid`) that have not finished go out as one Slurm job array
through submitit (:func:`submit_cells`), once the launcher's settings are checked
(:func:`check_launcher`). Each array task runs its cell's ``memomentum run`` command as a
subprocess (:class:`CellTask`), into the same run directory as a local cell, and
``memomentum table GRID_DIR`` gathers them once the jobs are done.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..base.errors import InputError
from .grid import LAUNCHERS, Cell, check_grid_folder, command, refuse_repeated_cells, shell_line, state

SLURM_FOLDER = ".slurm"  # submitit's folder (job scripts, pickles, logs) by default, beside the run directories
SUBMITIT_MISSING = '--launcher slurm submits through submitit: pip install "memomentum[slurm]"'


def import_submitit():
    """The submitit module, or an :class:`InputError` telling how to install it."""
    try:
        import submitit
    except ImportError:
        raise InputError(SUBMITIT_MISSING) from None
    return submitit


def check_launcher(
    launcher: str,
    *,
    slurm_options: Sequence[str] = (),
    print_commands: bool = False,
    time: int | None = None,
    gpus_per_task: int | None = None,
    mem_gb: float | None = None,
) -> None:
    """The launcher and its settings: ``slurm_options``, the Slurm options given, are refused
    with the local launcher (it has no use for them); the Slurm launcher needs submitit and a
    time limit per task (``time``, minutes), and prints no commands."""
    if launcher not in LAUNCHERS:
        raise InputError(f"unknown launcher {launcher!r}; choose one of {', '.join(LAUNCHERS)}")
    if launcher == "local":
        if slurm_options:
            raise InputError(
                f"{slurm_options[0]} is a Slurm option: it needs --launcher slurm (the local launcher runs the "
                f"cells on this machine, --jobs at a time)"
            )
        return
    if print_commands:
        raise InputError(
            "--print-commands prints the cells' commands instead of running or submitting them; "
            "leave out --launcher slurm"
        )
    import_submitit()
    if time is None:
        raise InputError(
            "--launcher slurm needs --time MINUTES, each task's time limit (submitit's own default "
            "would stop a task after 5 minutes)"
        )
    if gpus_per_task is not None and gpus_per_task < 0:
        raise InputError(f"--gpus-per-task {gpus_per_task}: expected a whole number of at least 0")
    if mem_gb is not None and not mem_gb > 0:
        raise InputError(f"--mem-gb {mem_gb:g}: expected a positive number of GB")


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
    check_grid_folder(grid_dir)
    refuse_repeated_cells(cells)
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

"""``memomentum grid``: every ``memomentum run`` option as a comma-separated list, one cell per
combination (:mod:`memomentum.entrypoints.grid`), run here ``--jobs`` at a time or submitted
to Slurm (:mod:`memomentum.entrypoints.slurm`), then tabulated. The launch checks are the
grid's own; this module reads the options and says what happens."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from ..base.errors import InputError
from ..entrypoints import grid, slurm
from .parser import Parser, number, positive_int
from .run import IMAGE_OPTIONS, RUN_IMAGE_OPTIONS, RUN_OPTIONS, run_config, standalone_parser

# `memomentum grid` takes every run option, each value a comma-separated list (one cell per
# value); --milestones keeps its own commas (one value for every cell).
GRID_OPTIONS = {
    flag: kw for flag, kw in {**RUN_OPTIONS, **IMAGE_OPTIONS, **RUN_IMAGE_OPTIONS}.items() if flag != "--out"
}
_NOT_A_LIST = ("--milestones",)
# The options of `memomentum grid --launcher slurm`, each one of submitit's parameters
# (update_parameters): refused with the local launcher, which has no use for them.
SLURM_OPTIONS: dict[str, dict[str, Any]] = {
    "--partition": dict(metavar="NAME", help="the Slurm partition (default: the cluster's default)"),
    "--time": dict(
        type=positive_int,
        metavar="MINUTES",
        help="each task's time limit in minutes (required); "
        "a cell stopped by it keeps its checkpoint, and submitting the grid again resumes it",
    ),
    "--gpus-per-task": dict(type=int, metavar="N", help="GPUs per task (default 0)"),
    "--cpus-per-task": dict(
        type=positive_int,
        metavar="N",
        help="CPU cores per task, each cell's --threads "
        "unless the grid sets --threads (default: this machine's cores divided by --jobs, as "
        "the local launcher divides them, at least 1; with --threads, the largest value)",
    ),
    "--mem-gb": dict(type=number, metavar="GB", help="memory per task in GB (default: the cluster's default)"),
    "--slurm-array-parallelism": dict(
        type=positive_int, metavar="N", help="tasks of the array running at once (default: all)"
    ),
    "--slurm-folder": dict(
        metavar="DIR",
        help=f"submitit's folder: job scripts and each task's log (default GRID_DIR/{slurm.SLURM_FOLDER})",
    ),
}


def add_parser(sub) -> Parser:
    """`memomentum grid`: every run option as a list, then how the cells run."""
    g = sub.add_parser(
        "grid",
        help="run every combination of run options given as comma-separated lists, then "
        "tabulate them (mean ± std over seeds)",
    )
    for flag, kw in GRID_OPTIONS.items():
        g.add_argument(flag, default=None, **_grid_kwargs(flag, kw))
    g.add_argument(
        "--out",
        default=grid.DEFAULT_FOLDER,
        metavar="GRID_DIR",
        help=f"the grid's folder: one run directory per cell, and table.md/csv/json/html (default {grid.DEFAULT_FOLDER})",
    )
    g.add_argument(
        "--jobs",
        type=positive_int,
        default=None,
        metavar="N",
        help="cells run at once on this machine, the CPU cores shared out between them (default 1; "
        "with --gpus, every GPU slot)",
    )
    g.add_argument(
        "--gpus",
        default=None,
        metavar="LIST",
        help="spread the cells over these GPUs (comma-separated indices, or auto: every GPU torch "
        "sees), each cell's process seeing only its GPU (as cuda:0; give the cells --device cuda "
        "or auto); at most GPUs x --cells-per-gpu cells at once (default: no GPU placement)",
    )
    g.add_argument(
        "--cells-per-gpu",
        type=int,
        default=None,
        metavar="K",
        help="cells sharing one GPU at once, with --gpus (default 1)",
    )
    g.add_argument(
        "--print-commands",
        action="store_true",
        help="print one memomentum run command per cell (for a scheduler) instead of running them",
    )
    g.add_argument(
        "--launcher",
        choices=grid.LAUNCHERS,
        default="local",
        help="local (default): run the cells on this machine, --jobs at a time; slurm: submit the "
        "unfinished cells as one Slurm job array through submitit (pip install "
        '"memomentum[slurm]") and return at once; memomentum table GRID_DIR gathers them',
    )
    slurm_group = g.add_argument_group("Slurm (--launcher slurm)")
    for flag, kw in SLURM_OPTIONS.items():
        slurm_group.add_argument(flag, default=None, **kw)
    return g


def _grid_kwargs(flag: str, kw: dict) -> dict:
    if kw.get("action") == "store_const":  # a switch: on for every cell, or off
        return dict(dest=f"grid_{flag.lstrip('-').replace('-', '_')}", action="store_true", help=kw.get("help"))
    help_text = kw.get("help", "") + ("" if flag in _NOT_A_LIST else " (a comma-separated list: one cell per value)")
    return dict(dest=kw["dest"], metavar=kw.get("metavar", "VALUES"), help=help_text.replace("%", "%%"))


def _grid_options(args) -> list[tuple[str, list[str | None]]]:
    options: list[tuple[str, list[str | None]]] = []
    for flag, kw in GRID_OPTIONS.items():
        spec = _grid_kwargs(flag, kw)
        value = getattr(args, spec["dest"])
        if spec.get("action") == "store_true":
            if value:
                options.append((flag, [None]))
        elif value is not None:
            values = [value] if flag in _NOT_A_LIST else [v.strip() for v in value.split(",")]
            if not all(values):
                raise InputError(f"{flag} {value!r} has an empty item; give a comma-separated list like 1,2,3")
            twice = next((v for i, v in enumerate(values) if v in values[:i]), None)
            if twice is not None:
                raise InputError(f"{flag} {value!r} lists {twice} twice; give each value once")
            options.append((flag, values))
    return options


def command(args) -> int:
    from ..entrypoints import table
    from ..training.threads import available_cores

    slurm.check_launcher(
        args.launcher,
        slurm_options=[flag for flag in SLURM_OPTIONS if getattr(args, _dest(flag)) is not None],
        print_commands=args.print_commands,
        time=args.time,
        gpus_per_task=args.gpus_per_task,
        mem_gb=args.mem_gb,
    )
    slots = grid.gpu_slots(  # refused before any cell is checked
        args.gpus, args.cells_per_gpu, launcher=args.launcher, print_commands=args.print_commands
    )
    grid.check_grid_folder(args.out)
    out = Path(args.out)
    cells = grid.expand(_grid_options(args))
    run_parser = standalone_parser()
    grid.check_cells(cells, out, lambda argv: run_config(run_parser.parse_args(argv))[0])
    if args.print_commands:
        for cell in cells:
            print(grid.shell_line(grid.command(cell, out / cell.name)))
        return 0
    jobs = min(args.jobs or slots.size, slots.size) if slots else args.jobs or 1
    fixed_threads = any(flag == "--threads" for flag, _ in cells[0].options)
    threads = None if fixed_threads else max(1, available_cores() // jobs)
    if args.launcher == "slurm":  # nothing is made here before Slurm is found
        return _submit_grid(args, cells, out, threads)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError(f"cannot create the grid's folder {out}: {e.strerror or e}") from None
    print(_grid_first_line(cells, out, jobs, slots, threads), file=sys.stderr)
    outcome = grid.run_cells(
        cells,
        out,
        jobs=jobs,
        threads=threads,
        gpus=slots,
        cores=grid.core_blocks(threads, jobs),
        say=lambda line: print(line, file=sys.stderr, flush=True),
    )
    if outcome.skipped:
        print(
            f"grid: {len(outcome.skipped)} cell{'s' if len(outcome.skipped) > 1 else ''} had finished before: "
            f"not trained again",
            file=sys.stderr,
        )
    for name, reason in outcome.failed.items():
        print(f"grid: cell {name} failed: {reason} (its output: {out / grid.LOGS / (name + '.log')})", file=sys.stderr)
    if outcome.paused:
        print(
            f"grid: paused; {len(outcome.paused)} cell{'s' if len(outcome.paused) > 1 else ''} left: run the same "
            f"command again to go on",
            file=sys.stderr,
        )
    if outcome.done or outcome.skipped:
        grid.write_seed_consensus(cells, out, say=lambda line: print(line, file=sys.stderr))
        print(table.write_tables(out), end="")
    return outcome.exit_code


def _grid_first_line(cells, out: Path, jobs: int, slots, threads: int | None) -> str:
    """What the grid is about to do; the threads are those of the cells it trains (a cell
    that finished before keeps the count it ran with, which may be another)."""
    to_train = sum(grid.state(out / cell.name) != "done" for cell in cells)
    line = f"grid: {len(cells)} cell{'s' if len(cells) > 1 else ''} in {out}"
    if not to_train:
        return line + ", every one finished before: nothing to train"
    if to_train < len(cells):
        line += f", {to_train} to train"
    line += f", {jobs} at a time" + (f", {slots.describe()}" if slots else "")
    return line + ("" if threads is None else f", {threads} CPU thread{'s' if threads > 1 else ''} each")


def _dest(flag: str) -> str:
    return flag.lstrip("-").replace("-", "_")


def _submit_grid(args, cells, out: Path, threads: int | None) -> int:
    """`memomentum grid --launcher slurm`: one job array of the unfinished cells; returns at once."""
    from ..entrypoints import table

    cpus = args.cpus_per_task
    if cpus is None:
        fixed = [int(value) for cell in cells for flag, value in cell.options if flag == "--threads"]
        cpus = max(fixed) if fixed else threads
    parameters = {
        "name": "memomentum-grid",
        "timeout_min": args.time,
        "cpus_per_task": cpus,
        "nodes": 1,
        "tasks_per_node": 1,
        "mem_gb": args.mem_gb,
        "gpus_per_node": args.gpus_per_task or None,  # one task per node: the task's GPUs
        "slurm_partition": args.partition,
        "slurm_array_parallelism": args.slurm_array_parallelism,
    }
    folder = Path(args.slurm_folder) if args.slurm_folder else out / slurm.SLURM_FOLDER
    submission = slurm.submit_cells(
        cells,
        out,
        parameters={k: v for k, v in parameters.items() if v is not None},
        threads=None if threads is None else cpus,
        folder=folder,
        executor_factory=_executor_factory,
    )
    if submission.skipped:
        n = len(submission.skipped)
        print(
            f"grid: {n} cell{'s' if n > 1 else ''} had finished before: not submitted again"
            if submission.jobs
            else f"grid: all {n} cells had finished before: nothing to submit",
            file=sys.stderr,
        )
    if not submission.jobs:
        print(table.write_tables(out), end="")
        return 0
    for array_id, n in submission.arrays():
        print(
            f"grid: submitted job {array_id}: {n} task{'s' if n > 1 else ''} (one per cell), "
            f"logs in {submission.folder}"
        )
    print(
        f"grid: when the jobs have finished, gather the table with: "
        f"{grid.shell_line(['memomentum', 'table', str(out)])}"
    )
    return 0


def _executor_factory(folder: Path):  # replaced by the tests (submitit's local executor)
    return slurm.default_executor(folder)

"""Command line: ``memomentum run``, ``predict``, ``grid``, ``table``, ``consensus``, ``report``, ``review``, ``prepare`` and ``noise``.

User mistakes print one line starting with ``memomentum: error:`` and exit with status 2;
an interrupted run exits with 130 (SIGINT) or 143 (SIGTERM) after saving a checkpoint.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import numpy as np

from ..base.checks import counted
from ..base.errors import InputError, TrainingDiverged
from ..config import DEVICES, METHODS, MODES, RunConfig
from ..data.registry import dataset_help
from ..runner import files

# Every command in a few words, for the message of a command line that names none.
COMMANDS_IN_SHORT = {
    "run": "train and write a run directory",
    "predict": "classify new data with a finished run",
    "grid": "many runs at once",
    "table": "mean ± std of finished runs",
    "consensus": "combine the verdicts of several runs",
    "report": "a run's page",
    "prepare": "pack an image dataset",
    "noise": "add label noise to a file",
    "review": "look at the suspects in the browser, decide, export",
}


class _Parser(argparse.ArgumentParser):
    commands: dict[str, _Parser]  # the top parser's: each command's parser (build_parser)
    quiet = False  # refuse by raising _Unparsed, printing nothing (_quietly_parsed)

    def error(self, message: str):  # one line, exit 2 (argparse's default prints usage too)
        if self.quiet:
            raise _Unparsed(message)
        if message == "the following arguments are required: command":
            listed = [f"{name} ({what})" for name, what in COMMANDS_IN_SHORT.items()]
            message = f"choose a command: {', '.join(listed[:-1])} or {listed[-1]}"
        self.exit(2, f"memomentum: error: {message} (see {self.prog} --help)\n")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return value


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


def _milestones(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(t) for t in text.split(",") if t.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated epochs like 40,80, got {text!r}") from None


# CLI option -> RunConfig field, for the options of `memomentum run`.
RUN_OPTIONS: dict[str, dict[str, Any]] = {
    "--dataset": dict(
        dest="dataset",
        help=dataset_help(default=RunConfig.dataset),
    ),
    "--label-column": dict(
        dest="label_column",
        metavar="NAME",
        help="for a table (.csv, .parquet, parquet shards): the column holding each row's label (default label); numeric columns are the features (or one column of images), a column split (train/test) marks a test set",
    ),
    "--data-dir": dict(
        dest="data_dir",
        help="directory with the dataset's files (fashion-mnist default: /usr/share/datasets/fashion-mnist; clothing1m: the release's root, default ./data/clothing1m)",
    ),
    "--noise-type": dict(
        dest="noise_type", help="none, symmetric, pairflip, instance (default), asymmetric (CIFAR-10), transition"
    ),
    "--noise-rate": dict(
        dest="noise_rate",
        type=_float,
        help="noise rate in [0, 1) for symmetric, pairflip, instance and asymmetric noise (default 0.4); refused with none, transition (the matrix sets the rates) and --human-labels",
    ),
    "--transition": dict(
        dest="transition_path",
        metavar="PATH",
        help="K x K transition matrix (.npy/.csv, row = clean class) for --noise-type transition",
    ),
    "--human-labels": dict(
        dest="human_labels_path",
        metavar="PATH",
        help="CIFAR-10N/100N label file (.pt or .npy): use these real noisy labels",
    ),
    "--human-labels-key": dict(
        dest="human_labels_key",
        metavar="KEY",
        help="which labels of the CIFAR-N file (default worse_label / noisy_label)",
    ),
    "--seed": dict(
        dest="seed",
        type=int,
        help="seed for noise (unless --noise-seed), split, initialisation and data order (default 1)",
    ),
    "--noise-seed": dict(
        dest="noise_seed",
        type=int,
        help="seed for synthetic noise alone (default: --seed); fixed while --seed changes, the noisy labels stay the same (for memomentum consensus)",
    ),
    "--method": dict(dest="method", choices=METHODS, help="memomentum (default) or ce (cross-entropy baseline)"),
    "--mode": dict(
        dest="mode",
        choices=MODES,
        help="benchmark (default: the reference main.py, noisy validation and early stopping) or clothing1m (the reference Clothing.py: clean validation set, per-class checkpoints, class-weighted loss, per-class extraction; --epochs is then epochs per round, --max-inner-loop the number of rounds)",
    ),
    "--model": dict(
        dest="model",
        help="lenet, resnet18, resnet34, resnet50, mlp (default: per dataset; resnet50 for clothing1m, resnet18 for image folders)",
    ),
    "--epochs": dict(dest="epochs", type=_positive_int, help="epochs per phase (reference: 100)"),
    "--max-outer-loop": dict(dest="max_outer_loop", type=_positive_int, help="outer loops (reference: 3)"),
    "--max-inner-loop": dict(
        dest="max_inner_loop",
        type=_positive_int,
        help="inner loop bound: at most this minus one inner rounds (reference: 20)",
    ),
    "--lr": dict(dest="lr", type=_float, help="learning rate (reference: 0.01)"),
    "--momentum": dict(dest="momentum", type=_float, help="SGD momentum (default 0.9)"),
    "--batch-size": dict(dest="batch_size", type=_positive_int, help="batch size (reference: 128)"),
    "--weight-decay": dict(dest="weight_decay", type=_float, help="weight decay (default 1e-4; clothing1m mode 1e-3)"),
    "--val-fraction": dict(
        dest="val_fraction", type=_float, help="share of the training set held out as noisy validation (default 0.1)"
    ),
    "--milestones": dict(
        dest="milestones",
        type=_milestones,
        help="learning-rate milestones in epochs (default 40,80 within each inner round; clothing1m mode 10,20 across each outer loop)",
    ),
    "--reference-quirks": dict(
        dest="reference_quirks",
        action="store_const",
        const=True,
        help='reproduce the reference implementation\'s quirks (docs/method.md, "Reference quirks")',
    ),
    "--device": dict(dest="device", choices=DEVICES, help="auto (default), cpu or cuda"),
    "--threads": dict(
        dest="threads",
        type=_positive_int,
        help="CPU threads (default: every available core, 1 for the mlp); results depend on this count, never on the machine's load",
    ),
    "--compile": dict(dest="compile", action="store_const", const=True, help="torch.compile the model (GPU)"),
    "--cuda-graph": dict(
        dest="cuda_graph",
        action="store_const",
        const=True,
        help="record the training step once as a CUDA graph and replay it for every full batch (GPU, one process; exact: the last short batch runs as usual)",
    ),
    "--track-difficulty": dict(
        dest="track_difficulty",
        action="store_const",
        const=True,
        help="with known true labels (synthetic noise): record when the first-phase network settles on each example's true label (one prediction pass per first-phase epoch) and report the confident set's recall per difficulty quintile in summary.json",
    ),
    "--out": dict(
        dest="out", metavar="DIR", help="run directory (default runs/<dataset>-<noise>-<rate>-seed<seed>-<method>)"
    ),
}
# Options of image-file datasets (clothing1m, image folders), shared by `run` and `prepare`.
IMAGE_OPTIONS: dict[str, dict[str, Any]] = {
    "--image-size": dict(
        dest="image_size",
        type=_positive_int,
        metavar="PIXELS",
        help="side images are resized to when packed (default 256, as Clothing1M's protocol)",
    ),
    "--cache-dir": dict(
        dest="cache_dir",
        metavar="DIR",
        help="where the packed images go (default: DATA/.memomentum-cache if writable, else ~/.cache/memomentum)",
    ),
    "--store-format": dict(
        dest="store_format",
        choices=("jpeg", "raw"),
        help="jpeg (default: re-encoded, ~8x smaller) or raw (uint8, no decoding)",
    ),
    "--workers": dict(
        dest="workers",
        type=int,
        metavar="N",
        help="processes that pack and read images (default: one per core, at most 16; 0 reads in the main process)",
    ),
    "--train-set": dict(
        dest="train_set",
        choices=("noisy", "clean"),
        help="clothing1m: noisy (default, 1M images with noisy labels) or clean (47,570)",
    ),
}
RUN_IMAGE_OPTIONS: dict[str, dict[str, Any]] = {
    "--pretrained": dict(
        dest="pretrained",
        metavar="PATH|none",
        help="ImageNet weights in torchvision's format (default: looked for in $TORCH_HOME/hub/checkpoints); none trains from scratch",
    ),
    "--stream": dict(
        dest="stream",
        action="store_const",
        const=True,
        help="read images from disk in batches even if they fit in memory",
    ),
    "--no-stream": dict(
        dest="stream",
        action="store_const",
        const=False,
        help="hold the decoded images in memory even if they are large",
    ),
}


def build_parser() -> _Parser:
    parser = _Parser(
        prog="memomentum", description="Me-Momentum: learn from noisy labels and find the confident examples."
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    p = sub.add_parser("run", help="train with Me-Momentum (or the CE baseline) and write a run directory")
    for flag, kw in RUN_OPTIONS.items():
        p.add_argument(flag, default=None, **kw)
    images = p.add_argument_group("image files (clothing1m, image folders)")
    for flag, kw in {**IMAGE_OPTIONS, **RUN_IMAGE_OPTIONS}.items():
        images.add_argument(flag, default=None, **kw)
    p.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run")
    p.add_argument("--overwrite", action="store_true", help="replace an existing run in --out")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")

    n = sub.add_parser("noise", help="add synthetic label noise to a label file")
    n.add_argument("--labels", required=True, metavar="PATH", help="clean labels, .npy or .csv (one per line)")
    n.add_argument("--out", required=True, metavar="PATH", help="where to write the noisy labels (.npy or .csv)")
    n.add_argument("--noise-type", required=True, help="symmetric, pairflip, instance, asymmetric, transition")
    n.add_argument(
        "--noise-rate",
        type=_float,
        default=None,
        help="noise rate in [0, 1) (default 0); not for --noise-type transition, whose matrix sets the rates",
    )
    n.add_argument("--seed", type=int, default=1)
    n.add_argument("--num-classes", type=_positive_int, help="K (default: largest label + 1)")
    n.add_argument(
        "--features", metavar="PATH", help="for instance noise: .npy array with one row (or image) per label"
    )
    n.add_argument("--transition", metavar="PATH", help="for --noise-type transition: K x K matrix (.npy/.csv)")

    pr = sub.add_parser("prepare", help="pack an image dataset once (run does it on first use)")
    pr.add_argument(
        "--dataset",
        required=True,
        help=dataset_help(images_only=True),
    )
    pr.add_argument(
        "--data-dir", dest="data_dir", default=None, help="clothing1m: the release's root (default ./data/clothing1m)"
    )
    for flag, kw in IMAGE_OPTIONS.items():
        pr.add_argument(flag, default=None, **kw)
    pr.add_argument(
        "--label-column",
        dest="label_column",
        default=None,
        metavar="NAME",
        help="a table of images: the column holding each row's label (default label)",
    )
    pr.add_argument("--quiet", action="store_true", help="no progress bar")

    rp = sub.add_parser(
        "report",
        help="write RUN_DIR/report.html, one self-contained page that shows a finished run "
        "(needs matplotlib: pip install memomentum[plots])",
    )
    rp.add_argument("run_dir", metavar="RUN_DIR", help="a directory written by memomentum run")

    g = _grid_parser(sub)

    t = sub.add_parser(
        "table",
        help="tabulate the finished runs below GRID_DIR: mean ± std over seeds per setting "
        "and method (writes table.md, table.csv, table.json, table.html)",
    )
    t.add_argument("grid_dir", metavar="GRID_DIR", help="a folder holding run directories (e.g. a grid's --out)")
    pp = _add_predict_parser(sub)
    c = _add_consensus_parser(sub)
    rv = _review_parser(sub)
    parser.commands = {
        "run": p,
        "noise": n,
        "prepare": pr,
        "report": rp,
        "grid": g,
        "table": t,
        "predict": pp,
        "consensus": c,
        "review": rv,
    }  # main() blames unknown options on their command
    return parser


def _add_consensus_parser(sub) -> _Parser:
    c = sub.add_parser(
        "consensus",
        help="combine the verdicts of finished runs on the same data and labels (several "
        "seeds) into DIR/consensus.csv, per example (docs/consensus.md)",
    )
    c.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="directories written by memomentum run, finished")
    c.add_argument("--out", required=True, metavar="DIR", help="the folder consensus.csv is written to")
    return c


def _cmd_consensus(args) -> int:
    from ..entrypoints.consensus import consensus_table, describe, write_consensus

    table = consensus_table(args.run_dirs)
    path = write_consensus(args.run_dirs, args.out, table=table)
    print(f"{describe(table, len(args.run_dirs))}; written to {path}")
    return 0


def _add_predict_parser(sub) -> _Parser:
    pp = sub.add_parser(
        "predict",
        help="classify new data with a finished run's best model, exactly as the run "
        "predicts, and write one row per example (docs/predict.md)",
    )
    pp.add_argument("run_dir", metavar="RUN_DIR", help="a directory written by memomentum run, finished")
    pp.add_argument(
        "--dataset",
        required=True,
        nargs="+",
        metavar="DATA",
        help="new data of the kind the run trained on: a table (.csv, .parquet) with the run's feature "
        "columns (matched by name), a folder of images (read in batches; class sub-folders give "
        "labels), image files, a .txt file listing image files, a table with an image column (.csv, "
        ".parquet, parquet shards; for a run on image files), or an .npz file (x, optional y)",
    )
    pp.add_argument(
        "--out",
        required=True,
        metavar="FILE",
        help="the predictions: FILE.csv, or FILE.parquet; columns row (or file), predicted_label, "
        "confidence, and given_label, is_label_issue, label_quality where the data have labels",
    )
    pp.add_argument("--probabilities", action="store_true", help="add one column p_<class> per class")
    pp.add_argument(
        "--label-column",
        metavar="NAME",
        help="for a table: the column of given labels to compare with (default: the run's label column, "
        "when the table has it)",
    )
    pp.add_argument("--quiet", action="store_true", help="no progress bar")
    return pp


def _cmd_predict(args) -> int:
    from ..entrypoints.predictor import predict_to_file

    print(
        predict_to_file(
            args.run_dir,
            args.dataset,
            args.out,
            probabilities=args.probabilities,
            label_column=args.label_column,
            progress=not args.quiet,
        )
    )
    return 0


def _review_parser(sub) -> _Parser:
    rv = sub.add_parser(
        "review",
        help="look at a run's examples in the browser, suspects first, decide (kept in "
        "RUN_DIR/review.csv) and export the cleaned data (docs/review.md; needs "
        'pip install "memomentum[review]")',
    )
    rv.add_argument(
        "run_dirs",
        nargs="+",
        metavar="RUN_DIR",
        help="a finished run (several runs of the same data: ranked by their consensus)",
    )
    rv.add_argument(
        "--export",
        metavar="OUT",
        help="write the run's data with the decisions of review.csv applied "
        "(a .csv/.parquet table, a .csv of file,label for image files, "
        "an .npz for arrays) and OUT's corrections file, then stop",
    )
    rv.add_argument(
        "--host", default="127.0.0.1", help="the address to listen on (default 127.0.0.1: this machine only)"
    )
    rv.add_argument("--port", type=int, default=0, help="the port (default 0: a free one; the URL is printed)")
    rv.add_argument("--no-browser", dest="browser", action="store_false", help="print the URL, do not open a browser")
    return rv


def _cmd_review(args) -> int:
    from ..entrypoints.review import export, serve

    if args.export:
        if len(args.run_dirs) > 1:
            raise InputError("--export writes the data of one run; give one RUN_DIR")
        print(export(args.run_dirs[0], args.export))
        return 0
    if not 0 <= args.port <= 65535:
        raise InputError(f"--port {args.port} is not a port; give 1 to 65535, or 0 for a free one")
    return serve(args.run_dirs, host=args.host, port=args.port, open_browser=args.browser)


def _grid_parser(sub) -> _Parser:
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
        default="runs/grid",
        metavar="GRID_DIR",
        help="the grid's folder: one run directory per cell, and table.md/csv/json/html (default runs/grid)",
    )
    g.add_argument(
        "--jobs",
        type=_positive_int,
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
        choices=("local", "slurm"),
        default="local",
        help="local (default): run the cells on this machine, --jobs at a time; slurm: submit the "
        "unfinished cells as one Slurm job array through submitit (pip install "
        '"memomentum[slurm]") and return at once; memomentum table GRID_DIR gathers them',
    )
    slurm = g.add_argument_group("Slurm (--launcher slurm)")
    for flag, kw in SLURM_OPTIONS.items():
        slurm.add_argument(flag, default=None, **kw)
    return g


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
        type=_positive_int,
        metavar="MINUTES",
        help="each task's time limit in minutes (required); "
        "a cell stopped by it keeps its checkpoint, and submitting the grid again resumes it",
    ),
    "--gpus-per-task": dict(type=int, metavar="N", help="GPUs per task (default 0)"),
    "--cpus-per-task": dict(
        type=_positive_int,
        metavar="N",
        help="CPU cores per task, each cell's --threads "
        "unless the grid sets --threads (default: this machine's cores divided by --jobs, as "
        "the local launcher divides them, at least 1; with --threads, the largest value)",
    ),
    "--mem-gb": dict(type=_float, metavar="GB", help="memory per task in GB (default: the cluster's default)"),
    "--slurm-array-parallelism": dict(
        type=_positive_int, metavar="N", help="tasks of the array running at once (default: all)"
    ),
    "--slurm-folder": dict(
        metavar="DIR", help="submitit's folder: job scripts and each task's log (default GRID_DIR/.slurm)"
    ),
}


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


def _cmd_grid(args) -> int:
    from ..entrypoints import grid, table
    from ..training.threads import available_cores

    _check_launcher(args)
    slots = _gpu_slots(args)  # refused before any cell is checked
    if not args.out.strip():
        raise InputError("--out '' names no folder; give the grid's folder (default runs/grid)")
    out = Path(args.out)
    _check_grid_folder(out)
    cells = grid.expand(_grid_options(args))
    run_parser = build_parser().commands["run"]
    configs = []
    for cell in cells:  # every cell's settings are checked before any runs
        try:
            cfg, _ = _run_config(run_parser.parse_args([*cell.argv(), "--out", str(out / cell.name)]))
            cfg.validate()
        except InputError as e:
            raise InputError(f"cell {cell.name}: {e}") from None
        configs.append(cfg)
    _refuse_repeated_cells(cells, configs)
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
    from ..entrypoints import grid

    to_train = sum(grid.state(out / cell.name) != "done" for cell in cells)
    line = f"grid: {len(cells)} cell{'s' if len(cells) > 1 else ''} in {out}"
    if not to_train:
        return line + ", every one finished before: nothing to train"
    if to_train < len(cells):
        line += f", {to_train} to train"
    line += f", {jobs} at a time" + (f", {slots.describe()}" if slots else "")
    return line + ("" if threads is None else f", {threads} CPU thread{'s' if threads > 1 else ''} each")


def _check_grid_folder(out: Path) -> None:
    """``--out`` must be a folder (or a path where one can be made): not a file, not below
    one, not a run directory itself (the table would take that run for one of the cells)."""
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


def _refuse_repeated_cells(cells, configs: list[RunConfig]) -> None:
    """Two cells that are the same run (``--seed 1,01``, ``--noise-rate 0.2,0.20``,
    ``--dataset data.csv,./data.csv``), or two cells with one run directory, are refused
    before anything runs: the second would train the same run again or fail late."""
    runs: dict = {}  # the run a cell is (its settings, paths resolved) -> the first cell that is it
    names: dict = {}  # a run directory's name -> the first cell that has it
    for cell, cfg in zip(cells, configs):
        run = json.dumps({**cfg.to_dict(), **cfg.resolved_paths(), "out": None}, sort_keys=True, default=str)
        if run in runs:
            raise InputError(
                f"cells {runs[run].name} and {cell.name} are the same run: "
                f"{_differences(runs[run], cell)} mean the same; give each value once"
            )
        if cell.name in names:
            raise InputError(
                f"cells of {_differences(names[cell.name], cell)} would share the run directory "
                f"{cell.name}; give values whose names differ"
            )
        runs[run], names[cell.name] = cell, cell


def _differences(a, b) -> str:
    """What differs between two cells' options, in words: ``--seed '1' and '01'``."""
    return "; ".join(f"{flag} {x!r} and {y!r}" for (flag, x), (_, y) in zip(a.options, b.options) if x != y)


def _gpu_slots(args):
    """The GPU slots of ``--gpus``/``--cells-per-gpu`` (None without --gpus), or an InputError."""
    from ..entrypoints import grid

    if args.gpus is None:
        if args.cells_per_gpu is not None:
            raise InputError(
                f"--cells-per-gpu {args.cells_per_gpu} needs --gpus LIST (the GPUs to spread the cells over)"
            )
        return None
    if args.launcher == "slurm" or args.print_commands:
        raise InputError(
            "--gpus places the cells this machine runs: leave it out with "
            + ("--launcher slurm (use --gpus-per-task)" if args.launcher == "slurm" else "--print-commands")
        )
    per_gpu = 1 if args.cells_per_gpu is None else args.cells_per_gpu
    if per_gpu < 1:
        raise InputError(f"--cells-per-gpu {per_gpu}: expected a whole number of at least 1")
    return grid.GpuSlots(grid.parse_gpus(args.gpus), per_gpu)


def _check_launcher(args) -> None:
    given = [flag for flag in SLURM_OPTIONS if getattr(args, _dest(flag)) is not None]
    if args.launcher == "local":
        if given:
            raise InputError(
                f"{given[0]} is a Slurm option: it needs --launcher slurm (the local launcher runs the "
                f"cells on this machine, --jobs at a time)"
            )
        return
    if args.print_commands:
        raise InputError(
            "--print-commands prints the cells' commands instead of running or submitting them; "
            "leave out --launcher slurm"
        )
    from ..entrypoints.grid import import_submitit

    import_submitit()
    if args.time is None:
        raise InputError(
            "--launcher slurm needs --time MINUTES, each task's time limit (submitit's own default "
            "would stop a task after 5 minutes)"
        )
    if args.gpus_per_task is not None and args.gpus_per_task < 0:
        raise InputError(f"--gpus-per-task {args.gpus_per_task}: expected a whole number of at least 0")
    if args.mem_gb is not None and not args.mem_gb > 0:
        raise InputError(f"--mem-gb {args.mem_gb:g}: expected a positive number of GB")


def _dest(flag: str) -> str:
    return flag.lstrip("-").replace("-", "_")


def _submit_grid(args, cells, out: Path, threads: int | None) -> int:
    """`memomentum grid --launcher slurm`: one job array of the unfinished cells; returns at once."""
    from ..entrypoints import grid, table

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
    folder = Path(args.slurm_folder) if args.slurm_folder else out / grid.SLURM_FOLDER
    submission = grid.submit_cells(
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
    from ..entrypoints.grid import default_executor

    return default_executor(folder)


def _cmd_table(args) -> int:
    from ..entrypoints.table import write_tables

    print(write_tables(Path(args.grid_dir)), end="")
    return 0


def _run_config(args: argparse.Namespace) -> tuple[RunConfig, bool]:
    options = {**RUN_OPTIONS, **IMAGE_OPTIONS, **RUN_IMAGE_OPTIONS}.values()
    given = {kw["dest"]: getattr(args, kw["dest"]) for kw in options if getattr(args, kw["dest"]) is not None}
    if args.quiet:
        given["progress"] = False
    if args.resume:
        from ..runner.outputs import read_checkpoint
        from ..runner.rundir import check_run_dir

        if "out" in given and Path(given.pop("out")) != Path(args.resume):
            raise InputError("--resume names the run directory; do not pass --out as well")
        check_run_dir(Path(args.resume), resume=True, overwrite=args.overwrite)
        base = RunConfig.from_dict(read_checkpoint(Path(args.resume))["config"])
        return dataclasses.replace(base, **given, out=args.resume), True
    return RunConfig(**given), False


def _print_summary(summary: dict, run_dir) -> None:
    def pct(v):
        return "n/a" if v is None else f"{v:.2f}%"

    if summary["noise_type"] == "none":
        noise = "labels as given"
    else:
        rate = "" if summary.get("noise_rate") is None else f" {summary['noise_rate']:g}"
        noise = f"{summary['noise_type']} noise{rate} (realised {summary['realised_noise_rate']:.2f}%)"
    lines = [
        f"{summary['method']} on {summary['dataset']} ({summary['model']}), {noise}, seed {summary['seed']}",
        f"  test accuracy        {pct(summary['test_accuracy'])}  (at best {'clean' if summary.get('mode') == 'clothing1m' else 'noisy'}-validation accuracy {pct(summary['best_val_accuracy'])})",
    ]
    fc = summary["final_confident"]
    line = f"  confident examples   {fc['n_confident']} of {summary['n_train']}"
    if "label_precision" in fc:
        line += f", label precision {fc['label_precision']:.2f}% (noisy labels: {summary['noisy_label_precision']:.2f}%), recall {fc['label_recall']:.2f}%"
        if "n_known_labels" in summary:  # real noise: measured where the true label is known
            line += f" (on the {summary['n_known_labels']} training examples with a known true label)"
    lines.append(line)
    if summary.get("difficulty"):  # --track-difficulty: the final set's recall per difficulty quintile
        final = summary["difficulty"]["rounds"][-1]["recall"]
        lines.append(
            "  recall by difficulty  "
            + " / ".join("n/a" if v is None else f"{v:.1f}%" for v in final)
            + "  (quintiles of the correctly labelled examples, Q1 easiest to Q5 hardest)"
        )
    if summary.get("review"):  # trained on data exported by memomentum review
        r = summary["review"]
        lines.append(
            f"  reviewed data        {counted(r['corrected'], 'label')} corrected, "
            f"{counted(r['excluded'], 'example')} excluded by review ({r['corrections_file']})"
        )
    lines.append(f"  {summary['epochs_run']} epochs in {summary['wall_time_s']:.1f} s on {summary['device']}")
    if run_dir is not None:
        report = f", {files.REPORT}" if (Path(run_dir) / files.REPORT).exists() else ""
        lines.append(f"  results in {run_dir}/ (summary.json, examples.csv, history.csv, model.pt{report})")
    print("\n".join(lines))


def _cmd_run(args) -> int:
    from ..entrypoints.api import Interrupted, run
    from ..runner.rundir import resume_command
    from ..training import distributed

    cfg, resume = _run_config(args)
    main_process = distributed.is_main_process()  # under torchrun, rank 0 alone reports
    try:
        result = run(cfg, resume=resume, overwrite=args.overwrite)
    except Interrupted as e:
        code = 130 if e.signum == signal.SIGINT else 143
        if main_process:
            print(
                f"memomentum: interrupted by {signal.Signals(e.signum).name}; checkpoint saved. "
                f"Resume with: {resume_command(e.run_dir)}",
                file=sys.stderr,
            )
        return code
    except Exception as e:
        if distributed.environment() is None or not distributed.is_peer_failure(e):
            raise
        from ..entrypoints.api import default_run_dir

        print(
            f"memomentum: error: {distributed.lost_message(e)}; the last checkpoint is kept: resume with "
            f"torchrun ... {resume_command(Path(cfg.out) if cfg.out else default_run_dir(cfg))}",
            file=sys.stderr,
        )
        return 1
    if not main_process:
        return 0
    if args.json:
        print(json.dumps(result.summary, indent=2))
    else:
        _print_summary(result.summary, result.run_dir)
    return 0


def _refuse_same_file(out: str, given: str, option: str) -> None:
    """--out must not name an input: writing the noisy labels there would destroy it."""
    out_path, in_path = Path(out).expanduser(), Path(given).expanduser()
    same = out_path.resolve() == in_path.resolve() or (
        out_path.exists() and in_path.exists() and os.path.samefile(out_path, in_path)
    )
    if same:
        raise InputError(
            f"--out {out} is the file given to {option}; writing there would overwrite the input, "
            f"so choose another --out"
        )


def _cmd_noise(args) -> int:
    from ..noise.generators import make_noisy_labels_for_cli, read_labels, read_labels_matrix, write_labels

    _refuse_same_file(args.out, args.labels, "--labels")
    if args.features:
        _refuse_same_file(args.out, args.features, "--features")
    labels = read_labels(args.labels)
    k = args.num_classes or (int(labels.max()) + 1 if labels.size else 0)
    features = None
    if args.features:
        try:
            features = np.load(args.features, allow_pickle=False)
        except (OSError, ValueError) as e:
            raise InputError(f"cannot read the features file {args.features}: {e}") from None
    transition = read_labels_matrix(args.transition) if args.transition else None
    result = make_noisy_labels_for_cli(
        labels,
        noise_type=args.noise_type,
        noise_rate=args.noise_rate,
        seed=args.seed,
        num_classes=k,
        features=features,
        transition=transition,
    )
    write_labels(args.out, result.labels)
    print(
        f"wrote {result.labels.size} noisy labels to {args.out}; realised noise rate {100 * result.realised_rate:.2f}%"
    )
    return 0


def _cmd_prepare(args) -> int:
    from ..data import load_image_files, pack_image_files
    from ..store.packing import PackedImages

    given = {
        dest: getattr(args, dest)
        for dest in [kw["dest"] for kw in IMAGE_OPTIONS.values()] + ["label_column"]
        if getattr(args, dest) is not None
    }
    cfg = RunConfig(dataset=args.dataset, data_dir=args.data_dir, progress=not args.quiet, **given)
    cfg.validate()
    files = load_image_files(
        cfg.dataset,
        data_dir=cfg.data_dir,
        image_size=cfg.image_size,
        train_set=cfg.train_set,
        label_column=cfg.label_column,
        cache_dir=cfg.cache_dir,
    )
    if files is None:
        raise InputError(
            f"prepare packs image files: --dataset must be an image release (clothing1m, ...), a folder "
            f"of images with one sub-folder per class or a table of images, got {args.dataset!r}"
        )
    ds = pack_image_files(
        files, cache_dir=cfg.cache_dir, store_format=cfg.store_format, workers=cfg.workers, progress=cfg.progress
    )
    parts = [
        (name, x)
        for name, x in (("training", ds.x_train), ("validation", ds.x_val), ("test", ds.x_test))
        if isinstance(x, PackedImages)
    ]  # what pack_image_files gives, or None
    for name, x in parts:
        print(f"{name}: {len(x)} images of {x.shape[1]} x {x.shape[2]} in {x.directory}")
    return 0


def _cmd_report(args) -> int:
    from ..entrypoints.report import write_report

    print(write_report(args.run_dir))
    return 0


def main(argv: list[str] | None = None) -> int:
    if (sys.argv[1:] if argv is None else argv)[:1] == ["review"]:  # a local web server: no torch, no torchrun
        return _main(argv)
    _prefer_bound_spin(sys.argv[1:] if argv is None else argv)
    from ..training.distributed import messages_from_rank_zero

    with messages_from_rank_zero():
        code = _main(argv)
    if argv is None:  # the program itself (not a call from Python): a torchrun process ends here
        _end_distributed_process(code)
    return code


def _prefer_bound_spin(argv: list[str]) -> None:
    """A ``run`` whose threads will be bound one per core waits with the long spin
    (:func:`memomentum.training.threads.prefer_bound_spin`). Decided before anything loads
    torch, from the command line as the parser reads it (abbreviated options included), and
    never refused here: a command line the parser refuses is left to :func:`_main`."""
    if not argv or argv[0] != "run" or not set(argv).isdisjoint({"-h", "--help"}):
        return
    args = _quietly_parsed(argv)
    if args is None or args.resume:  # a resumed run takes its settings from its directory
        return
    from ..training import threads

    threads.prefer_bound_spin(args.threads, args.device)


class _Unparsed(Exception):
    pass


def _quietly_parsed(argv: list[str]) -> argparse.Namespace | None:
    """``argv`` parsed as :func:`_main` will parse it, or None where the parser would refuse it
    (nothing printed: the refusal comes later, once)."""
    parser = build_parser()
    for part in (parser, *parser.commands.values()):
        part.quiet = True
    try:
        return parser.parse_args(argv)
    except (_Unparsed, SystemExit):
        return None


def _end_distributed_process(code: int) -> None:
    """End a process of a multi-process run at once (:func:`memomentum.training.distributed.end_process`)."""
    from ..training.distributed import end_process

    try:
        end_process(code)
    except InputError:  # torchrun's variables are broken: the run was refused, nothing to end early
        return


def _main(argv: list[str] | None) -> int:
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # blamed on the command, so that the hint names its own --help
        parser.commands[args.command].error(f"unrecognized arguments: {' '.join(unknown)}")
    try:
        return {
            "run": _cmd_run,
            "noise": _cmd_noise,
            "prepare": _cmd_prepare,
            "report": _cmd_report,
            "grid": _cmd_grid,
            "table": _cmd_table,
            "predict": _cmd_predict,
            "consensus": _cmd_consensus,
            "review": _cmd_review,
        }[args.command](args)
    except InputError as e:
        print(f"memomentum: error: {e}", file=sys.stderr)
        return 2
    except TrainingDiverged as e:
        print(f"memomentum: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("memomentum: stopped", file=sys.stderr)
        return 130

"""Command line: ``memomentum run``, ``predict``, ``grid``, ``table``, ``consensus``, ``report``, ``review``, ``prepare`` and ``noise``.

Each command is a module of this package (``memomentum/cli/run.py``, ``grid.py``, ...) with its
parser (``add_parser``) and what it does (``command``); :mod:`.parser` holds what their parsers
share. This module puts them together (:func:`build_parser`) and is the program (:func:`main`).

User mistakes print one line starting with ``memomentum: error:`` and exit with status 2;
an interrupted run exits with 130 (SIGINT) or 143 (SIGTERM) after saving a checkpoint.
"""

from __future__ import annotations

import argparse
import sys

from ..base.errors import InputError, TrainingDiverged
from . import consensus, grid, noise, predict, prepare, report, review, run, table
from .parser import COMMANDS_IN_SHORT, Parser, Unparsed, top_parser

__all__ = ["COMMANDS_IN_SHORT", "build_parser", "main"]

# The commands, in the order `memomentum --help` lists them.
COMMANDS = {
    "run": run,
    "noise": noise,
    "prepare": prepare,
    "report": report,
    "grid": grid,
    "table": table,
    "predict": predict,
    "consensus": consensus,
    "review": review,
}


def build_parser() -> Parser:
    parser, sub = top_parser()
    parser.commands = {name: module.add_parser(sub) for name, module in COMMANDS.items()}
    return parser  # parser.commands: main() blames unknown options on their command


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


def _quietly_parsed(argv: list[str]) -> argparse.Namespace | None:
    """``argv`` parsed as :func:`_main` will parse it, or None where the parser would refuse it
    (nothing printed: the refusal comes later, once)."""
    parser = build_parser()
    for part in (parser, *parser.commands.values()):
        part.quiet = True
    try:
        return parser.parse_args(argv)
    except (Unparsed, SystemExit):
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
        return COMMANDS[args.command].command(args)
    except InputError as e:
        print(f"memomentum: error: {e}", file=sys.stderr)
        return 2
    except TrainingDiverged as e:
        print(f"memomentum: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("memomentum: stopped", file=sys.stderr)
        return 130

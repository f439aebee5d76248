"""What every command's parser shares: the parser class whose refusals are one line and exit 2,
the value types of the options, and the wording of help texts read from the configuration's
defaults and choices (so that ``--help`` never restates a value :mod:`memomentum.config` holds)."""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Sequence
from typing import Any

from ..config import RunConfig

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


class Unparsed(Exception):
    """A command line a quiet parser refuses (:attr:`Parser.quiet`)."""


class Parser(argparse.ArgumentParser):
    commands: dict[str, Parser]  # the top parser's: each command's parser (memomentum.cli.build_parser)
    quiet = False  # refuse by raising Unparsed, printing nothing (memomentum.cli's _quietly_parsed)

    def error(self, message: str):  # one line, exit 2 (argparse's default prints usage too)
        if self.quiet:
            raise Unparsed(message)
        if message == "the following arguments are required: command":
            listed = [f"{name} ({what})" for name, what in COMMANDS_IN_SHORT.items()]
            message = f"choose a command: {', '.join(listed[:-1])} or {listed[-1]}"
        self.exit(2, f"memomentum: error: {message} (see {self.prog} --help)\n")


def top_parser() -> tuple[Parser, Any]:
    """The ``memomentum`` parser and its sub-parsers action, to which each command adds its own
    (``memomentum run``'s parser is then named ``memomentum run``)."""
    parser = Parser(
        prog="memomentum", description="Me-Momentum: learn from noisy labels and find the confident examples."
    )
    return parser, parser.add_subparsers(dest="command", required=True, parser_class=Parser)


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return value


def number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


def milestones(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(t) for t in text.split(",") if t.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated epochs like 40,80, got {text!r}") from None


# -- help texts from the configuration ----------------------------------------------------------


def config_default(name: str) -> Any:
    """The default of :class:`~memomentum.config.RunConfig`'s field ``name``."""
    return next(f.default for f in dataclasses.fields(RunConfig) if f.name == name)


def one_of(
    choices: Sequence[str],
    default: str | None = None,
    notes: dict[str, str] | None = None,
    *,
    joiner: str = ": ",
    last: str = " or ",
) -> str:
    """The choices in words, each with its note in brackets, the default marked:
    ``auto (default), cpu or cuda``; ``jpeg (default: re-encoded) or raw (uint8)``."""
    notes = notes or {}
    words = []
    for choice in choices:
        note = notes.get(choice)
        if choice == default:
            note = "default" + (joiner + note if note else "")
        words.append(f"{choice} ({note})" if note else choice)
    return ", ".join(words[:-1]) + last + words[-1] if len(words) > 1 else "".join(words)


def in_words(value: float | tuple[int, ...]) -> str:
    """A default as the help texts write it: ``0.01``, ``1e-4`` (below 0.01, a power of ten), ``40,80``."""
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    if 0 < abs(value) < 0.01:
        mantissa, exponent = f"{value:.0e}".split("e")
        return f"{mantissa}e{int(exponent)}"
    return f"{value:g}"

"""``memomentum table``: mean ± std over seeds of the finished runs below a folder."""

from __future__ import annotations

from pathlib import Path

from .parser import Parser


def add_parser(sub) -> Parser:
    t = sub.add_parser(
        "table",
        help="tabulate the finished runs below GRID_DIR: mean ± std over seeds per setting "
        "and method (writes table.md, table.csv, table.json, table.html)",
    )
    t.add_argument("grid_dir", metavar="GRID_DIR", help="a folder holding run directories (e.g. a grid's --out)")
    return t


def command(args) -> int:
    from ..entrypoints.table import write_tables

    print(write_tables(Path(args.grid_dir)), end="")
    return 0

"""``memomentum report``: write a finished run's page, ``RUN_DIR/report.html``."""

from __future__ import annotations

from .parser import Parser


def add_parser(sub) -> Parser:
    rp = sub.add_parser(
        "report",
        help="write RUN_DIR/report.html, one self-contained page that shows a finished run "
        "(needs matplotlib: pip install memomentum[plots])",
    )
    rp.add_argument("run_dir", metavar="RUN_DIR", help="a directory written by memomentum run")
    return rp


def command(args) -> int:
    from ..entrypoints.report import write_report

    print(write_report(args.run_dir))
    return 0

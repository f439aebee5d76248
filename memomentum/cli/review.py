"""``memomentum review``: look at a run's suspects in the browser, decide, export the cleaned data
(a local web application: nothing of it, and no torch, is loaded before the command runs)."""

from __future__ import annotations

from ..base.errors import InputError
from .parser import Parser


def add_parser(sub) -> Parser:
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


def command(args) -> int:
    from ..entrypoints.review import export, serve

    if args.export:
        if len(args.run_dirs) > 1:
            raise InputError("--export writes the data of one run; give one RUN_DIR")
        print(export(args.run_dirs[0], args.export))
        return 0
    if not 0 <= args.port <= 65535:
        raise InputError(f"--port {args.port} is not a port; give 1 to 65535, or 0 for a free one")
    return serve(args.run_dirs, host=args.host, port=args.port, open_browser=args.browser)

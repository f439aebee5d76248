"""``memomentum consensus``: combine the verdicts of finished runs on the same data and labels."""

from __future__ import annotations

from .parser import Parser


def add_parser(sub) -> Parser:
    c = sub.add_parser(
        "consensus",
        help="combine the verdicts of finished runs on the same data and labels (several "
        "seeds) into DIR/consensus.csv, per example (docs/consensus.md)",
    )
    c.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="directories written by memomentum run, finished")
    c.add_argument("--out", required=True, metavar="DIR", help="the folder consensus.csv is written to")
    return c


def command(args) -> int:
    from ..entrypoints.consensus import consensus_table, describe, write_consensus

    table = consensus_table(args.run_dirs)
    path = write_consensus(args.run_dirs, args.out, table=table)
    print(f"{describe(table, len(args.run_dirs))}; written to {path}")
    return 0

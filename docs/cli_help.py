"""MkDocs hook: a line ``<!-- help: COMMAND -->`` in a page becomes the output of
``memomentum COMMAND --help``, so that the commands page never drifts from the parser."""

from __future__ import annotations

import os
import re

_MARK = re.compile(r"^<!-- help: (\w+) -->$", re.MULTILINE)


def on_page_markdown(markdown: str, **_) -> str:
    if not _MARK.search(markdown):
        return markdown
    os.environ["COLUMNS"] = "100"  # argparse wraps the help at the terminal's width
    from memomentum.cli import build_parser

    commands = build_parser().commands

    def help_text(match: re.Match) -> str:
        return "```text\n" + commands[match.group(1)].format_help().rstrip() + "\n```"

    return _MARK.sub(help_text, markdown)

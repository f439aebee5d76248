"""Small rules that every layer shares, in the lowest layer so that each can import them:
what a seed is (:func:`check_seed`) and how a message names a few of many things
(:func:`first_few`)."""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import numpy as np

from .errors import InputError

SEED_RANGE = "0..4294967295"  # 2**32 seeds: what numpy's generators take


def check_seed(value, name: str = "seed", *, allowed: str = "an integer", why: str = "") -> int:
    """``value`` as a seed: a whole number (a Python or numpy integer, not a bool) in
    0..2**32 - 1. Otherwise one sentence naming ``name`` (the option as the caller's user
    knows it) and ``allowed``, then ``why`` (what else is refused, if anything)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not 0 <= int(value) < 2**32:
        shown = value.item() if isinstance(value, np.generic) else value  # 1.5, not np.float64(1.5)
        raise InputError(f"{name} must be {allowed} in {SEED_RANGE}{why}, got {shown!r}")
    return int(value)


def counted(n: int, noun: str, *, grouped: bool = True) -> str:
    """``1 label``, ``2,000 labels``: a count and its noun, in the singular for one; with
    ``grouped=False`` the digits go without the thousands comma (``1000 epochs``: the
    progress lines)."""
    return f"{n:,} {noun}{'' if n == 1 else 's'}" if grouped else f"{n} {noun}{'' if n == 1 else 's'}"


def first_few(items: Sequence[str], shown: int, total: int | None = None) -> str:
    """``a, b, c`` or ``a, b, c and 7 more``: the first ``shown`` of ``items`` (already
    quoted as the message wants them) and how many more there are (of ``total``, by
    default ``len(items)``)."""
    total = len(items) if total is None else total
    listed = ", ".join(items[:shown])
    return listed if total <= shown else f"{listed} and {total - shown:,} more"

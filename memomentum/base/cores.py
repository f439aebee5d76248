"""The cores this process may run on: its CPU affinity, which containers, ``taskset`` and
batch schedulers narrow (``os.cpu_count()`` counts the whole machine). Every count of cores
(threads per run, packing workers, a grid's blocks of cores) starts here."""

from __future__ import annotations

import os


def core_ids() -> list[int]:
    """The cores this process may run on, in order; empty where the OS keeps no affinity."""
    return sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []


def available_cores() -> int:
    """How many cores this process may run on (the whole machine's where the OS keeps no affinity)."""
    return len(core_ids()) or os.cpu_count() or 1


def cores_up_to(limit: int) -> int:
    """One per available core, at most ``limit``: how many reader processes or decoding threads
    to start when none are asked for."""
    return max(1, min(available_cores(), limit))

"""glibc's allocator tuned for a training process: freed memory is kept for reuse.

PyTorch's CPU tensors come straight from ``malloc``. By default glibc serves large blocks
with fresh ``mmap`` pages and trims the top of the heap whenever a few megabytes are free,
so every activation of every training step and prediction chunk is page-faulted in (and
zeroed by the kernel) again: hundreds of thousands of minor faults per epoch. Raising the
mmap threshold to glibc's maximum and the trim threshold to 1 GiB removes them, and makes
epochs markedly faster (``benchmarks/epoch_speed.py`` measures it); the numbers computed
stay bit-identical (tests/test_engine.py). The price: the process keeps its peak heap.
"""

from __future__ import annotations

import ctypes
import os
import sys

# mallopt parameter numbers from <malloc.h>
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_MMAP_THRESHOLD_MAX = 32 << 20  # glibc refuses more on 64-bit systems (HEAP_MAX_SIZE / 2)
_TRIM_THRESHOLD = 1 << 30
_malloc_tuned: bool | None = None


def keep_freed_memory() -> bool:
    """Make glibc keep freed memory for reuse instead of handing it back to the kernel.

    Process-wide and done once; a no-op (returning False) off Linux, on other C libraries,
    or when the user already tunes malloc through ``MALLOC_*_`` or ``GLIBC_TUNABLES``.
    Returns whether the settings are in effect.
    """
    global _malloc_tuned
    if _malloc_tuned is None:
        _malloc_tuned = _tune_glibc_malloc()
    return _malloc_tuned


def is_tuned() -> bool:
    return bool(_malloc_tuned)


def _tune_glibc_malloc() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    if any(
        k in os.environ
        for k in (
            "GLIBC_TUNABLES",
            "MALLOC_MMAP_THRESHOLD_",
            "MALLOC_TRIM_THRESHOLD_",
            "MALLOC_TOP_PAD_",
            "MALLOC_MMAP_MAX_",
            "LD_PRELOAD",
        )
    ):
        return False  # someone already chose the allocator's behaviour (or another allocator)
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # noqa: B018 -- glibc only (musl's mallopt does nothing)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    ok = mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_MAX) == 1
    return mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD) == 1 and ok

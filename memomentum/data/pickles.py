"""Unpickling data files without running their code: CIFAR's pickles and CIFAR-N's label
files (``torch.load`` with ``weights_only``) may reference an allow-list of globals only,
enough to rebuild dicts, lists, strings, bytes, numbers and numpy arrays."""

from __future__ import annotations

import functools
import io
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..base.errors import InputError


@functools.cache
def allowed_globals() -> dict[tuple[str, str], Any]:
    """The only globals a data pickle may reference: what numpy needs to rebuild arrays
    (under both its numpy 1 and numpy 2 module names) and ``_codecs.encode``, which
    protocol-2 pickles use to store bytes. None of them can run arbitrary code."""
    import codecs

    try:  # numpy >= 2
        from numpy._core import multiarray as ma
        from numpy._core import numeric as nm
    except ImportError:  # numpy 1.x
        from numpy.core import multiarray as ma  # type: ignore[no-redef]
        from numpy.core import numeric as nm  # type: ignore[no-redef]
    allowed: dict[tuple[str, str], Any] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): codecs.encode,
    }
    for module in ("numpy.core", "numpy._core"):
        allowed[(f"{module}.multiarray", "_reconstruct")] = ma._reconstruct
        allowed[(f"{module}.multiarray", "scalar")] = ma.scalar
        if hasattr(nm, "_frombuffer"):
            allowed[(f"{module}.numeric", "_frombuffer")] = nm._frombuffer
    return allowed


class _Disallowed(Exception):
    """A pickle referenced a global outside the allow-list."""


class _SafeUnpickler(pickle.Unpickler):
    """Unpickler that rebuilds dicts, lists, strings, bytes, numbers and numpy arrays only."""

    def find_class(self, module: str, name: str) -> Any:
        obj = allowed_globals().get((module, name))
        if obj is None:
            raise _Disallowed(f"{module}.{name}")
        return obj


def safe_pickle_load(path: Path, what: str) -> Any:
    """Unpickle ``path`` (bytes keys kept as bytes) with :class:`_SafeUnpickler`."""
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise InputError(f"could not read {what} {path}: {e.strerror or e}") from e
    try:
        return _SafeUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except _Disallowed as e:
        raise InputError(
            f"refusing to load {what} {path}: the pickle references {e}, but only plain data and "
            f"numpy arrays are allowed"
        ) from None
    except Exception as e:  # noqa: BLE001 -- any other failure means a malformed or truncated pickle
        raise InputError(
            f"{what} {path} is not a readable pickle (corrupt or truncated: {type(e).__name__}: {e})"
        ) from None


def torch_safe_globals() -> list[Callable[..., Any] | tuple[Callable[..., Any], str]]:
    """The allow-list in the form ``torch.serialization.safe_globals`` takes, plus the
    numeric numpy dtype classes (torch's weights-only loader also checks the type of
    every object whose state is set)."""
    safe: list[Callable[..., Any] | tuple[Callable[..., Any], str]]
    safe = [(obj, f"{module}.{name}") for (module, name), obj in allowed_globals().items()]
    for code in "?bBhHiIlLqQefdg":
        cls = type(np.dtype(code))
        safe.append((cls, f"{cls.__module__}.{cls.__qualname__}"))
    return safe

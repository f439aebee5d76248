"""Writing a file atomically: a temporary file beside it, flushed and fsynced, renamed over
it, and the folder fsynced, so that a reader (or a later run) sees the old complete file
or the new one, never half of one, also after a crash or a power cut. Every file the
package writes for keeps goes through :func:`atomic_file`."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any


def _file_mode() -> int:
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


_FILE_MODE = _file_mode()  # mkstemp creates 0600 files; outputs get the usual 0666 & ~umask


def _fsync_dir(directory: Path) -> None:
    """Persist a rename: fsync the directory entry (a no-op where the OS does not allow it)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # e.g. EINVAL on file systems without directory fsync
        pass
    finally:
        os.close(fd)


def is_temp_file(path: Path) -> bool:
    """Whether ``path`` is a temporary file left by :func:`atomic_file` (after a crash)."""
    return path.name.startswith(".") and path.name.endswith(".tmp")


@contextlib.contextmanager
def atomic_file(path: Path, mode: str = "w") -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path``; on success fsync it, rename it over
    ``path`` and fsync the directory, so readers only ever see the old or the new
    complete file, also after a power cut. On any error the temporary file is removed.
    The temporary name is unique (``mkstemp``), so two processes writing the same file
    each rename only their own whole file into place. Text mode is UTF-8 with the line
    endings written as given."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, _FILE_MODE)
        text: dict[str, Any] = {} if "b" in mode else {"newline": "", "encoding": "utf-8"}
        with os.fdopen(fd, mode, **text) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)

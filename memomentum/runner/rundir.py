"""A run directory: the checks before a run writes into it, its lock, its live history,
and what happens to it when a run fails.

One process at a time writes a run directory. It holds ``run.lock``, a small JSON file
with its process id and host name, created atomically (``O_CREAT | O_EXCL``) and removed
when the run ends, however it ends (a finished run, an error, a pause by SIGINT/SIGTERM).
A lock whose process is gone (SIGKILL, a power cut) is stale: a process on the same host
sees that the process id no longer runs, takes the lock over and says so. A lock held by
another host cannot be checked from here, so it is only ever refused, with its path.

``history.csv`` grows while the run trains: one row per finished epoch, appended and
fsynced, so that a user can follow an hour-long run. It is rewritten from the checkpoint
when a run resumes (the checkpoint is the truth; a row appended after the last checkpoint
belongs to an epoch that will run again).
"""

from __future__ import annotations

import contextlib
import csv
import errno
import hashlib
import json
import os
import shlex
import shutil
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..base.atomic import is_temp_file
from ..base.checks import first_few
from ..base.errors import InputError
from ..config import NON_RESULT_KEYS, RunConfig
from . import outputs
from .files import CHECKPOINT, CONFIG, LOCK, PREVIOUS, RUN_FILES, is_finished, read_json


def resume_command(run_dir: Path) -> str:
    """The command that continues the unfinished run in ``run_dir``."""
    return f"memomentum run --resume {shlex.quote(str(run_dir))}"


# -- the lock ------------------------------------------------------------------------------


@dataclass(frozen=True)
class LockHolder:
    """Who holds a run directory's lock, as its lock file says (``pid`` None: unreadable)."""

    pid: int | None
    host: str | None

    def describe(self) -> str:
        if self.pid is None:
            return "a process whose lock file cannot be read"
        return f"process {self.pid} on {self.host}"


def _this_host() -> str:
    return socket.gethostname()


def _read_lock(path: Path) -> LockHolder | None:
    """The holder named in the lock file ``path``, or None when there is no lock file."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError:
        return LockHolder(None, None)
    try:
        data = json.loads(text)
        return LockHolder(int(data["pid"]), str(data["host"]))
    except (ValueError, KeyError, TypeError):
        return LockHolder(None, None)  # being written this very moment, or damaged


def _pid_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it runs, as another user
        return True
    return True


def _is_stale(holder: LockHolder) -> bool:
    """A lock is stale when it names a process of this host that no longer runs."""
    return holder.pid is not None and holder.host == _this_host() and not _pid_running(holder.pid)


def _is_mine(holder: LockHolder) -> bool:
    return holder.pid == os.getpid() and holder.host == _this_host()


def lock_holder(run_dir: Path) -> LockHolder | None:
    """The other process that writes ``run_dir`` now, or None (no lock, a stale lock, or
    this process's own)."""
    holder = _read_lock(Path(run_dir) / LOCK)
    if holder is None or _is_mine(holder) or _is_stale(holder):
        return None
    return holder


def _busy_error(run_dir: Path, holder: LockHolder, *, resume: bool) -> InputError:
    lock = Path(run_dir) / LOCK
    gone = (
        "" if holder.pid is not None and holder.host == _this_host() else f"; if no run uses it any more, delete {lock}"
    )
    if resume:
        return InputError(
            f"the run in {run_dir} is still going ({holder.describe()}): stop it first (it saves a "
            f"checkpoint on Ctrl-C or SIGTERM), then resume it{gone}"
        )
    return InputError(
        f"another memomentum run ({holder.describe()}) is writing to {run_dir}; wait for it to "
        f"finish or choose another --out{gone}"
    )


def _create_lock(path: Path) -> bool:
    """Create the lock file atomically; False if it exists already."""
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    try:
        os.write(fd, json.dumps({"pid": os.getpid(), "host": _this_host()}).encode() + b"\n")
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        path.unlink(missing_ok=True)
        raise
    os.close(fd)
    return True


def _remove_stale(path: Path, stale: LockHolder) -> None:
    """Move the stale lock aside and delete it, unless another process replaced it
    meanwhile (then put that one back), so that two processes taking over at once do not
    both win. The name aside is a temporary file's: a crash here leaves nothing for good."""
    aside = path.with_name(f".{path.name}.{os.getpid()}.stale.tmp")
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return  # another process took it over first
    if _read_lock(aside) != stale:  # a fresh lock moved by mistake: restore it
        with contextlib.suppress(FileExistsError):
            os.link(aside, path)
    aside.unlink(missing_ok=True)


def acquire_lock(run_dir: Path, *, resume: bool) -> None:
    """Lock ``run_dir`` (which must exist) for this process, taking over a stale lock.

    Raises:
        InputError: another live process holds the lock.
    """
    holder = take_lock(Path(run_dir) / LOCK)
    if holder is not None:
        raise _busy_error(run_dir, holder, resume=resume)


def take_lock(path: Path) -> LockHolder | None:
    """Create the lock file ``path`` for this process, taking over a stale one (with a note);
    None once this process holds it, else the live process that holds it. The run's lock
    and the review's (:mod:`memomentum.entrypoints.review`) both work this way."""
    for _ in range(3):
        if _create_lock(path):
            return None
        holder = _read_lock(path)
        if holder is None:
            continue  # released between our try and our look
        if _is_mine(holder):
            return None
        if not _is_stale(holder):
            return holder
        _remove_stale(path, holder)
        if _create_lock(path):
            what = f"the lock of {path.parent}" if path.name == LOCK else f"the lock {path}"
            print(
                f"memomentum: note: took over {what} from process {holder.pid}, which no longer runs", file=sys.stderr
            )
            return None
    return _read_lock(path) or LockHolder(None, None)


def release_lock(run_dir: Path, name: str = LOCK) -> None:
    """Remove the lock ``name`` of ``run_dir`` if this process holds it."""
    path = Path(run_dir) / name
    holder = _read_lock(path)
    if holder is not None and _is_mine(holder):
        with contextlib.suppress(OSError):
            path.unlink()


# -- checks before a run writes ------------------------------------------------------------


def check_run_dir(run_dir: Path, *, resume: bool, overwrite: bool) -> None:
    """Refuse, with one sentence, to start (or resume) a run in ``run_dir`` when that would
    lose work or mix two runs: a finished run, an unfinished run without ``--resume``, a
    directory that is not a run's, a run another process is writing."""
    if run_dir.exists() and not run_dir.is_dir():
        raise InputError(f"{run_dir} is a file, not a run directory; choose another --out")
    holder = lock_holder(run_dir) if run_dir.is_dir() else None
    if holder is not None:
        raise _busy_error(run_dir, holder, resume=resume)
    if resume:
        if overwrite:
            raise InputError("--resume continues a run and --overwrite starts it again; pass only one of them")
        if not run_dir.is_dir():
            raise InputError(f"nothing to resume: there is no run directory {run_dir}")
        if is_finished(run_dir):
            raise InputError(f"the run in {run_dir} has already finished; nothing to resume")
        if not (run_dir / CHECKPOINT).exists():
            if not any(run_dir.iterdir()):
                raise InputError(f"nothing to resume: {run_dir} is empty; start a run there without --resume")
            if never_started(run_dir):
                raise InputError(
                    f"nothing to resume in {run_dir}: the run stopped before its first checkpoint; "
                    f"start it again with the same command, without --resume"
                )
            raise InputError(f"nothing to resume in {run_dir}: no {CHECKPOINT} there")
        return
    if run_dir.exists() and not never_started(run_dir):
        foreign = sorted(p.name for p in run_dir.iterdir() if p.name not in RUN_FILES and not is_temp_file(p))
        if foreign:
            raise InputError(
                f"{run_dir} holds files that are not part of a memomentum run ({', '.join(foreign[:3])}"
                f"{', ...' if len(foreign) > 3 else ''}); --overwrite only replaces run directories, "
                f"so choose another --out"
            )
        if overwrite:
            return
        if is_finished(run_dir):
            raise InputError(
                f"{run_dir} already holds a finished run; pass --overwrite to replace it or --out to choose another directory"
            )
        if (run_dir / CHECKPOINT).exists():
            raise InputError(
                f"{run_dir} holds an unfinished run; continue it with: {resume_command(run_dir)}  (or pass --overwrite to start again)"
            )
        raise InputError(f"{run_dir} exists and is not empty; pass --overwrite or choose another --out")


def never_started(run_dir: Path) -> bool:
    """Whether ``run_dir`` holds nothing but what a run killed before its first
    checkpoint leaves behind (``config.json``, its lock, temporary files): such a
    directory is reused as if it were empty."""
    try:
        return all(p.name in (CONFIG, LOCK) or is_temp_file(p) for p in run_dir.iterdir())
    except FileNotFoundError:
        return True


def config_differences(saved: dict, cfg: RunConfig) -> list[str]:
    """The result-changing settings in which ``cfg`` differs from a saved run's."""
    now = cfg.to_dict()
    saved = {**saved, **RunConfig.from_dict(saved).to_dict()}  # as this version reads it (defaults of new keys)
    return sorted(k for k in set(saved) | set(now) if k not in NON_RESULT_KEYS and saved.get(k) != now.get(k))


def edited_config_note(run_dir: Path, saved: dict) -> str | None:
    """A note for a ``config.json`` edited by hand since the checkpoint was written: a resumed
    run keeps the saved settings (its schedule is half run) and writes ``config.json`` back
    from them, which would otherwise undo the edit without a word. None when it matches."""
    path, resolved = run_dir / CONFIG, saved.get("resolved")
    if not isinstance(resolved, dict) or not path.is_file():
        return None
    keep = (
        f"--resume continues with the settings saved in the checkpoint and writes {CONFIG} back from them "
        f"(a run's settings cannot change halfway: start a new run to train with others)"
    )
    try:
        edited = read_json(path)
    except InputError:  # unreadable, not JSON or empty: said below
        edited = None
    if not isinstance(edited, dict):
        return f"{path} is not the JSON object the run wrote; {keep}"
    differ = sorted(k for k in set(edited) | set(resolved) if edited.get(k, None) != resolved.get(k, None))
    if not differ:
        return None
    shown = first_few([f"{k} {json.dumps(edited.get(k))} (saved: {json.dumps(resolved.get(k))})" for k in differ], 5)
    return f"{path} was edited since the checkpoint: {shown}; {keep}"


# -- the data a run started with ------------------------------------------------------------
# Features up to this size are hashed whole (about 0.2 s for Fashion-MNIST's 47 MB); larger
# ones, packed image stores on disk, are known by their file list, shape and labels.
_HASHED_FEATURE_BYTES = 512 << 20


def _sha256(*arrays) -> str:
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.data if a.size else b"")
    return h.hexdigest()


def data_fingerprint(dataset, noisy_labels: np.ndarray) -> dict:
    """What identifies the data a run trains on, cheaply: sizes, labels (given and noisy),
    the image files or the features. Saved in the checkpoint, compared on ``--resume``."""
    x, x_test = dataset.x_train, dataset.x_test
    arrays = [a for a in (x, x_test) if isinstance(a, np.ndarray)]
    hash_features = (
        len(arrays) == sum(a is not None for a in (x, x_test))
        and sum(a.nbytes for a in arrays) <= _HASHED_FEATURE_BYTES
    )
    return {
        "n_train": len(x),
        "n_test": 0 if x_test is None else len(x_test),
        "example_shape": [int(s) for s in x.shape[1:]],
        "labels": _sha256(dataset.y_train),
        "noisy_labels": _sha256(noisy_labels),
        "test_labels": None if dataset.y_test is None else _sha256(dataset.y_test),
        "features": _sha256(*arrays) if hash_features else None,
        "files": None
        if dataset.train_files is None
        else hashlib.sha256("\n".join(map(str, dataset.train_files)).encode()).hexdigest(),
    }


_FINGERPRINT_WORDS = {
    "n_train": "the number of training examples",
    "n_test": "the number of test examples",
    "example_shape": "the shape of an example",
    "labels": "the labels",
    "noisy_labels": "the noisy labels",
    "test_labels": "the test labels",
    "features": "the features",
    "files": "the image files",
}


def data_changes(saved: dict | None, now: dict) -> list[str]:
    """What differs between the data a run started with and the data given now, in words
    (empty when the same, or when the checkpoint records no fingerprint)."""
    if not saved:
        return []
    changes = []
    for key, words in _FINGERPRINT_WORDS.items():
        if saved.get(key) != now.get(key):
            if key in ("n_train", "n_test", "example_shape"):
                words += f" ({saved.get(key)} then, {now.get(key)} now)"
            changes.append(words)
    return changes


# -- opening, and failing ------------------------------------------------------------------


def ensure_dir(run_dir: Path) -> Path | None:
    """Create ``run_dir`` and check that it is writable; on failure remove whatever
    directories this call created. Returns the topmost directory created, or None."""
    created = None if run_dir.exists() else run_dir  # the topmost directory this call creates
    while created is not None and created.parent != created and not created.parent.exists():
        created = created.parent
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        if created is not None:
            remove_created(created)
        raise InputError(f"cannot write to the output directory {run_dir}: {e.strerror or e}") from None
    return created


def remove_created(top: Path) -> None:
    """Remove a directory tree this run created (never a symbolic link's target)."""
    with contextlib.suppress(OSError):
        if top.is_dir() and not top.is_symlink():
            shutil.rmtree(top)


def _remove(p: Path) -> None:
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p)
    else:
        p.unlink(missing_ok=True)


def _clear_for_overwrite(run_dir: Path) -> None:
    """Set the previous run's files aside in :data:`PREVIOUS` (check_run_dir made sure there
    are no others), keeping this process's lock. If an earlier --overwrite left one there
    (it never finished), that one is the run being replaced and the unfinished files go."""
    previous = run_dir / PREVIOUS
    kept = previous.is_dir()
    if not kept:
        previous.mkdir()
    for p in run_dir.iterdir():
        if p.name in (LOCK, PREVIOUS):
            continue
        if kept:
            _remove(p)
        else:
            p.rename(previous / p.name)


def forget_previous(run_dir: Path) -> None:
    """The new run has its results: the run it replaced goes."""
    with contextlib.suppress(FileNotFoundError):
        shutil.rmtree(run_dir / PREVIOUS)


def _restore_previous(run_dir: Path) -> bool:
    """Put back the run that --overwrite set aside, over what the failed new run wrote."""
    previous = run_dir / PREVIOUS
    if not previous.is_dir():
        return False
    for p in list(run_dir.iterdir()):
        if p.name not in (LOCK, PREVIOUS):
            _remove(p)
    for p in previous.iterdir():
        p.rename(run_dir / p.name)
    previous.rmdir()
    return True


@contextlib.contextmanager
def open_run_dir(run_dir: Path, *, resume: bool, overwrite: bool):
    """Hold ``run_dir`` for writing while the ``with`` block runs: create it, lock it,
    check it again under the lock (another run may have finished in it meanwhile), clear
    it for ``overwrite`` and remove temporary files left by a killed run. The lock is
    released however the block ends.

    Yields:
        Whether the run owns the whole directory (it created it, or replaced what it
        held): then a run that fails with nothing to resume removes the directory.
    """
    existed = run_dir.exists()
    ensure_dir(run_dir)
    acquire_lock(run_dir, resume=resume)
    try:
        check_run_dir(run_dir, resume=resume, overwrite=overwrite)
        created = not existed
        if overwrite and not resume and not never_started(run_dir):
            _clear_for_overwrite(run_dir)
            created = True
        for tmp in run_dir.iterdir():  # left by a run killed while writing
            if is_temp_file(tmp):
                tmp.unlink(missing_ok=True)
        yield created
    finally:
        release_lock(run_dir)


def discard_run(run_dir: Path, created: bool) -> bool:
    """Remove what this run wrote: the whole directory if the run created it, else its files;
    a run that --overwrite replaced is put back. Returns whether one was put back."""
    if _restore_previous(run_dir):
        return True
    if created:
        remove_created(run_dir)
        return False
    for p in list(run_dir.iterdir()) if run_dir.is_dir() else []:
        if (p.name in RUN_FILES and p.name not in (LOCK, PREVIOUS)) or is_temp_file(p):
            p.unlink(missing_ok=True)
    return False


def write_failed(e: OSError, run_dir: Path, created: bool) -> InputError:
    """The error for a failed write. Without a checkpoint to resume from, the run's files
    are removed again (the whole directory if this run created it)."""
    resumable = (run_dir / CHECKPOINT).exists()
    if not resumable:
        discard_run(run_dir, created)
    full = e.errno in (errno.ENOSPC, errno.EDQUOT)
    what = f"the disk holding {run_dir} is full" if full else f"cannot write to {run_dir}: {e.strerror or e}"
    then = f"resume with: {resume_command(run_dir)}" if resumable else "run the same command again"
    return InputError(f"{what}; {'free some space, then ' if full else 'fix that, then '}{then}")


# -- history.csv, live ---------------------------------------------------------------------


class LiveHistory:
    """``history.csv`` kept up to date while a run trains: :meth:`start` writes the header
    and the rows so far (atomically), :meth:`extend` appends the rows of the epochs finished
    since (append, flush, fsync)."""

    def __init__(self, path: Path, columns: list[str]):
        self.path = Path(path)
        self.columns = columns
        self.written = 0

    def start(self, rows: list[dict]) -> None:
        """Write the header and ``rows`` (the whole history so far), replacing the file."""
        outputs.write_csv(self.path, rows, self.columns)
        self.written = len(rows)

    def extend(self, rows: list[dict]) -> None:
        """Append ``rows[self.written:]`` (``rows``: the whole history so far)."""
        new = rows[self.written :]
        if not new:
            return
        with open(self.path, "a", newline="", encoding="utf-8") as f:
            csv.DictWriter(f, fieldnames=self.columns, extrasaction="ignore", lineterminator="\n").writerows(new)
            f.flush()
            os.fsync(f.fileno())
        self.written = len(rows)

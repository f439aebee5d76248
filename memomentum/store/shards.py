"""One shard of a packed store (images ``start .. stop-1``): its images decoded, resized and written
whole or not at all, and many shards packed by a pool of worker processes.

A shard's data file is renamed into place last: its presence means the shard (with its
``.meta.npy``) is done, so an interrupted pack keeps its finished shards.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..base.atomic import atomic_file
from .layout import JPEG_SUBSAMPLING, shard_file_name
from .pixels import decode_resized, error_reason, import_pillow, import_simplejpeg


@dataclass(frozen=True)
class Shard:
    """One unit of packing work: images ``start .. stop-1`` (picklable, sent to workers)."""

    directory: Path
    start: int
    stop: int
    paths: tuple[str, ...]
    image_size: int
    store_format: str
    quality: int

    @property
    def data_path(self) -> Path:
        return self.directory / shard_file_name(self.start, self.stop, self.store_format)

    @property
    def meta_path(self) -> Path:
        return self.directory / f"shard-{self.start:09d}-{self.stop:09d}.meta.npy"


def _pack_shard(shard: Shard, report: Callable[[int], None] | None = None) -> list[tuple[int, str]]:
    """Decode, resize and store one shard's images; returns the undecodable ones as
    ``(image number, reason)`` (then nothing is kept, but the rest of the shard is still
    decoded so that one run names every bad file). Runs in a worker process."""
    Image = import_pillow()
    encode = import_simplejpeg().encode_jpeg if shard.store_format == "jpeg" else None
    meta = np.zeros((shard.stop - shard.start, 3), dtype=np.int64)
    bad: list[tuple[int, str]] = []
    try:
        with atomic_file(shard.data_path, "wb") as out:
            for i, path in enumerate(shard.paths):
                try:
                    pixels, st = decode_resized(path, shard.image_size, Image)
                except Exception as e:  # noqa: BLE001 -- decoders raise many types (OSError, ValueError, SyntaxError, ...)
                    bad.append((shard.start + i, error_reason(e)))
                else:
                    if not bad:  # once the shard is lost, only look for more bad files
                        blob = (
                            encode(pixels, quality=shard.quality, colorspace="RGB", colorsubsampling=JPEG_SUBSAMPLING)
                            if encode is not None
                            else pixels.tobytes()
                        )
                        out.write(blob)
                        meta[i] = (len(blob), st.st_size, st.st_mtime_ns)
                if report is not None:
                    report(1)
            if bad:
                raise _ShardLost
            with atomic_file(shard.meta_path, "wb") as f:  # before the data file: its presence marks the shard done
                np.save(f, meta)
    except _ShardLost:  # the shard's temporary data file is removed: nothing of it is kept
        return bad
    return []


class _ShardLost(Exception):
    """An image of the shard cannot be decoded: raised inside its write, to drop the file."""


_worker_counter = None  # a shared counter of images done, set in each pool worker


def _init_worker(counter) -> None:
    global _worker_counter
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the main process's to handle
    _worker_counter = counter


def _count(n: int) -> None:
    counter = _worker_counter
    assert counter is not None  # _init_worker set it in this worker
    with counter.get_lock():
        counter.value += n


def _pack_shard_in_worker(shard: Shard) -> list[tuple[int, str]]:
    return _pack_shard(shard, report=_count)


def shard_is_done(shard: Shard, sizes: np.ndarray, mtimes: np.ndarray) -> bool:
    """A shard from an earlier (interrupted or outdated) pack is kept only if it is whole
    and every one of its sources is unchanged since it was packed."""
    if not (shard.data_path.is_file() and shard.meta_path.is_file()):
        return False
    try:
        meta = np.load(shard.meta_path)
    except (OSError, ValueError):
        return False
    n = shard.stop - shard.start
    return (
        meta.shape == (n, 3)
        and int(meta[:, 0].sum()) == shard.data_path.stat().st_size
        and np.array_equal(meta[:, 1], sizes[shard.start : shard.stop])
        and np.array_equal(meta[:, 2], mtimes[shard.start : shard.stop])
    )


def run_shards(todo: list[Shard], *, workers: int, bar) -> list[tuple[int, str]]:
    """Pack ``todo`` in this process (one worker) or in a pool of processes, advancing the
    progress bar as images are done; returns every undecodable image."""
    bad: list[tuple[int, str]] = []
    if workers <= 1 or len(todo) <= 1:
        for shard in todo:
            bad += _pack_shard(shard, report=bar.update)
        return bad
    # spawn: the workers need only Pillow and simplejpeg, and a fresh process is safe whatever
    # threads the caller has (torch's OpenMP pool, tqdm's monitor); its start-up (~0.3 s) is
    # nothing beside a pack. ProcessPoolExecutor rather than multiprocessing.Pool: a worker
    # that dies (killed for memory, or unable to start) fails the pack instead of hanging it.
    ctx = multiprocessing.get_context("spawn")
    counter = ctx.Value("q", 0)
    pool = ProcessPoolExecutor(min(workers, len(todo)), mp_context=ctx, initializer=_init_worker, initargs=(counter,))
    try:
        pending = {pool.submit(_pack_shard_in_worker, shard) for shard in todo}
        while pending:
            done, pending = wait(pending, timeout=0.25, return_when=FIRST_COMPLETED)
            for future in done:
                bad += future.result()
            if counter.value > bar.n:
                bar.update(counter.value - bar.n)
    except BrokenProcessPool as e:
        raise RuntimeError(
            f"a packing worker process stopped unexpectedly ({e}); if memory is short, "
            f"pack with fewer workers (--workers)"
        ) from None
    except BaseException:
        # Ctrl-C or an error: stop the workers now rather than after their current shard
        for process in list((getattr(pool, "_processes", None) or {}).values()):
            process.terminate()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    return bad

"""A full-scale rehearsal of the Clothing1M data path on this machine: the real code paths
(annotation reader, packed store, streamed batches) over a million training keys whose image
files are hard links to a few hundred real JPEGs.

The real Clothing1M (1,000,000 noisy training images) cannot be had here, so
the rehearsal keeps the scale of everything that grows with the number of keys (annotation
files, file-system entries, path lists, the store's index, the epoch order) and lets the
pixels repeat. Each step runs in a subprocess of its own, so its time and peak resident
memory are its own:

1. ``annotations``: write (or reuse, under ``--work-dir``) a Clothing1M release:
   :func:`write_clothing1m` makes the few hundred source JPEGs (``--sources-per-class``,
   ``--source-size``; the default 500 x 375 is the size of a typical Clothing1M photo and
   packs to ~28 KB at 256 x 256, close to the ~23 KB of real photos, so decoding costs about
   what it would), then :func:`write_annotation_scale` writes the annotation files with
   ``--n-keys`` noisy training keys, each image a hard link to one source.
2. ``read``: :func:`read_clothing1m` (parse every annotation file and check that every listed
   image exists), timed, in a fresh process.
3. ``pack``: :func:`pack_images` of the distinct source images (once; ``--image-size``,
   jpeg). Packing the million linked paths would decode a million images (~5 ms each: most
   of an hour on 2 cores), so the store is packed from the distinct files and step 5 views it
   through a million entries.
4. ``reuse_check``: what every run does before it uses a packed store of the million
   training images, measured directly because ``pack_images`` on the million paths would
   pack them: :func:`store_key` over the million paths, ``_source_stats`` (one ``os.stat``
   per file) and ``_changed_sources`` against stored sizes and mtimes (written by this step
   into ``<work-dir>/reuse-check``: a manifest and ``sources.npz``, nothing else of a store).
   A first stat pass, timed apart, also checks that entry ``j`` links to source
   ``j mod n_sources`` (by inode), the rule the next step's index relies on.
5. ``stream`` at ``--n-keys`` entries and at ``--rss-entries`` entries (two processes; the
   second streams ``--rss-n-stream`` images per pass, 10,000 by default: its purpose is the
   peak memory, which depends on the batch, not on how many batches are streamed):
   :meth:`PackedImages.from_index` with one entry per key (timed; the index's memory), then
   ``--n-stream`` images through :class:`StreamedSource` (device cpu, batch
   ``--batch-size``, padding ``--image-size // 8``), in index order and in a shuffled order
   (``torch.randperm`` of all entries with a seeded generator, its first ``--n-stream``):

   * device side (``--device-workers``): the source's normalisation, then
     :func:`crop_flip` with a seeded generator, as a run feeds its model;
   * readers only (``--workers``): the same reader processes and batches (the
     ``DataLoader`` over whole batches that ``StreamedSource`` builds), uint8 only: what the
     readers can deliver when a GPU does the device side;
   * in process: :meth:`PackedImages.read` in this process (one core's decode rate, no IPC).

   Peak memory of the step's process and its reader processes, sampled every 0.1 s with
   psutil: the sum of RSS (counts pages shared between the main process and its forked
   readers more than once, so an upper bound) and the sum of PSS (shared pages split); and
   the main process's exact peak (VmHWM, reset before each pass), per pass and overall.
6. ``projection``: one epoch over the real million on 16 cores, 1,000,000 / (one reader
   process's images/s x 16), and whether 16 cores feed a ResNet-50 at 3,000 images/s. The
   reader rate is the readers-only shuffled pass with one reader (its own core, the main
   process only receiving), which is what a GPU run leaves the CPU to do.

Measured with the defaults on 2 cores shared with other agents' processes (load average 3 to
4.4): reading the release 8 s (peak 295 MB); the reuse check 5 s (4.9 s of it the stat
pass); the million-entry index 0.07 s and 16 MB; readers only, one reader process 730 to
1,000 images/s, two 760 to 1,300; with the device side on this CPU 160 to 230 images/s (the
CPU's normalise and crop_flip are the bottleneck); peak memory of the streaming step
(main and readers, PSS) 0.84 GB at 1,000,000 entries and 0.77 GB at 100,000. Projected
epoch over the million on 16 cores: 62 to 86 s, 3.9 to 5.3 times the 3,000 images/s a
ResNet-50 needs.

Caveats, in the output too: the few hundred packed images fill 2 shards that stay in the
page cache, so the shuffled order costs no disk reads here (the real store, ~25 GB, is read
at random by a shuffled epoch); and the device side here runs on this CPU, competing with the
readers for the same cores.

    python benchmarks/clothing1m_rehearsal.py                        # 1,000,000 keys, 50,000 streamed
    python benchmarks/clothing1m_rehearsal.py --work-dir /tmp/r --n-keys 2000 --n-stream 512 \\
        --rss-entries 1000 --sources-per-class 2 --source-size 64x48 --image-size 64 --workers 1

One step alone (what the top level runs; each prints one JSON line):

    python benchmarks/clothing1m_rehearsal.py --step annotations --work-dir /tmp/memomentum-rehearsal
    python benchmarks/clothing1m_rehearsal.py --step stream --entries 100000 --store DIR --n-sources 380

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# memomentum before torch, as a run imports them (its OpenMP wait policy). Only the steps that
# need torch import it (inside the step), so the read step's memory is the reader's own.
import memomentum  # noqa: F401

# isort: split

import numpy as np

from memomentum.base.cores import available_cores
from memomentum.data.clothing1m import CLEAN_KV, NOISY_TRAIN, read_clothing1m, read_label_kv

CLOTHING1M_TRAIN = 1_000_000  # the real release's noisy training images: what the projection is for
RESNET50_IMAGES_PER_S = 3000  # what one GPU trains ResNet-50 at
PROJECTED_CORES = 16
RSS_GOAL_GB = 4.0
STEPS = ("annotations", "read", "pack", "reuse_check", "stream")
_STATE = "rehearsal.json"  # in --work-dir: the settings the sources and the release were written with


def peak_rss_mb() -> dict:
    """Peak resident memory (MB) of this process and of its largest finished child."""
    # ru_maxrss is in kilobytes on Linux
    return {
        "self": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "largest_child": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1),
    }


def reset_peak_rss() -> bool:
    """Reset this process's peak RSS (VmHWM) so that the next :func:`peak_rss_since_reset_mb`
    is one pass's own peak (Linux: writing 5 to /proc/self/clear_refs); False where it cannot."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss_since_reset_mb() -> float | None:
    """VmHWM of this process (MB): its peak RSS since start or the last :func:`reset_peak_rss`."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def current_rss_mb() -> float:
    """This process's resident memory now (MB), from /proc (no psutil needed)."""
    with open("/proc/self/statm") as f:
        return round(int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20, 1)


class MemoryWatch:
    """Samples this process and all its descendants every ``interval`` seconds and keeps the
    peaks: RSS summed over the processes (pages a forked reader shares with the main process
    count in both, so this over-counts), PSS summed (shared pages split between their
    users: the memory the step really takes), and the main process's RSS alone.

    Sampling, not ``ru_maxrss``, because the reader processes live at the same time as the
    main process and RUSAGE_CHILDREN gives only the largest single child."""

    def __init__(self, interval: float = 0.1):
        import psutil

        self._psutil = psutil
        self._me = psutil.Process()
        self.interval = interval
        self.peak = {
            "sum_rss_mb": 0.0,
            "sum_pss_mb": 0.0,
            "main_rss_mb": 0.0,
            "largest_reader_rss_mb": 0.0,
            "processes": 0,
        }
        self.section_peak = dict(self.peak)  # the same, since the last section() call
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        psutil = self._psutil
        try:
            children = self._me.children(recursive=True)
        except psutil.Error:
            children = []
        rss = pss = 0
        largest = 0
        main = 0
        counted = 0
        for p in [self._me] + children:
            try:
                info = p.memory_full_info()  # smaps_rollup: cheap on current kernels
            except psutil.Error:  # a reader that ended between listing and reading
                continue
            rss += info.rss
            pss += info.pss
            counted += 1
            if p.pid == self._me.pid:
                main = info.rss
            else:
                largest = max(largest, info.rss)
        mb = 2**20
        for key, value in (
            ("sum_rss_mb", rss / mb),
            ("sum_pss_mb", pss / mb),
            ("main_rss_mb", main / mb),
            ("largest_reader_rss_mb", largest / mb),
            ("processes", counted),
        ):
            self.peak[key] = max(self.peak[key], value)
            self.section_peak[key] = max(self.section_peak[key], value)

    def section(self) -> dict:
        """The sampled peaks since the previous call (one pass's), then start a new section."""
        self._sample()
        out = {k: (round(v, 1) if k != "processes" else int(v)) for k, v in self.section_peak.items()}
        self.section_peak = dict.fromkeys(self.section_peak, 0.0)
        return out

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval)

    def __enter__(self) -> MemoryWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()
        self.peak = {k: (round(v, 1) if k != "processes" else int(v)) for k, v in self.peak.items()}


# -- step 1: the release ---------------------------------------------------------------------
def _paths(args) -> tuple[Path, Path, Path]:
    work = Path(args.work_dir).expanduser().resolve()
    return work, work / "sources", work / "release"


def _source_settings(args) -> dict:
    return {"sources_per_class": args.sources_per_class, "source_size": list(args.source_size), "seed": args.seed}


def _write_sources(sources: Path, args) -> None:
    """The few hundred real JPEGs the million keys link to: ``per_class`` training images of
    each of the 14 classes, up to 100 of them with a clean label, and ``per_class // 2`` (at
    least 1) validation and test images per class. Those with a clean label are the sources
    (:func:`write_annotation_scale` links to them, so every key's true label is known)."""
    from memomentum.testing.clothing1m import write_clothing1m

    p = args.sources_per_class
    held_out = max(1, p // 2)
    write_clothing1m(
        sources,
        per_class=p,
        size=tuple(args.source_size),
        n_clean_noisy=min(100, 14 * p),
        n_val_per_class=held_out,
        n_test_per_class=held_out,
        seed=args.seed,
    )


def source_paths(sources: Path) -> list[str]:
    """The source images in the order :func:`write_annotation_scale` numbers them (sorted keys
    of the sources' ``clean_label_kv.txt``): key ``i`` links to ``source_paths[i % n]``."""
    return [os.fspath(sources / k) for k in sorted(read_label_kv(sources / CLEAN_KV))]


def step_annotations(args) -> dict:
    """Write the release, or reuse one written with the same settings (a resumed write only
    adds what is missing: :func:`write_annotation_scale` keeps existing links)."""
    from memomentum.testing.clothing1m_scale import write_annotation_scale

    work, sources, release = _paths(args)
    work.mkdir(parents=True, exist_ok=True)
    state_file = work / _STATE
    state = json.loads(state_file.read_text()) if state_file.is_file() else {}
    out: dict = {"work_dir": os.fspath(work)}
    if state.get("sources") != _source_settings(args) or not state.get("sources_complete"):
        # Sources are rewritten from scratch, and then the release must go too: its links hold
        # the old files' inodes, and a resumed write keeps links that exist.
        for d in (sources, release):
            if d.exists():
                shutil.rmtree(d)
        state = {"sources": _source_settings(args)}
        t0 = time.perf_counter()
        _write_sources(sources, args)
        out["sources_written_s"] = round(time.perf_counter() - t0, 2)
        state["sources_complete"] = True
        state_file.write_text(json.dumps(state))
    want = {"n_keys": args.n_keys}
    n_sources = len(source_paths(sources))
    if state.get("release") == want and state.get("release_complete") and (release / NOISY_TRAIN).is_file():
        out.update(reused=True, n_sources=n_sources)
        return out
    state.update(release=want, release_complete=False)
    state_file.write_text(json.dumps(state))
    t0 = time.perf_counter()
    info = write_annotation_scale(release, n_keys=args.n_keys, images_from=sources, seed=args.seed)
    out.update(
        reused=False,
        n_sources=info["n_sources"],
        write_s=round(time.perf_counter() - t0, 2),
        link_s=round(info["link_seconds"], 2),
        annotation_files_s=round(info["write_seconds"], 2),
        n_train=info["n_train"],
        n_noisy_kv=info["n_noisy_kv"],
        n_clean_kv=info["n_clean_kv"],
    )
    state["release_complete"] = True
    state_file.write_text(json.dumps(state))
    return out


# -- step 2: read the release ----------------------------------------------------------------
def step_read(args) -> dict:
    """Time :func:`read_clothing1m` with the file check, from a fresh process."""
    _, _, release = _paths(args)
    before = current_rss_mb()
    t0 = time.perf_counter()
    files = read_clothing1m(release, image_size=args.image_size)
    seconds = time.perf_counter() - t0
    return {
        "seconds": round(seconds, 2),
        "n_train": len(files.train),
        "n_val": len(files.val),
        "n_test": len(files.test),
        "rss_before_mb": before,
        "rss_after_mb": current_rss_mb(),
        "peak_rss_mb": peak_rss_mb()["self"],
        "torch_loaded": "torch" in sys.modules,
    }


# -- step 3: pack the distinct images --------------------------------------------------------
def step_pack(args) -> dict:
    """Pack the distinct source images once (reused when already packed)."""
    from memomentum.store.layout import MANIFEST, store_key
    from memomentum.store.packing import pack_images

    work, sources, _ = _paths(args)
    paths = source_paths(sources)
    cache = work / "cache"
    key = store_key(paths, image_size=args.image_size, store_format="jpeg", quality=90)
    reused = any((d / MANIFEST).is_file() for d in cache.glob(f"jpeg{args.image_size}-{key[:20]}"))
    t0 = time.perf_counter()
    images = pack_images(
        paths,
        cache_dir=cache,
        image_size=args.image_size,
        store_format="jpeg",
        workers=available_cores(),
        progress=False,
        what="rehearsal source images",
    )
    seconds = time.perf_counter() - t0
    data = sum(p.stat().st_size for p in images.directory.glob("shard-*.jpegs"))
    return {
        "seconds": round(seconds, 2),
        "reused": reused,
        "store": os.fspath(images.directory),
        "n_images": len(images),
        "shards": len(images.shard_files),
        "mean_kb_per_image": round(data / len(images) / 1000, 1),
        "disk_mb": round(images.disk_bytes / 1e6, 2),
        "peak_rss_mb": peak_rss_mb(),
    }


# -- step 4: the reuse check of a million sources ---------------------------------------------
def step_reuse_check(args) -> dict:
    """What a run does before using a packed store of the training images: hash the ordered
    paths (the store's name), stat every file, compare with the stored stats."""
    from memomentum.store.layout import store_key
    from memomentum.store.packing import _changed_sources, _save_npz, _source_stats

    work, sources, release = _paths(args)
    t0 = time.perf_counter()
    files = read_clothing1m(release, image_size=args.image_size)
    read_s = time.perf_counter() - t0
    paths = files.train.paths
    rss_holding_paths = current_rss_mb()  # a run holds these paths for the whole run (Dataset.train_files)

    # First pass: warms the file system's caches as a previous epoch's run would have, checks
    # the link rule the stream step's index relies on, and gives the "stored" stats.
    src_inodes = np.array([os.stat(p).st_ino for p in source_paths(sources)], dtype=np.int64)
    n_src = len(src_inodes)
    # Into arrays as it goes: a list of a million stat results would be ~0.7 GB, which is this
    # benchmark's memory, not a run's.
    inodes, sizes, mtimes = (np.empty(len(paths), dtype=np.int64) for _ in range(3))
    t0 = time.perf_counter()
    for i, path in enumerate(paths):
        st = os.stat(path)
        inodes[i], sizes[i], mtimes[i] = st.st_ino, st.st_size, st.st_mtime_ns
    first_pass_s = time.perf_counter() - t0
    mismatched = int((inodes != src_inodes[np.arange(len(paths)) % n_src]).sum())
    stored = work / "reuse-check"
    stored.mkdir(parents=True, exist_ok=True)
    _save_npz(stored / "sources.npz", size=sizes, mtime_ns=mtimes)
    (stored / "manifest.json").write_text("{}")  # _changed_sources only asks that it exists
    del inodes, sizes, mtimes

    t0 = time.perf_counter()
    store_key(paths, image_size=args.image_size, store_format="jpeg", quality=90)
    t1 = time.perf_counter()
    sizes, mtimes = _source_stats(paths, what="clothing1m training images")
    t2 = time.perf_counter()
    changed = _changed_sources(stored, sizes, mtimes)
    t3 = time.perf_counter()
    return {
        "n_paths": len(paths),
        "read_s": round(read_s, 2),
        "store_key_s": round(t1 - t0, 2),
        "source_stats_s": round(t2 - t1, 2),
        "compare_s": round(t3 - t2, 3),
        "check_s": round(t3 - t0, 2),
        "changed": None if changed is None else int(changed.size),
        "first_stat_pass_s": round(first_pass_s, 2),
        "entries_not_linked_as_expected": mismatched,
        "rss_holding_paths_mb": rss_holding_paths,
        "peak_rss_mb": peak_rss_mb()["self"],
        "note": (
            "measured directly: pack_images on the million paths would decode a million images; "
            "this is its reuse path (store_key, _source_stats, _changed_sources) on a stored "
            "sources.npz of the same files"
        ),
    }


# -- step 5: index and stream ----------------------------------------------------------------
def _rate(n: int, seconds: float, readers: int, watch: MemoryWatch | None = None) -> dict:
    per_s = n / seconds if seconds > 0 else float("inf")
    out = {"images": n, "seconds": round(seconds, 2), "images_per_s": round(per_s, 1), "workers": readers}
    if readers:
        out["images_per_s_per_reader"] = round(per_s / readers, 1)
    if watch is not None:  # this pass's own peaks: which pass sets the step's peak, and why
        sampled = watch.section()
        out["peak_memory"] = {
            "main_rss_mb": peak_rss_since_reset_mb(),
            "sum_rss_mb": sampled["sum_rss_mb"],
            "sum_pss_mb": sampled["sum_pss_mb"],
            "largest_reader_rss_mb": sampled["largest_reader_rss_mb"],
        }
    return out


def _start_pass(watch: MemoryWatch) -> None:
    watch.section()  # drop what the previous pass's tail left in the sampled peaks
    reset_peak_rss()


def step_stream(args) -> dict:
    """Build the million-entry index and stream ``--n-stream`` images through it."""
    import torch

    from memomentum.data.dataset import IMAGENET_MEAN, IMAGENET_STD
    from memomentum.store.reading import PackedImages
    from memomentum.training.sources import StreamedSource, _BatchReader

    cpu = torch.device("cpu")
    padding = max(1, args.image_size // 8)  # as pack_image_files sets it: 32 at 256
    entries = args.entries
    n = min(args.n_stream, entries)
    bs = args.batch_size
    out: dict = {"entries": entries, "n_stream": n, "torch_threads": torch.get_num_threads()}
    with MemoryWatch() as watch:
        out["rss_before_index_mb"] = current_rss_mb()
        t0 = time.perf_counter()
        # entry j = the packed image key j links to (the rule step 4 checks by inode)
        images = PackedImages.from_index(args.store, np.arange(entries, dtype=np.int64) % args.n_sources)
        out["index_build_s"] = round(time.perf_counter() - t0, 3)
        index_arrays = [getattr(images, a) for a in ("_shard", "_offset", "_length")]
        out["index_mb"] = round(sum(a.nbytes for a in index_arrays) / 1e6, 1)
        out["rss_after_index_mb"] = current_rss_mb()
        assert len(images) == entries

        orders = {"index": torch.arange(n)}
        t0 = time.perf_counter()
        perm = torch.randperm(entries, generator=torch.Generator().manual_seed(args.seed))
        out["randperm_s"] = round(time.perf_counter() - t0, 3)
        orders["shuffled"] = perm[:n].clone()  # an epoch's first n images
        del perm

        passes: dict = {}
        # the passes reset the peak RSS to get their own: keep the peak so far (imports, index)
        peak_before_passes = peak_rss_since_reset_mb()
        # in this process: one core's decode rate (no reader processes, no IPC)
        k = min(n, 4 * bs)
        rows = orders["shuffled"][:k].numpy()
        buf = np.empty((bs,) + images.shape[1:], dtype=np.uint8)
        t0 = time.perf_counter()
        for s in range(0, k, bs):
            images.read(rows[s : s + bs], out=buf[: len(rows[s : s + bs])])
        passes["in_process_shuffled"] = _rate(k, time.perf_counter() - t0, 0)

        for workers in args.device_workers:
            for name, order in orders.items():
                source = StreamedSource(
                    images, mean=IMAGENET_MEAN, std=IMAGENET_STD, device=cpu, workers=workers, padding=padding
                )
                g = torch.Generator().manual_seed(args.seed)
                count = 0
                _start_pass(watch)
                t0 = time.perf_counter()
                for xb in source.batches(order, bs, augment=g):  # as a run's training loop receives them
                    count += xb.shape[0]
                passes[f"device_{name}_w{workers}"] = _rate(count, time.perf_counter() - t0, workers, watch)
                print(
                    f"  stream {entries:,}: device_{name}_w{workers} {passes[f'device_{name}_w{workers}']}",
                    file=sys.stderr,
                    flush=True,
                )
        for workers in args.workers:
            for name, order in orders.items():
                rows = order.numpy()
                plan = [rows[s : s + bs] for s in range(0, rows.size, bs)]
                # the loader StreamedSource builds, without the normalisation it adds
                loader = torch.utils.data.DataLoader(
                    _BatchReader(images),
                    batch_size=None,
                    sampler=plan,
                    num_workers=workers,
                    prefetch_factor=2 if workers else None,
                )
                count = 0
                _start_pass(watch)
                t0 = time.perf_counter()
                for raw in loader:
                    count += raw.shape[0]
                passes[f"readers_{name}_w{workers}"] = _rate(count, time.perf_counter() - t0, workers, watch)
                print(
                    f"  stream {entries:,}: readers_{name}_w{workers} {passes[f'readers_{name}_w{workers}']}",
                    file=sys.stderr,
                    flush=True,
                )
                del loader
    out["passes"] = passes
    main_peaks = [peak_before_passes] + [p["peak_memory"]["main_rss_mb"] for p in passes.values() if "peak_memory" in p]
    out["peak_memory"] = dict(
        watch.peak,
        main_peak_rss_mb=max(filter(None, main_peaks), default=None),
        largest_reader_ru_maxrss_mb=peak_rss_mb()["largest_child"],
    )
    return out


# -- the top level ---------------------------------------------------------------------------
def _common(args) -> list[str]:
    return [
        "--work-dir",
        args.work_dir,
        "--n-keys",
        str(args.n_keys),
        "--seed",
        str(args.seed),
        "--sources-per-class",
        str(args.sources_per_class),
        "--source-size",
        "x".join(map(str, args.source_size)),
        "--image-size",
        str(args.image_size),
        "--batch-size",
        str(args.batch_size),
    ]


def run_step(step: str, args, *extra: str) -> dict:
    """Run one step in a fresh interpreter; its JSON line, plus the wall time seen from here
    (interpreter start and imports included)."""
    cmd = [sys.executable, os.path.abspath(__file__), "--step", step, *_common(args), *extra]
    print(f"[rehearsal] {step} {' '.join(extra)}", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    r = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(f"step {step} failed (exit {r.returncode}); its output: {r.stdout[-2000:]}")
    out = json.loads(r.stdout.strip().splitlines()[-1])
    out["step_wall_s"] = round(wall, 2)
    return out


def _workers_list(text: str) -> list[int]:
    out = []
    for part in filter(None, text.split(",")):
        value = available_cores() if part == "all" else int(part)
        if value < 0:
            raise argparse.ArgumentTypeError("workers must be 'all' or non-negative integers")
        if value not in out:
            out.append(value)
    return out


def _size(text: str) -> tuple[int, int]:
    w, _, h = text.partition("x")
    return int(w), int(h)


def projection(stream: dict) -> dict:
    """One epoch over the real million on 16 cores, from one reader process's rate."""
    passes = stream["passes"]
    if "readers_shuffled_w1" in passes:
        basis = "readers_shuffled_w1"
        per_reader = passes[basis]["images_per_s"]
    else:  # no one-reader pass asked for: the largest reader pool's rate per reader
        basis = max((k for k in passes if k.startswith("readers_shuffled_w")), key=lambda k: passes[k]["workers"])
        per_reader = passes[basis]["images_per_s_per_reader"]
    rate16 = per_reader * PROJECTED_CORES
    return {
        "basis": basis,
        "per_reader_images_per_s": per_reader,
        "cores": PROJECTED_CORES,
        "images_per_s": round(rate16),
        "epoch_images": CLOTHING1M_TRAIN,
        "epoch_s": round(CLOTHING1M_TRAIN / rate16, 1),
        "epoch_min": round(CLOTHING1M_TRAIN / rate16 / 60, 2),
        "resnet50_needs_images_per_s": RESNET50_IMAGES_PER_S,
        "feeds_resnet50": rate16 >= RESNET50_IMAGES_PER_S,
        "headroom": round(rate16 / RESNET50_IMAGES_PER_S, 2),
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--work-dir",
        default="/tmp/memomentum-rehearsal",
        help="sources/, release/, cache/ and reuse-check/ go here; reused by later runs",
    )
    p.add_argument("--n-keys", type=int, default=1_000_000, help="noisy training keys (default 1,000,000)")
    p.add_argument("--n-stream", type=int, default=50_000, help="images streamed per pass (default 50,000)")
    p.add_argument(
        "--rss-entries", type=int, default=100_000, help="entries of the second, smaller index+stream run (0: skip it)"
    )
    p.add_argument(
        "--rss-n-stream",
        type=int,
        default=10_000,
        help="images per pass of that run: its peak memory is reached within a few batches",
    )
    p.add_argument("--workers", default="all,1", help="reader processes of the readers-only passes (list)")
    p.add_argument("--device-workers", default="all", help="reader processes of the device-side passes (list)")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--image-size", type=int, default=256, help="packed side; padding is a side // 8")
    p.add_argument("--sources-per-class", type=int, default=20, help="(default 20: 380 source images)")
    p.add_argument("--source-size", type=_size, default=(500, 375), help="WIDTHxHEIGHT of the sources")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--step", choices=STEPS, help=argparse.SUPPRESS)
    p.add_argument("--entries", type=int, help=argparse.SUPPRESS)
    p.add_argument("--store", help=argparse.SUPPRESS)
    p.add_argument("--n-sources", type=int, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.workers = _workers_list(args.workers)
    args.device_workers = _workers_list(args.device_workers)
    if args.n_keys < 1 or args.n_stream < 1 or args.batch_size < 1:
        p.error("--n-keys, --n-stream and --batch-size must be positive")

    if args.step:
        if args.step == "stream":
            args.entries = args.entries or args.n_keys
        out = {
            "annotations": step_annotations,
            "read": step_read,
            "pack": step_pack,
            "reuse_check": step_reuse_check,
            "stream": step_stream,
        }[args.step](args)
        print(json.dumps(out))
        return 0

    t0 = time.perf_counter()
    load_start = [round(x, 2) for x in os.getloadavg()]
    result: dict = {}
    result["annotations"] = run_step("annotations", args)
    result["read"] = run_step("read", args)
    result["pack"] = run_step("pack", args)
    result["reuse_check"] = run_step("reuse_check", args)
    stream_args = [
        "--store",
        result["pack"]["store"],
        "--n-sources",
        str(result["annotations"]["n_sources"]),
        "--workers",
        ",".join(map(str, args.workers)),
        "--device-workers",
        ",".join(map(str, args.device_workers)),
    ]
    result["stream"] = {
        str(args.n_keys): run_step(
            "stream", args, "--entries", str(args.n_keys), "--n-stream", str(args.n_stream), *stream_args
        )
    }
    if args.rss_entries:
        result["stream"][str(args.rss_entries)] = run_step(
            "stream", args, "--entries", str(args.rss_entries), "--n-stream", str(args.rss_n_stream), *stream_args
        )
    peaks = {k: v["peak_memory"]["sum_rss_mb"] for k, v in result["stream"].items()}
    result["stream_peak_rss"] = {
        "sum_rss_mb_by_entries": peaks,
        "sum_pss_mb_by_entries": {k: v["peak_memory"]["sum_pss_mb"] for k, v in result["stream"].items()},
        "main_peak_rss_mb_by_entries": {k: v["peak_memory"]["main_peak_rss_mb"] for k, v in result["stream"].items()},
        # what does grow with the entries: the index (16 bytes each) and the resident memory it adds
        "index_mb_by_entries": {k: v["index_mb"] for k, v in result["stream"].items()},
        "rss_after_index_mb_by_entries": {k: v["rss_after_index_mb"] for k, v in result["stream"].items()},
        "goal_gb": RSS_GOAL_GB,
        "below_goal": all(v < RSS_GOAL_GB * 1024 for v in peaks.values()),
    }
    result["projection"] = projection(result["stream"][str(args.n_keys)])
    result["machine"] = {
        "cpu_cores": available_cores(),
        "python": sys.version.split()[0],
        "loadavg_start": load_start,
        "loadavg_end": [round(x, 2) for x in os.getloadavg()],
        "note": "shared with other processes (load average above): times are upper bounds",
    }
    result["settings"] = {
        "n_keys": args.n_keys,
        "n_stream": args.n_stream,
        "rss_entries": args.rss_entries,
        "rss_n_stream": args.rss_n_stream,
        "batch_size": args.batch_size,
        "image_size": args.image_size,
        "padding": max(1, args.image_size // 8),
        "store_format": "jpeg",
        "workers": args.workers,
        "device_workers": args.device_workers,
        "source_size": list(args.source_size),
        "work_dir": os.fspath(Path(args.work_dir).expanduser().resolve()),
    }
    result["caveats"] = [
        "the few hundred packed images fill a couple of shards that stay in the page cache: the shuffled "
        "order costs no disk reads here, unlike the ~25 GB real store",
        "the device side (normalise, crop_flip) runs on this CPU and competes with the readers for its cores",
    ]
    result["wall_s"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

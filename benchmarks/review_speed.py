"""How fast ``memomentum review`` answers on a run of Clothing1M's size.

A synthetic finished run directory of ``--n`` examples (default 1,000,000; 14 classes, a
quarter suspects, a ``file`` column of distinct image paths, as a run on image files writes
it) is written once into ``--work-dir``; ``--thumbs`` of its image files exist on disk
(256 x 256 JPEGs, the packed store's side), the rest are only named. Measured, each
``--repeats`` times (the median reported, every time listed):

* ``open_first_time_s``: opening the review in this process for the first time
  (``examples.csv`` parsed into columns and those cached, the review order computed): what
  ``memomentum review`` does before it serves anything; ``open_s``: every later opening (the
  columns memory-mapped from the cache);
* ``first_page_s``: the page's first two requests through the web application (Starlette's
  test client: the HTTP layer without a socket): ``/api/meta`` (classes, confusion matrix,
  counts) and ``/api/examples`` (the first 48 suspects);
* ``open_and_first_page_s`` (``first_time_open_and_first_page_s``): the two together, the time
  from the review's start to its first page in this process; ``command_to_first_page_s``
  (``..._first_time_s``): the same from the shell, ``memomentum review RUN --no-browser --port 0``
  started and its first page fetched over the socket (Python's start and imports included);
* ``filtered_page_s``: a page of one confusion-matrix cell (given x predicted), of the undecided
  suspects, and of a file-name search (the first search also makes the names' index);
* ``thumbnail_s``: one thumbnail made from its file (cold) and served again from the cache;
* ``decision_s``: one decision written to ``review.csv`` when it already holds 1,000 decisions.

    python benchmarks/review_speed.py                 # 1,000,000 examples
    python benchmarks/review_speed.py --n 100000 --repeats 2

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from memomentum.data.registry import CLOTHING1M  # noqa: E402  (the checkout's package)

CLASSES = list(CLOTHING1M.class_names)  # Clothing1M's 14


def write_run(run_dir: Path, n: int, thumbs: int, seed: int = 0) -> list[int]:
    """The synthetic run (once: reused when it exists); returns the indices with files on disk."""
    run_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    examples = run_dir / "examples.csv"
    on_disk = sorted(rng.choice(n, size=thumbs, replace=False).tolist())
    if not examples.is_file():
        given = rng.integers(0, len(CLASSES), n)
        issue = rng.random(n) < 0.25
        predicted = np.where(issue, (given + rng.integers(1, len(CLASSES), n)) % len(CLASSES), given)
        quality = np.where(issue, rng.random(n) * 0.5, 0.5 + rng.random(n) * 0.5)
        conf = rng.random(n) * 0.5 + 0.5
        names = np.asarray(CLASSES)
        files = [f"{run_dir}/images/{k % 1000:03d}/{k:07d}.jpg" for k in range(n)]
        lines = ["index,given_label,predicted_label,confidence,is_confident,is_label_issue,label_quality,file"]
        lines += [
            f"{k},{g},{p},{c:.6f},{int(not s)},{int(s)},{q:.6f},{f}"
            for k, g, p, c, s, q, f in zip(range(n), names[given], names[predicted], conf, issue, quality, files)
        ]
        tmp = examples.with_suffix(".tmp")
        tmp.write_text("\n".join(lines) + "\n")
        tmp.rename(examples)
        (run_dir / "classes.json").write_text(json.dumps(CLASSES))
        (run_dir / "config.json").write_text(json.dumps({"dataset": str(run_dir / "images"), "data_dir": None}))
        (run_dir / "summary.json").write_text("{}")
    _write_images(run_dir, on_disk, rng)
    return on_disk


def _write_images(run_dir: Path, indices: list[int], rng) -> None:
    from PIL import Image

    for k in indices:
        path = run_dir / "images" / f"{k % 1000:03d}" / f"{k:07d}.jpg"
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            y, x = np.mgrid[0:256, 0:256]
            pixels = np.stack([(x + k) % 256, (y * 2) % 256, rng.integers(0, 256, (256, 256))], -1)
            Image.fromarray(pixels.astype(np.uint8)).save(path, quality=90)


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def in_process(run_dir: Path, on_disk: list[int]) -> dict:
    """One opening of the review and its requests, in this process."""
    from starlette.testclient import TestClient

    from memomentum.entrypoints.review.examples import cache_file
    from memomentum.entrypoints.review.server import create_app
    from memomentum.entrypoints.review.session import Review

    (run_dir / "review.csv").unlink(missing_ok=True)
    cache_file(run_dir / "examples.csv").unlink(missing_ok=True)
    t_parse, _ = timed(lambda: Review([run_dir], lock=False))  # the first opening: parses and caches
    t_open, review = timed(lambda: Review([run_dir], lock=False))  # every later one
    client = TestClient(create_app(review, token="t", hosts={"testserver"}))

    def get(url):
        r = client.get(url + ("&" if "?" in url else "?") + "token=t")
        assert r.status_code == 200, (url, r.status_code)
        return r

    t_first, _ = timed(lambda: (get("/api/meta"), get("/api/examples?suspects=1&limit=48")))
    out = {
        "n_suspects": int(review.ex.issue.sum()),
        "open_first_time_s": t_parse,
        "open_s": t_open,
        "first_page_s": t_first,
        "open_and_first_page_s": t_open + t_first,
        "first_time_open_and_first_page_s": t_parse + t_first,
    }
    out["filtered_page_s"] = {
        "cell_given_3_predicted_7": timed(lambda: get("/api/examples?given=3&predicted=7&limit=48"))[0],
        "undecided_suspects": timed(lambda: get("/api/examples?suspects=1&state=undecided&limit=48"))[0],
        "search_first": timed(lambda: get("/api/examples?q=0123456&limit=48"))[0],
        "search_again": timed(lambda: get("/api/examples?q=0999&limit=48"))[0],
        "page_1000": timed(lambda: get("/api/examples?suspects=1&offset=48000&limit=48"))[0],
    }
    cold = [timed(lambda k=k: get(f"/thumb/{k}"))[0] for k in on_disk]
    warm = [timed(lambda k=k: get(f"/thumb/{k}"))[0] for k in on_disk]
    out["thumbnail_s"] = {
        "cold_median": statistics.median(cold),
        "cold_max": max(cold),
        "cached_median": statistics.median(warm),
    }
    review.decisions.decide(np.arange(1000), "keep")  # review.csv with 1,000 decisions, then one more
    last = int(review.ex.index[-1])
    out["decision_s"] = timed(lambda: review.decide({"indices": [last], "decision": "exclude"}))[0]
    (run_dir / "review.csv").unlink(missing_ok=True)
    return out


def from_the_shell(run_dir: Path, *, cached: bool) -> float:
    """``memomentum review`` started, its URL read, its first page fetched over the socket;
    ``cached``: opened before (the columns of examples.csv cached), else for the first time."""
    from memomentum.entrypoints.review.examples import cache_file

    if not cached:
        cache_file(run_dir / "examples.csv").unlink(missing_ok=True)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    t = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "memomentum", "review", str(run_dir), "--no-browser", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    try:
        url = re.search(r"(http://\S+)/\?token=(\S+)", proc.stdout.readline())
        base, token = url.group(1), url.group(2)
        for path in ("/api/meta", "/api/examples?suspects=1&limit=48"):
            sep = "&" if "?" in path else "?"
            urllib.request.urlopen(f"{base}{path}{sep}token={token}").read()
        return time.perf_counter() - t
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        proc.stdout.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--thumbs", type=int, default=50)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--work-dir", default=os.path.join(tempfile.gettempdir(), "memomentum-review-speed"))
    args = ap.parse_args()
    run_dir = Path(args.work_dir) / f"run-{args.n}"
    os.environ["XDG_CACHE_HOME"] = str(Path(args.work_dir) / "cache")  # the review's cache of the columns
    t_write, on_disk = timed(lambda: write_run(run_dir, args.n, args.thumbs))
    runs = [in_process(run_dir, on_disk) for _ in range(args.repeats)]
    first_shell = [from_the_shell(run_dir, cached=False) for _ in range(args.repeats)]
    shell = [from_the_shell(run_dir, cached=True) for _ in range(args.repeats)]
    median = {
        k: statistics.median(r[k] for r in runs)
        for k in (
            "open_first_time_s",
            "open_s",
            "first_page_s",
            "open_and_first_page_s",
            "first_time_open_and_first_page_s",
            "decision_s",
        )
    }
    print(
        json.dumps(
            {
                "benchmark": "review_speed",
                "n_examples": args.n,
                "n_suspects": runs[0]["n_suspects"],
                "repeats": args.repeats,
                "machine": {
                    "cpu": platform.processor() or platform.machine(),
                    "cores": os.cpu_count(),
                    "python": platform.python_version(),
                    "load_average_at_end": os.getloadavg(),
                },
                "setup_s": round(t_write, 2),
                **{k: round(v, 4) for k, v in median.items()},
                "command_to_first_page_s": round(statistics.median(shell), 3),
                "command_to_first_page_first_time_s": round(statistics.median(first_shell), 3),
                "filtered_page_s": {
                    k: round(statistics.median(r["filtered_page_s"][k] for r in runs), 4)
                    for k in runs[0]["filtered_page_s"]
                },
                "thumbnail_s": {
                    k: round(statistics.median(r["thumbnail_s"][k] for r in runs), 5) for k in runs[0]["thumbnail_s"]
                },
                "goal_first_page_s": 2.0,
                "every_run": runs,
                "every_command_to_first_page_s": [round(s, 3) for s in shell],
                "every_command_to_first_page_first_time_s": [round(s, 3) for s in first_shell],
            },
            indent=2,
            default=float,
        )
    )


if __name__ == "__main__":
    main()

"""Run directories for the review's tests, and a review served in a child process.

:func:`fake_image_run` writes what ``memomentum review`` reads of a finished run on an image
folder (``examples.csv``, ``config.json``, ``classes.json``) without training, with label
qualities chosen by the test, so that the order of the page can be checked exactly. The
folder's images are real PNG files and the rows follow the image-folder reader's order, so
thumbnails and ``--export`` work on it as on a trained run.
"""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from helpers import checkout_env

CLASSES = ["cat", "dog", "fox"]
EXAMPLE_COLUMNS = [
    "index",
    "given_label",
    "predicted_label",
    "confidence",
    "is_confident",
    "is_label_issue",
    "label_quality",
    "file",
]


def image_folder(root: Path, per_class: int = 8, side: int = 24) -> Path:
    """Class folders of small PNGs, one colour pattern per class (numbered files)."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for k, name in enumerate(CLASSES):
        (root / name).mkdir(parents=True, exist_ok=True)
        for j in range(per_class):
            pixels = rng.integers(0, 60, (side, side, 3), dtype=np.uint8)
            pixels[:, :, k] += 180
            Image.fromarray(pixels).save(root / name / f"{name}{j:02d}.png")
    return root


def fake_image_run(run_dir: Path, folder: Path, *, seed: int = 0, held_out: int = 3) -> dict:
    """A finished run's files for ``folder`` (every image but ``held_out`` validation ones):
    random predictions and label qualities. Returns the columns written."""
    from memomentum.data.folders import read_image_folder

    files = read_image_folder(folder)
    rng = np.random.default_rng(seed)
    n = len(files.train.paths)
    index = np.sort(rng.permutation(n)[held_out:])
    given = files.train.labels[index]
    predicted = np.where(rng.random(index.size) < 0.5, (given + 1) % len(CLASSES), given)
    quality = np.round(rng.random(index.size), 6)
    issue = (predicted != given).astype(int)
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / "examples.csv", "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(EXAMPLE_COLUMNS)
        for i, j in enumerate(index):
            w.writerow(
                [
                    j,
                    CLASSES[given[i]],
                    CLASSES[predicted[i]],
                    f"{rng.random():.6f}",
                    1 - issue[i],
                    issue[i],
                    f"{quality[i]:.6f}",
                    files.train.paths[j],
                ]
            )
    (run_dir / "classes.json").write_text(json.dumps(CLASSES))
    (run_dir / "config.json").write_text(
        json.dumps({"dataset": str(folder), "data_dir": None, "label_column": "label", "noise_type": "none"})
    )
    (run_dir / "summary.json").write_text("{}")
    return {
        "index": index,
        "given": given,
        "predicted": predicted,
        "quality": quality,
        "issue": issue,
        "files": [files.train.paths[j] for j in index],
    }


class Served:
    """``memomentum review RUN_DIR --no-browser --port 0`` in a child process: its URL,
    port and token once it prints them."""

    def __init__(self, run_dir: Path, *extra: str, timeout: float = 60):
        env = checkout_env(OMP_NUM_THREADS="1")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "memomentum", "review", str(run_dir), "--no-browser", "--port", "0", *extra],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        deadline = time.monotonic() + timeout
        line = ""
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            found = re.search(r"(http://\S+):(\d+)/\?token=(\S+)", line)
            if found:
                self.base = f"{found.group(1)}:{found.group(2)}"
                self.port, self.token = int(found.group(2)), found.group(3)
                self.url = f"{self.base}/?token={self.token}"
                return
            if self.proc.poll() is not None:
                break
        self.stop()
        raise RuntimeError(f"memomentum review did not start: {line}{self.proc.stderr.read()}")

    def stop(self, signal_number: int | None = None) -> None:
        if self.proc.poll() is None:
            if signal_number is None:
                self.proc.terminate()
            else:
                self.proc.send_signal(signal_number)
            self.proc.wait(timeout=30)
        for stream in (self.proc.stdout, self.proc.stderr):
            stream.close()


def read_review(run_dir: Path) -> list[dict]:
    with open(run_dir / "review.csv", newline="") as f:
        return list(csv.DictReader(f))

"""Fingerprints of what a few runs compute, to show that a change of code changes no result.

Runs the default digits run, a CE pairflip run, a short Fashion-MNIST run (2 epochs x 2
outer x 2 inner loops), a Clothing1M-mode run on a synthetic miniature, the estimator
(network, network factory and scikit-learn model) and ``find_label_issues``, each in its
own process, and prints one SHA-256 per output as JSON. Timings, and how threads waited and
where they ran, are left out (the only things meant to differ); paths are written relative to
the scratch folder.

    python benchmarks/behaviour.py --out before.json          # record
    python benchmarks/behaviour.py --compare before.json      # exit 1 when anything differs

Bit-identity holds for the same thread counts on the same kind of CPU (docs/results.md:
the same seed, thread count and CPU capability), so a recording is compared on the machine that made it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

# Left out of summary.json's digest: timings, and how threads waited and where they ran, which
# follow the machine's load and change only the speed (memomentum.training.threads).
TIMING_KEYS = ("wall_time_s", "time_s", "openmp_wait", "openmp_binding")
FMNIST = "/usr/share/datasets/fashion-mnist"

# case name -> the CLI arguments of a run (the scratch folder is substituted for ROOT)
RUNS = {
    "digits-default": [],
    "digits-ce-pairflip": ["--method", "ce", "--noise-type", "pairflip", "--noise-rate", "0.45", "--seed", "2"],
    "fashion-mnist-2x2x2": [
        "--dataset",
        "fashion-mnist",
        "--epochs",
        "2",
        "--max-outer-loop",
        "2",
        "--max-inner-loop",
        "2",
        "--threads",
        "1",
    ],
    "clothing1m-miniature": [
        "--dataset",
        "clothing1m",
        "--data-dir",
        "ROOT/clothing1m",
        "--cache-dir",
        "ROOT/cache",
        "--image-size",
        "24",
        "--model",
        "mlp",
        "--pretrained",
        "none",
        "--workers",
        "2",
        "--epochs",
        "3",
        "--max-outer-loop",
        "2",
        "--max-inner-loop",
        "2",
        "--batch-size",
        "16",
        "--lr",
        "0.05",
    ],
}

# in-process cases: Python run in a fresh interpreter, printing a JSON object of arrays' digests
API_CASES = {
    "estimator-network": """
from memomentum.entrypoints.estimator import MeMomentumClassifier
clf = MeMomentumClassifier(epochs=4, max_outer_loop=2, max_inner_loop=3, random_state=3, threads=1).fit(X, y)
out = {"proba": digest(clf.predict_proba(X)), "confident": digest(clf.confident_)}
""",
    "estimator-factory": """
import torch
from memomentum.entrypoints.estimator import MeMomentumClassifier
def net(n_features, n_classes):
    return torch.nn.Sequential(torch.nn.Linear(n_features, 32), torch.nn.ReLU(), torch.nn.Linear(32, n_classes))
clf = MeMomentumClassifier(model=net, epochs=4, max_outer_loop=2, max_inner_loop=3, random_state=3, threads=1).fit(X, y)
out = {"proba": digest(clf.predict_proba(X)), "confident": digest(clf.confident_)}
""",
    "estimator-sklearn": """
from sklearn.linear_model import LogisticRegression
from memomentum.entrypoints.estimator import MeMomentumClassifier
clf = MeMomentumClassifier(model=LogisticRegression(max_iter=200), random_state=3, threads=1).fit(X, y)
out = {"proba": digest(clf.predict_proba(X)), "confident": digest(clf.confident_),
       "rounds": digest(np.array([r["n_confident"] for r in clf.summary_["rounds"]]))}
""",
    "find-label-issues": """
from memomentum import find_label_issues
mask = find_label_issues(y, features=X, epochs=5, max_outer_loop=2, max_inner_loop=3, seed=4, threads=1,
                         progress=False)
ranked = find_label_issues(y, features=X, epochs=5, max_outer_loop=2, max_inner_loop=3, seed=4, threads=1,
                           progress=False, return_indices_ranked_by="label_quality")
out = {"mask": digest(mask), "ranked": digest(ranked)}
""",
}

API_PRELUDE = """
import hashlib, json
import numpy as np
from sklearn.datasets import load_digits
def digest(a):
    a = np.ascontiguousarray(a)
    return hashlib.sha256(str(a.dtype).encode() + str(a.shape).encode() + a.tobytes()).hexdigest()
X, y = load_digits(return_X_y=True)
y = y.copy()
rng = np.random.RandomState(0)
flip = rng.rand(y.size) < 0.3
y[flip] = rng.randint(0, 10, flip.sum())
"""


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def text_digest(path: Path, root: Path) -> str:
    return sha(path.read_text().replace(str(root), "ROOT").encode())


def summary_digest(path: Path, root: Path) -> str:
    summary = json.loads(path.read_text().replace(str(root), "ROOT"))
    for key in TIMING_KEYS:
        summary.pop(key, None)
    # the image files' digest hashes their absolute paths, which the random scratch folder changes
    # (ROOT above reaches only the text); examples.csv's file column and the store keep the files
    (summary.get("data_fingerprint") or {}).pop("files", None)
    return sha(json.dumps(summary, sort_keys=True).encode())


def model_digest(path: Path) -> str:
    import torch

    saved = torch.load(path, map_location="cpu", weights_only=True)
    h = hashlib.sha256()
    for key in sorted(saved):
        if key == "state_dict":
            for name, tensor in saved[key].items():
                h.update(name.encode() + str(tensor.dtype).encode() + tensor.contiguous().numpy().tobytes())
        else:
            h.update(f"{key}={saved[key]!r}".encode())
    return h.hexdigest()


def npz_digest(path: Path) -> str:
    import numpy as np

    h = hashlib.sha256()
    with np.load(path) as f:
        for key in sorted(f.files):
            h.update(key.encode() + f[key].tobytes())
    return h.hexdigest()


def run_dir_digests(run_dir: Path, root: Path) -> dict:
    """One digest per output file, report.html aside (it shows the wall time)."""
    out = {}
    for path in sorted(run_dir.iterdir()):
        if path.name == "summary.json":
            out[path.name] = summary_digest(path, root)
        elif path.name == "model.pt":
            out[path.name] = model_digest(path)
        elif path.suffix == ".npz":
            out[path.name] = npz_digest(path)
        elif path.suffix in (".csv", ".json"):
            out[path.name] = text_digest(path, root)
    return out


def run_case(name: str, args: list[str], root: Path) -> dict:
    out = root / "runs" / name
    argv = [a.replace("ROOT", str(root)) for a in args]
    subprocess.run(
        [sys.executable, "-m", "memomentum", "run", *argv, "--quiet", "--out", str(out)],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return run_dir_digests(out, root)


def api_case(code: str) -> dict:
    script = API_PRELUDE + code + "\nprint(json.dumps(out))\n"
    done = subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def record(only: list[str] | None) -> dict:
    from memomentum.testing.clothing1m import write_clothing1m

    root = Path(tempfile.mkdtemp(prefix="mm-behaviour-"))
    try:
        write_clothing1m(
            root / "clothing1m",
            per_class=12,
            size=(30, 26),
            noise=0.3,
            n_clean_noisy=30,
            n_val_per_class=2,
            n_test_per_class=3,
            seed=0,
        )
        results = {}
        for name, args in RUNS.items():
            if only and name not in only:
                continue
            if name.startswith("fashion-mnist") and not Path(FMNIST).is_dir():
                continue
            results[name] = run_case(name, args, root)
            print(f"{name}: done", file=sys.stderr)
        for name, code in API_CASES.items():
            if not only or name in only:
                results[name] = api_case(code)
                print(f"{name}: done", file=sys.stderr)
        return results
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", help="write the fingerprints to this JSON file")
    parser.add_argument("--compare", help="compare with the fingerprints in this JSON file")
    parser.add_argument("--only", nargs="*", help="these cases only")
    a = parser.parse_args()
    results = record(a.only)
    text = json.dumps(results, indent=1, sort_keys=True)
    print(text)
    if a.out:
        Path(a.out).write_text(text + "\n")
    if a.compare:
        before = json.loads(Path(a.compare).read_text())
        differ = [
            f"{case}/{key}"
            for case, files in results.items()
            for key in set(files) | set(before.get(case, {}))
            if files.get(key) != before.get(case, {}).get(key)
        ]
        print(json.dumps({"compared": sorted(results), "differ": sorted(differ)}))
        return 1 if differ else 0
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())

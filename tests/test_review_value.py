"""benchmarks/review_value.py: the review orders, precision at k and the retrained cells, on a
tiny schedule; and the measures it is built from."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from helpers import REPO


def _module():
    spec = importlib.util.spec_from_file_location("review_value", REPO / "benchmarks" / "review_value.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_precision_at_k_is_the_share_of_wrong_labels_among_the_first_k():
    rv = _module()
    wrong = np.array([True, False, True, True, False])
    order = np.array([4, 2, 0, 1, 3])
    assert rv.precision_at(order, wrong, 1) == 0.0
    assert rv.precision_at(order, wrong, 3) == round(2 / 3, 4)
    assert rv.precision_at(order, wrong, 5) == 0.6


def test_cleanlab_order_puts_its_flagged_examples_first_then_the_rest_by_its_score():
    rv = _module()
    noisy = np.array([0, 0, 0, 1, 1, 1, 0, 1] * 5)
    probs = np.tile(
        [[0.9, 0.1], [0.8, 0.2], [0.1, 0.9], [0.2, 0.8], [0.7, 0.3], [0.1, 0.9], [0.6, 0.4], [0.4, 0.6]], (5, 1)
    )
    order = rv.cleanlab_order(rv.Setting("t", None, (1,), Path("."), None, noisy, noisy), probs)
    assert sorted(order) == list(range(noisy.size))
    score = probs[np.arange(noisy.size), noisy]
    from cleanlab.filter import find_label_issues

    flagged = find_label_issues(noisy, probs)
    n = int(flagged.sum())
    assert n > 0 and set(order[:n]) == set(np.flatnonzero(flagged))
    assert list(score[order[n:]]) == sorted(score[order[n:]])


def test_the_benchmark_prints_every_order_and_cell_and_its_markdown(tmp_path):
    out = tmp_path / "r.json"
    args = [
        "--quick",
        "--settings",
        "digits-symmetric-0.2",
        "--seeds",
        "2",
        "--retrain-seeds",
        "2",
        "--folds",
        "2",
        "--work",
        str(tmp_path / "work"),
        "--out",
        str(out),
    ]
    done = subprocess.run(
        [sys.executable, "benchmarks/review_value.py", *args], cwd=REPO, capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert json.loads(out.read_text()) == report  # the checkpoint holds the whole result
    entry = report["settings"]["digits-symmetric-0.2"]
    assert entry["n_mislabelled"] == round(entry["realised_noise_rate"] * entry["n_train"])
    assert set(entry["precision_at_k"]) == {"single", "consensus", "cleanlab", "random"}
    assert all(0 <= v <= 1 for order in entry["precision_at_k"].values() for v in order.values())
    # no review: the consensus runs of the same seeds on the uncorrected labels
    runs = [
        json.loads((tmp_path / "work" / "digits-symmetric-0.2" / f"memomentum-seed{s}" / "summary.json").read_text())[
            "test_accuracy"
        ]
        for s in (1, 2)
    ]
    assert entry["retrained"]["no_review"]["values"] == runs
    for k in ("5", "10"):
        cell = entry["retrained"][k]
        assert set(cell) == {"single", "consensus", "cleanlab", "random"}
        assert all(cell[o]["n"] == 2 for o in cell)
        assert cell["single"]["minus_random"] == round(cell["single"]["mean"] - cell["random"]["mean"], 2)
    # started again: every run is found finished, nothing trains, the same result
    again = subprocess.run(
        [sys.executable, "benchmarks/review_value.py", *args], cwd=REPO, capture_output=True, text=True, timeout=900
    )
    assert again.returncode == 0 and "review_value:" not in again.stderr
    timing = lambda r: {k: v for k, v in r["settings"]["digits-symmetric-0.2"].items() if k != "orders_s"}  # noqa: E731
    assert timing(json.loads(again.stdout)) == timing(report)
    table = subprocess.run(
        [sys.executable, "benchmarks/review_value.py", "--markdown", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "| digits-symmetric-0.2 | 10 |" in table and "±" in table

"""Verdicts users of cleanlab recognise (examples.csv columns, label_quality, find_label_issues,
rounds.npz) and the difficulty quintiles (--track-difficulty)."""

import csv
import json
import os
import signal
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from helpers import REPO, SCHEDULE_2_ROUNDS, flags

import memomentum
from memomentum.base.errors import InputError
from memomentum.cli import main
from memomentum.config import RunConfig
from memomentum.data import dataset_from_arrays, load_dataset
from memomentum.entrypoints.api import Interrupted, run
from memomentum.method.difficulty import DifficultyTracker, difficulty_quintiles, quintile_recall
from memomentum.method.verdicts import ranked_issues, verdict_columns
from memomentum.noise.labels import make_noisy_labels
from memomentum.runner.records import RunRecords, read_rounds

TINY = ["--dataset", "digits", *flags(**SCHEDULE_2_ROUNDS), "--threads", "1", "--quiet"]


# -- verdict columns ------------------------------------------------------------------------
def test_verdict_columns_flag_the_unconfident_and_rank_them_below_every_confident_example():
    probs = np.array([[0.9, 0.1], [0.4, 0.6], [0.45, 0.55], [0.2, 0.8], [0.99, 0.01]])
    given = np.array([0, 0, 1, 0, 1])
    predicted = probs.argmax(1)
    confident = np.array([True, False, True, False, False])
    v = verdict_columns(
        given=given, predicted=predicted, probabilities=probs, confident=confident, class_names=["cat", "dog"]
    )
    assert list(v["given_label"]) == ["cat", "cat", "dog", "cat", "dog"]
    assert list(v["predicted_label"]) == ["cat", "dog", "dog", "dog", "cat"]
    np.testing.assert_allclose(v["confidence"], [0.9, 0.6, 0.55, 0.8, 0.99])
    np.testing.assert_array_equal(v["is_label_issue"], ~confident)
    q = v["label_quality"]
    assert ((q >= 0) & (q <= 1)).all()
    assert q[confident].min() >= 0.5 > q[~confident].max()  # the issues are the lowest-ranked examples
    # within each group: cleanlab's self-confidence, the probability of the given label
    p_given = probs[np.arange(5), given]
    np.testing.assert_allclose(q[confident], 0.5 + p_given[confident] / 2)
    np.testing.assert_allclose(q[~confident], p_given[~confident] / 2)
    # ranked: the issue with the lowest probability of its given label first
    assert list(ranked_issues(v["is_label_issue"], q)) == [4, 3, 1]
    without_names = verdict_columns(given=given, predicted=predicted, probabilities=probs, confident=confident)
    assert list(without_names["given_label"]) == list(given)


def test_examples_csv_shows_the_users_class_names_sorted_by_index(tmp_path):
    from memomentum.runner.outputs import write_examples

    probs = np.array([[0.2, 0.8], [0.7, 0.3], [0.4, 0.6]])
    names = ["cat", "dog, big"]
    v = verdict_columns(
        given=np.array([1, 1, 0]),
        predicted=probs.argmax(1),
        probabilities=probs,
        confident=np.array([True, False, False]),
        class_names=names,
    )
    write_examples(
        tmp_path / "e.csv", index=np.array([7, 2, 5]), verdict=v, true=np.array([1, 0, -1]), class_names=names
    )
    rows = list(csv.DictReader((tmp_path / "e.csv").open()))
    assert [r["index"] for r in rows] == ["2", "5", "7"]
    assert [(r["given_label"], r["predicted_label"], r["true_label"]) for r in rows] == [
        ("dog, big", "cat", "cat"),
        ("cat", "dog, big", ""),
        ("dog, big", "dog, big", "dog, big"),
    ]
    assert [(r["is_confident"], r["is_label_issue"], r["label_quality"]) for r in rows] == [
        ("0", "1", "0.150000"),
        ("0", "1", "0.200000"),
        ("1", "0", "0.900000"),
    ]


# -- find_label_issues ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def noisy_digits():
    ds = load_dataset("digits")
    x, y = ds.x_train[:400], ds.y_train[:400]
    noisy = make_noisy_labels(y, noise_type="symmetric", noise_rate=0.3, seed=1, num_classes=10).labels
    return x, y, noisy


def test_find_label_issues_returns_cleanlabs_mask_or_ranked_indices(noisy_digits):
    x, y, noisy = noisy_digits
    opts = dict(features=x, epochs=3, max_outer_loop=1, max_inner_loop=2, batch_size=32, threads=1)
    mask = memomentum.find_label_issues(noisy, **opts)
    assert mask.dtype == bool and mask.shape == noisy.shape
    mislabelled = noisy != y
    # flagged examples are mislabelled far more often than the kept ones
    assert mislabelled[mask].mean() > 0.6
    assert mislabelled[~mask].mean() < 0.2
    ranked = memomentum.find_label_issues(noisy, return_indices_ranked_by="label_quality", **opts)
    assert sorted(ranked) == list(np.flatnonzero(mask))  # the same run: the same issues
    from memomentum.entrypoints.api import label_verdicts

    quality = label_verdicts(noisy, **opts)["label_quality"]
    assert (np.diff(quality[ranked]) >= 0).all()  # most likely label error first


def test_find_label_issues_refuses_bad_options_in_one_sentence(noisy_digits):
    x, _, noisy = noisy_digits
    with pytest.raises(InputError, match="return_indices_ranked_by must be None or 'label_quality', got 'margin'"):
        memomentum.find_label_issues(
            noisy,
            features=x,
            return_indices_ranked_by="margin",
            epochs=1,
            max_outer_loop=1,
            max_inner_loop=1,
            threads=1,
        )
    with pytest.raises(InputError, match="unknown run option 'epoch'"):
        memomentum.find_label_issues(noisy, features=x, epoch=3)
    with pytest.raises(InputError, match="4 labels"):
        memomentum.find_label_issues(noisy[:4], features=x)


def test_find_label_issues_checks_its_options_before_training(noisy_digits, monkeypatch):
    import memomentum.entrypoints.api

    x, _, noisy = noisy_digits
    monkeypatch.setattr(
        memomentum.entrypoints.api, "run", lambda *a, **k: pytest.fail("trained before checking the options")
    )
    with pytest.raises(InputError, match="return_indices_ranked_by must be None or 'label_quality', got 'margin'"):
        memomentum.find_label_issues(noisy, features=x, return_indices_ranked_by="margin")
    # options that add noise, choose data or write a run directory would be ignored: refused
    for option, value in (("noise_type", "symmetric"), ("noise_rate", 0.2), ("out", "runs/x"), ("dataset", "digits")):
        with pytest.raises(
            InputError,
            match=f"the run option '{option}' does not apply here: the labels and features are taken as given",
        ):
            memomentum.find_label_issues(noisy, features=x, **{option: value})


def test_find_label_issues_refuses_the_image_reading_options_it_would_ignore(noisy_digits, monkeypatch):
    """workers and stream read image files from disk: features in memory have none."""
    import memomentum.entrypoints.api

    x, _, noisy = noisy_digits
    monkeypatch.setattr(
        memomentum.entrypoints.api, "run", lambda *a, **k: pytest.fail("trained before checking the options")
    )
    for option, value in (("workers", 2), ("stream", False)):
        with pytest.raises(InputError, match=f"the run option '{option}' does not apply here"):
            memomentum.find_label_issues(noisy, features=x, **{option: value})
    with pytest.raises(InputError, match=r"^the input of find_label_issues has 3 rows in x but 4 labels in y"):
        memomentum.find_label_issues(noisy[:4], features=x[:3])


# -- a run: examples.csv, rounds.npz, difficulty ---------------------------------------------
@pytest.fixture(scope="module")
def tracked_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("tracked") / "run"
    assert main(["run", *TINY, "--track-difficulty", "--out", str(out)]) == 0
    return out


def test_examples_csv_holds_the_verdict_columns(tracked_run):
    rows = list(csv.DictReader((tracked_run / "examples.csv").open()))
    summary = json.loads((tracked_run / "summary.json").read_text())
    assert list(rows[0]) == [
        "index",
        "given_label",
        "predicted_label",
        "confidence",
        "is_confident",
        "is_label_issue",
        "label_quality",
        "true_label",
    ]
    issue = np.array([int(r["is_label_issue"]) for r in rows])
    confident = np.array([int(r["is_confident"]) for r in rows])
    quality = np.array([float(r["label_quality"]) for r in rows])
    assert (issue == 1 - confident).all() and confident.sum() == summary["final_confident"]["n_confident"]
    assert quality[confident == 1].min() >= 0.5 >= quality[issue == 1].max()
    # confident examples whose label is their prediction: quality = 0.5 + confidence / 2
    conf = np.array([float(r["confidence"]) for r in rows])
    np.testing.assert_allclose(quality[confident == 1], 0.5 + conf[confident == 1] / 2, atol=2e-6)


def test_rounds_npz_keeps_every_rounds_confident_set_in_examples_csv_order(tracked_run):
    rows = list(csv.DictReader((tracked_run / "examples.csv").open()))
    rounds = json.loads((tracked_run / "summary.json").read_text())["rounds"]
    sets = read_rounds(tracked_run)
    assert list(sets) == [f"outer{r['outer']}_inner{r['inner']}" for r in rounds] and len(rounds) >= 1
    right = np.array([r["given_label"] == r["true_label"] for r in rows])
    for r in rounds:
        mask = sets[f"outer{r['outer']}_inner{r['inner']}"]
        assert mask.dtype == bool and mask.size == len(rows) and mask.sum() == r["n_confident"]
        assert round(100 * right[mask].mean(), 2) == r["label_precision"]  # rows line up with examples.csv
        assert round(100 * right[mask].sum() / right.sum(), 2) == r["label_recall"]
    assert not list(tracked_run.glob(".*.tmp"))


def test_difficulty_recall_per_quintile_adds_up_to_each_rounds_recall(tracked_run):
    summary = json.loads((tracked_run / "summary.json").read_text())
    d = summary["difficulty"]
    assert set(d) >= {"definition", "quintile_counts", "rounds"} and "first phase" in d["definition"]
    rows = list(csv.DictReader((tracked_run / "examples.csv").open()))
    n_right = sum(r["given_label"] == r["true_label"] for r in rows)
    counts = d["quintile_counts"]
    assert len(counts) == 5 and sum(counts) == n_right and max(counts) - min(counts) <= 1
    expected = [f"{r['outer']}.{r['inner']}" for r in summary["rounds"]] + ["final"]
    assert [r["round"] for r in d["rounds"]] == expected
    recalls = [r["label_recall"] for r in summary["rounds"]] + [summary["final_confident"]["label_recall"]]
    for entry, recall in zip(d["rounds"], recalls):
        assert len(entry["recall"]) == 5 and all(0 <= v <= 100 for v in entry["recall"])
        assert abs(np.dot(entry["recall"], counts) / n_right - recall) < 0.02
    assert d["epochs_tracked"] >= 1 and summary["time_s"]["difficulty"] >= 0


def test_a_resumed_run_keeps_the_round_sets_and_difficulty_it_recorded_before(tracked_run, tmp_path, monkeypatch):
    out = tmp_path / "paused"
    cfg = RunConfig(
        dataset="digits",
        epochs=3,
        max_outer_loop=1,
        max_inner_loop=3,
        threads=1,
        progress=False,
        track_difficulty=True,
        out=str(out),
    )
    observe, sent = RunRecords.observe, []

    def observe_then_interrupt(self, proc):  # Ctrl-C once the first phase is over: the run pauses in round 1
        observe(self, proc)
        if proc.state.stage == "inner" and not sent:
            sent.append(True)
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(RunRecords, "observe", observe_then_interrupt)
    with pytest.raises(Interrupted):
        run(cfg)
    assert (out / "checkpoint.pt").exists() and not (out / "summary.json").exists()
    monkeypatch.undo()
    run(cfg, resume=True)
    whole, again = (json.loads((d / "summary.json").read_text()) for d in (tracked_run, out))
    assert again["difficulty"] == whole["difficulty"] and again["rounds"] == whole["rounds"]
    assert (out / "rounds.npz").read_bytes() == (tracked_run / "rounds.npz").read_bytes()
    assert (out / "examples.csv").read_bytes() == (tracked_run / "examples.csv").read_bytes()


def test_track_difficulty_is_refused_without_true_labels_or_outside_the_benchmark_mode():
    ds = load_dataset("digits")
    own = dataset_from_arrays(ds.x_train[:200], ds.y_train[:200], name="arrays")
    cfg = RunConfig(
        dataset="arrays",
        noise_type="none",
        epochs=1,
        max_outer_loop=1,
        max_inner_loop=1,
        batch_size=32,
        track_difficulty=True,
        progress=False,
        threads=1,
    )
    with pytest.raises(InputError, match="--track-difficulty needs the true labels"):
        run(cfg, write=False, dataset=own)
    with pytest.raises(InputError, match="--track-difficulty measures the benchmark mode"):
        RunConfig(mode="clothing1m", track_difficulty=True)
    with pytest.raises(InputError, match="track-difficulty must be true or false, got 'yes'"):
        RunConfig(track_difficulty="yes")


# -- difficulty on constructed examples -------------------------------------------------------
def test_the_tracker_records_the_epoch_from_which_the_true_label_is_kept():
    tracker = DifficultyTracker(torch.tensor([0, 1, 2, 3, 4]))
    epochs = [  # example: 0 always right, 1 right from epoch 2, 2 right then wrong then right, 3 never, 4 lost at the end
        [1, 0, 1, 0, 1],
        [1, 1, 0, 0, 1],
        [1, 1, 1, 0, 0],
    ]
    for e, correct in enumerate(epochs, start=1):
        tracker.update(torch.tensor(correct, dtype=torch.bool), epoch=e)
    assert tracker.settled_since.tolist() == [1, 2, 3, 0, 0]
    assert tracker.epochs_correct.tolist() == [3, 2, 2, 0, 2]
    restored = DifficultyTracker(torch.tensor([0, 1, 2, 3, 4]))
    restored.load_state_dict(tracker.state_dict())
    assert restored.settled_since.tolist() == [1, 2, 3, 0, 0] and restored.epochs == 3


def test_quintiles_rank_by_settling_epoch_then_by_epochs_right_and_leave_out_wrong_labels():
    settled = np.array([1, 1, 2, 3, 0, 0, 2, 1, 5, 4, 1, 0])
    right_epochs = np.array([5, 4, 3, 2, 1, 0, 4, 5, 1, 1, 3, 2])
    correctly_labelled = np.ones(12, dtype=bool)
    correctly_labelled[[10, 11]] = False
    q = difficulty_quintiles(settled_since=settled, epochs_correct=right_epochs, correctly_labelled=correctly_labelled)
    # order: settled 1 (by epochs right 5, 5, 4: 0 then 7 by position, then 1), settled 2 (6 with 4, then 2 with 3),
    # settled 3, 4, 5, then never settled (4 with 1 right, then 5 with 0: hardest last)
    assert [list(x) for x in q] == [[0, 7], [1, 6], [2, 3], [9, 8], [4, 5]]
    confident = np.zeros(12, dtype=bool)
    confident[[0, 7, 1, 3, 4]] = True
    assert quintile_recall(q, confident) == [100.0, 50.0, 50.0, 0.0, 50.0]


def test_run_records_round_trip_their_checkpointed_state():
    state = SimpleNamespace(rounds=[{"outer": 1, "inner": 1, "n_confident": 2}], train_index=torch.tensor([3, 0]))

    records = RunRecords(5)
    records.observe(SimpleNamespace(state=state))
    records.observe(SimpleNamespace(state=state))  # the same round again: kept once
    copy = RunRecords(5)
    copy.load_state_dict(records.state_dict())
    assert {k: v.tolist() for k, v in copy.round_sets.masks().items()} == {
        "outer1_inner1": [True, False, False, True, False]
    }


# -- the benchmark ------------------------------------------------------------------------------
def test_vs_cleanlab_benchmark_scores_both_sides():
    from helpers import require_fashion_mnist

    require_fashion_mnist()
    r = subprocess.run(
        [sys.executable, "benchmarks/vs_cleanlab.py", "--quick", "--n-train", "300", "--folds", "2", "--threads", "1"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads(r.stdout)
    assert out["n_examples"] == 300 and out["folds"] == 2
    for side in ("memomentum", "cleanlab"):
        s = out[side]
        p, rec = s["precision"], s["recall"]
        assert s["wall_time_s"] > 0 and 0 <= p <= 1 and 0 <= rec <= 1
        assert abs(s["f1"] - (2 * p * rec / (p + rec) if p + rec else 0)) < 1e-3
        assert s["n_flagged"] + s["kept"] == 300
    assert len(out["cleanlab"]["folds"]) == 2
    assert out["memomentum_better_f1"] == (out["memomentum"]["f1"] > out["cleanlab"]["f1"])

"""The command line end to end: the default run, its outputs, and one-line errors (exit 2)."""
import csv
import json
import subprocess
import sys

import numpy as np
import pytest

from memomentum.cli import main

FAST = ["--epochs", "3", "--max-outer-loop", "1", "--max-inner-loop", "2", "--quiet"]


def run_cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "memomentum.cli", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=600)


@pytest.fixture(scope="module")
def default_runs(tmp_path_factory):
    """`memomentum run` with no options but the output directory, and the CE baseline."""
    root = tmp_path_factory.mktemp("default")
    mm = run_cli("run", "--quiet", "--out", str(root / "mm"))
    ce = run_cli("run", "--quiet", "--method", "ce", "--out", str(root / "ce"))
    return root, mm, ce


def test_default_run_writes_every_output(default_runs):
    root, mm, _ = default_runs
    assert mm.returncode == 0, mm.stderr
    assert "test accuracy" in mm.stdout
    out = root / "mm"
    for name in ("summary.json", "examples.csv", "history.csv", "model.pt", "config.json"):
        assert (out / name).is_file(), name
    assert not (out / "checkpoint.pt").exists()
    s = json.loads((out / "summary.json").read_text())
    assert (s["dataset"], s["method"], s["noise_type"], s["noise_rate"], s["seed"]) == ("digits", "memomentum", "instance", 0.4, 1)
    assert 30 < s["realised_noise_rate"] < 50
    assert s["rounds"] and all({"outer", "inner", "n_confident", "label_precision", "label_recall"} <= set(r) for r in s["rounds"])
    rows = list(csv.DictReader((out / "examples.csv").open()))
    assert len(rows) == s["n_train"]
    assert list(rows[0]) == ["index", "given_label", "predicted_label", "confidence", "is_confident", "true_label"]
    idx = [int(r["index"]) for r in rows]
    assert idx == sorted(idx) and len(set(idx)) == len(idx)
    assert all(r["is_confident"] == str(int(r["given_label"] == r["predicted_label"])) for r in rows)
    history = list(csv.DictReader((out / "history.csv").open()))
    assert len(history) == s["epochs_run"]
    assert list(history[0]) == ["outer", "inner", "epoch", "n_train", "train_loss", "val_accuracy", "lr"]


def test_default_run_beats_cross_entropy_and_cleans_labels(default_runs):
    root, mm, ce = default_runs
    assert ce.returncode == 0, ce.stderr
    s_mm = json.loads((root / "mm" / "summary.json").read_text())
    s_ce = json.loads((root / "ce" / "summary.json").read_text())
    assert s_mm["test_accuracy"] > s_ce["test_accuracy"]
    assert s_mm["final_confident"]["label_precision"] > s_mm["noisy_label_precision"]
    # precision computed from examples.csv agrees with the summary
    rows = list(csv.DictReader((root / "mm" / "examples.csv").open()))
    conf = [r for r in rows if r["is_confident"] == "1"]
    precision = 100 * sum(r["given_label"] == r["true_label"] for r in conf) / len(conf)
    assert precision == pytest.approx(s_mm["final_confident"]["label_precision"], abs=0.01)


def test_finished_run_is_not_overwritten(default_runs, capsys):
    root, _, _ = default_runs
    code = main(["run", "--out", str(root / "mm"), *FAST])
    assert code == 2
    assert "--overwrite" in capsys.readouterr().err


def one_line_error(tmp_path, *args, expect):
    out = tmp_path / "run"
    r = run_cli("run", "--out", str(out), *FAST, *args)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("memomentum: error:"), r.stderr
    assert "Traceback" not in r.stderr
    assert expect in lines[0]
    assert not out.exists()
    return lines[0]


def test_unknown_dataset(tmp_path):
    one_line_error(tmp_path, "--dataset", "imagenet", expect="imagenet")


def test_missing_data_files(tmp_path):
    msg = one_line_error(tmp_path, "--dataset", "mnist", "--data-dir", str(tmp_path / "nowhere"), expect="train-images-idx3-ubyte")
    assert str(tmp_path / "nowhere") in msg


@pytest.mark.parametrize("rate", ["1.0", "-0.1", "1.5"])
def test_noise_rate_outside_unit_interval(tmp_path, rate):
    one_line_error(tmp_path, "--noise-rate", rate, expect="outside [0, 1)")


def test_xy_length_mismatch(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, x=np.zeros((10, 4), np.float32), y=np.zeros(9, np.int64))
    one_line_error(tmp_path, "--dataset", str(path), expect="10 rows in x but 9 labels")


def test_negative_labels_in_user_data(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, x=np.zeros((10, 4), np.float32), y=np.array([0, 1, -1, 0, 1, 0, 1, 0, 1, 0]))
    one_line_error(tmp_path, "--dataset", str(path), expect="-1")


def test_noise_command_rejects_labels_outside_classes(tmp_path):
    labels = tmp_path / "y.npy"
    np.save(labels, np.array([0, 1, 2, 5]))
    r = run_cli("noise", "--labels", str(labels), "--out", str(tmp_path / "n.npy"), "--noise-type", "symmetric",
                "--noise-rate", "0.2", "--num-classes", "3")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "n.npy").exists()


def test_noise_command_writes_noisy_labels(tmp_path):
    labels = tmp_path / "y.csv"
    clean = np.arange(1000) % 10
    labels.write_text("\n".join(map(str, clean)) + "\n")
    r = run_cli("noise", "--labels", str(labels), "--out", str(tmp_path / "n.csv"), "--noise-type", "symmetric",
                "--noise-rate", "0.2", "--seed", "1")
    assert r.returncode == 0, r.stderr
    noisy = np.loadtxt(tmp_path / "n.csv", dtype=np.int64, ndmin=1)
    assert noisy.shape == clean.shape
    assert 0.15 < np.mean(noisy != clean) < 0.25
    assert "realised noise rate" in r.stdout


@pytest.mark.parametrize("args, hint", [([], "choose a command: run (train and write a run directory), prepare "
                                              "(pack an image dataset) or noise (add label noise to a file) "
                                              "(see memomentum --help)"),
                                        (["run", "--bogus"], "unrecognized arguments: --bogus (see memomentum run --help)"),
                                        (["noise", "--labels", "y.npy", "--out", "z.npy", "--noise-type", "symmetric",
                                          "--zz"], "unrecognized arguments: --zz (see memomentum noise --help)")])
def test_usage_errors_name_the_right_help(args, hint):
    r = run_cli(*args)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr == f"memomentum: error: {hint}\n"


def test_a_diverging_run_stops_with_status_1_names_the_learning_rate_and_leaves_nothing(tmp_path):
    out = tmp_path / "run"
    r = run_cli("run", "--lr", "1e6", "--epochs", "2", "--max-outer-loop", "1", "--max-inner-loop", "1", "--quiet",
                "--out", str(out))
    assert r.returncode == 1 and r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("memomentum: error: training diverged: the loss became ")
    assert "with learning rate 1e+06; no results were written, start again with a lower --lr" in lines[0]
    assert not out.exists()
    # the same command with a sane learning rate then runs into the same directory
    r = run_cli("run", "--lr", "0.01", "--epochs", "2", "--max-outer-loop", "1", "--max-inner-loop", "1", "--quiet",
                "--out", str(out))
    assert r.returncode == 0, r.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert all(np.isfinite(float(row["confidence"])) for row in csv.DictReader((out / "examples.csv").open()))
    assert summary["test_accuracy"] is not None

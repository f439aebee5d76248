"""Image files end to end through the CLI: a miniature Clothing1M in the official layout and
an image folder, packed into the store and streamed by worker processes; SIGKILL
mid-epoch on the streamed source resumes bit-identically."""

import csv
import json
import signal
import time
from pathlib import Path

import pytest
import torch
from helpers import (
    SCHEDULE_2_EPOCHS,
    SCHEDULE_2_ROUNDS,
    SMALL_IMAGES,
    assert_finished_like,
    checkpoint_state,
    flags,
    results,
    run_in_process,
    start_in_child,
)

from memomentum.testing.clothing1m import write_clothing1m
from memomentum.testing.folders import write_image_folder
from memomentum.training.models import create_model
from memomentum.training.pretrained import KNOWN_FILES

# 14 classes x 12 images at 24 x 24 pixels: seconds per run with the MLP on 2 cores (LeNet
# from scratch needs many more epochs to tell 14 colours apart on 151 images).
MINI = dict(per_class=12, size=(30, 26), noise=0.3, n_clean_noisy=30, n_val_per_class=2, n_test_per_class=3, seed=0)
IMAGES = [*SMALL_IMAGES, "--workers", "2", "--quiet"]
SCHEDULE = flags(**SCHEDULE_2_ROUNDS, batch_size=16, lr=0.05)


@pytest.fixture(scope="module")
def clothing(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("clothing1m")
    return root, write_clothing1m(root, **MINI)


def _args(root: Path, out: Path, *extra) -> list[str]:
    return ["--dataset", "clothing1m", "--data-dir", str(root), *IMAGES, *SCHEDULE, "--out", str(out), *extra]


@pytest.fixture(scope="module")
def streamed_run(clothing, tmp_path_factory) -> Path:
    root, _ = clothing
    out = tmp_path_factory.mktemp("runs") / "streamed"
    assert run_in_process(*_args(root, out, "--stream")) == 0
    return out


def test_clothing1m_runs_end_to_end_on_the_streamed_source(clothing, streamed_run):
    root, info = clothing
    summary = json.loads((streamed_run / "summary.json").read_text())
    assert summary["dataset"] == "clothing1m" and summary["noise_type"] == "none"
    assert summary["n_train"] + summary["n_val"] == info["n_train"]
    assert json.loads((streamed_run / "classes.json").read_text())[0] == "T-Shirt"
    rows = list(csv.DictReader((streamed_run / "examples.csv").open()))
    assert len(rows) == summary["n_train"]
    keys = info["train_keys"]
    names = json.loads((streamed_run / "classes.json").read_text())
    for r in rows[:20]:  # each row names its image file, and its noisy label as given, by class name
        i = int(r["index"])
        assert r["file"] == str(root / keys[i]) and r["given_label"] == names[info["noisy_labels"][i]]
    # true labels only where clean_label_kv.txt has them; precision and recall measured on those
    known = {int(r["index"]) for r in rows if r["true_label"] != ""}
    assert known == set(info["clean_noisy_index"].tolist()) & {int(r["index"]) for r in rows}
    assert summary["n_known_labels"] == len(known) > 0
    assert 0 <= summary["final_confident"]["label_precision"] <= 100
    # it learned: 64.29 % measured on the clean test set (guessing among 14 classes: 7.1 %)
    assert summary["test_accuracy"] > 50


def test_the_resident_run_of_the_same_store_is_bit_identical(clothing, streamed_run, tmp_path):
    root, _ = clothing
    out = tmp_path / "resident"
    assert run_in_process(*_args(root, out, "--no-stream")) == 0
    got, want = results(out), results(streamed_run)
    assert got["config"].pop("stream") is False and want["config"].pop("stream") is True
    assert got == want


def test_sigkill_mid_epoch_on_the_streamed_source_resumes_bit_identically(clothing, streamed_run, tmp_path):
    root, _ = clothing
    out = tmp_path / "run"
    args = _args(root, out, "--stream")
    p = start_in_child("run", *args, kill_at="step:13")  # 10 steps per first-phase epoch: inside epoch 2
    _, err = p.communicate(timeout=300)
    assert p.returncode == -signal.SIGKILL, err
    saved = checkpoint_state(out)  # the last checkpoint: after epoch 1
    assert saved["procedure"]["step_pos"] == 0 and saved["procedure"]["epoch"] == 1
    assert run_in_process("--resume", str(out), "--quiet") == 0
    assert_finished_like(out, streamed_run, saved["elapsed"])


def test_sigterm_pauses_the_streamed_source_mid_epoch_and_resumes_bit_identically(clothing, tmp_path):
    root, _ = clothing
    longer = ["--epochs", "12", "--max-outer-loop", "1", "--max-inner-loop", "2"]
    baseline = tmp_path / "uninterrupted"
    assert run_in_process(*_args(root, baseline, "--stream", *longer)) == 0
    out = tmp_path / "run"
    p = start_in_child("run", *_args(root, out, "--stream", *longer))
    deadline = time.monotonic() + 240
    while not (out / "checkpoint.pt").exists() and p.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    time.sleep(0.5)
    assert p.poll() is None, "the run ended before it could be interrupted"
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 143, err
    saved = checkpoint_state(out)
    assert run_in_process("--resume", str(out), "--quiet") == 0
    assert_finished_like(out, baseline, saved["elapsed"])


def test_prepare_packs_once_and_run_reuses_it(clothing, tmp_path, capfd):
    root, _ = clothing
    cache = tmp_path / "cache"
    from memomentum.cli import main

    assert (
        main(
            [
                "prepare",
                "--dataset",
                "clothing1m",
                "--data-dir",
                str(root),
                "--image-size",
                "20",
                "--cache-dir",
                str(cache),
                "--quiet",
            ]
        )
        == 0
    )
    out = capfd.readouterr()
    assert "packing" in out.err and "training: 168 images of 20 x 20" in out.out
    stores = sorted(p.name for p in cache.iterdir())
    assert len(stores) == 3  # training, validation, test
    assert (
        main(
            [
                "prepare",
                "--dataset",
                "clothing1m",
                "--data-dir",
                str(root),
                "--image-size",
                "20",
                "--cache-dir",
                str(cache),
                "--quiet",
            ]
        )
        == 0
    )
    assert "packing" not in capfd.readouterr().err
    assert sorted(p.name for p in cache.iterdir()) == stores


@pytest.mark.parametrize(
    "damage, message",
    [
        (
            lambda r: _append(r / "noisy_train_key_list.txt", "images/9/99/nolabel.jpg\n"),
            "noisy_train_key_list.txt lists 1 key that has no label.*images/9/99/nolabel.jpg",
        ),
        (
            lambda r: _replace(r / "noisy_label_kv.txt", lambda t: t.replace(" 3\n", " 14\n", 1)),
            "has 1 label that is not an integer in 0..13: line",
        ),
        (lambda r: next((r / "images").rglob("*.jpg")).unlink(), "missing"),
        (lambda r: (r / "clean_test_key_list.txt").unlink(), "clean_test_key_list.txt"),
    ],
)
def test_malformed_annotations_exit_2_with_one_line(clothing, tmp_path, damage, message):
    import shutil

    root = tmp_path / "c1m"
    shutil.copytree(clothing[0], root, ignore=shutil.ignore_patterns(".memomentum-cache"))
    damage(root)
    p = start_in_child("run", *_args(root, tmp_path / "out"))
    _, err = p.communicate(timeout=120)
    assert p.returncode == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("memomentum: error: ")
    import re

    assert re.search(message, lines[0]), lines[0]
    assert not (tmp_path / "out").exists()


def _append(path: Path, text: str) -> None:
    path.write_text(path.read_text() + text)


def _replace(path: Path, edit) -> None:
    path.write_text(edit(path.read_text()))


def test_clothing1m_without_weights_says_where_to_put_them(clothing, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    p = start_in_child(
        "run",
        "--dataset",
        "clothing1m",
        "--data-dir",
        str(clothing[0]),
        "--image-size",
        "24",
        "--quiet",
        "--out",
        str(tmp_path / "out"),
    )
    _, err = p.communicate(timeout=120)
    assert p.returncode == 2
    assert str(tmp_path / "torch" / "hub" / "checkpoints") in err and "--pretrained none" in err
    assert not (tmp_path / "out").exists()


def test_pretrained_weights_in_torchvision_format_start_the_run(clothing, tmp_path, monkeypatch):
    """A resnet18 state dict saved as torchvision names it, found in torch's hub cache, starts
    every outer loop's model (both programs build it in Procedure._build_model)."""
    mode = "clothing1m"
    hub = tmp_path / "torch" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    torch.manual_seed(0)
    weights = create_model("resnet18", input_shape=(3, 128, 128), num_classes=1000).state_dict()
    torch.save(weights, hub / "resnet18-custom.pth")
    monkeypatch.setitem(KNOWN_FILES, "resnet18", ("resnet18-custom.pth",))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    out = tmp_path / "out"
    assert (
        run_in_process(
            "--dataset",
            "clothing1m",
            "--data-dir",
            str(clothing[0]),
            "--image-size",
            "128",
            "--model",
            "resnet18",
            "--workers",
            "0",
            "--quiet",
            "--epochs",
            "1",
            "--max-outer-loop",
            "1",
            "--max-inner-loop",
            "1",
            "--batch-size",
            "8",
            "--mode",
            mode,
            "--out",
            str(out),
            "--train-set",
            "clean",
        )
        == 0
    )  # the 30 clean training images: ResNet-18 at 128 px is slow
    config = json.loads((out / "config.json").read_text())
    assert config["pretrained"] == str(hub / "resnet18-custom.pth")
    # the run started from those weights: a layer the head does not touch moved only a little
    trained = torch.load(out / "model.pt", weights_only=True)["state_dict"]
    start = weights["layer1.0.conv1.weight"]
    assert (trained["layer1.0.conv1.weight"] - start).abs().max() < 0.1 * start.abs().max()


def test_an_image_folder_runs_with_its_class_names(tmp_path):
    folder = tmp_path / "pets"
    write_image_folder(folder, classes=("cat", "dog", "fox"), per_class=30, test_per_class=5, size=(28, 20), seed=1)
    out = tmp_path / "out"
    assert (
        run_in_process(
            "--dataset",
            str(folder),
            *IMAGES,
            *flags(**SCHEDULE_2_EPOCHS),
            "--batch-size",
            "16",
            "--out",
            str(out),
        )
        == 0
    )
    summary = json.loads((out / "summary.json").read_text())
    assert summary["noise_type"] == "none" and summary["n_train"] + summary["n_val"] == 90
    assert json.loads((out / "classes.json").read_text()) == ["cat", "dog", "fox"]
    rows = list(csv.DictReader((out / "examples.csv").open()))
    assert all(Path(r["file"]).parent.parent == folder / "train" for r in rows)
    assert all(Path(r["file"]).parent.name == r["given_label"] for r in rows)  # labels shown by name


def test_synthetic_noise_on_an_image_folder_is_measured_against_the_given_labels(tmp_path):
    folder = tmp_path / "pets"
    write_image_folder(folder, classes=("cat", "dog", "fox"), per_class=30, size=(28, 20), seed=1)
    out = tmp_path / "out"
    assert (
        run_in_process(
            "--dataset",
            str(folder),
            *IMAGES,
            "--epochs",
            "1",
            "--max-outer-loop",
            "1",
            "--max-inner-loop",
            "1",
            "--batch-size",
            "16",
            "--noise-type",
            "symmetric",
            "--noise-rate",
            "0.3",
            "--out",
            str(out),
        )
        == 0
    )
    summary = json.loads((out / "summary.json").read_text())
    assert "label_precision" in summary["final_confident"] and 50 < summary["noisy_label_precision"] < 90
    rows = list(csv.DictReader((out / "examples.csv").open()))
    assert all(r["true_label"] == Path(r["file"]).parent.name for r in rows)


# -- the Clothing1M mode (the reference's Clothing.py) on the same miniature ---------------------
MODE = ["--mode", "clothing1m", *flags(epochs=2, max_outer_loop=2, max_inner_loop=2, batch_size=16, lr=0.05)]


def _mode_args(root: Path, out: Path, *extra) -> list[str]:
    return ["--dataset", "clothing1m", "--data-dir", str(root), *IMAGES, *MODE, "--out", str(out), *extra]


@pytest.fixture(scope="module")
def mode_run(clothing, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "mode"
    assert run_in_process(*_mode_args(clothing[0], out, "--stream")) == 0
    return out


def test_clothing1m_mode_trains_on_every_noisy_image_and_validates_on_the_clean_set(clothing, mode_run):
    _, info = clothing
    summary = json.loads((mode_run / "summary.json").read_text())
    assert summary["mode"] == "clothing1m" and summary["n_train"] == info["n_train"]
    assert summary["n_val"] == len(info["val_labels"])
    assert [(r["outer"], r["inner"]) for r in summary["rounds"]] == [(1, 1), (1, 2), (2, 1), (2, 2)]
    for r in summary["rounds"]:
        assert sum(r["per_class"]) == r["n_confident"] and len(r["class_weights"]) == 14
        assert all(w is None or set(w) == {"outer", "inner", "epoch"} for w in r["best_at"])
    history = list(csv.DictReader((mode_run / "history.csv").open()))
    assert len(history) == 8 and {f"score_{c}" for c in range(14)} <= set(history[0])
    best = max(history, key=lambda h: float(h["val_accuracy"]))  # the first epoch with the best clean accuracy
    assert summary["best_val_accuracy"] == float(best["val_accuracy"])
    assert summary["test_accuracy"] > 70 and summary["assembled_test_accuracy"] is not None
    rows = list(csv.DictReader((mode_run / "examples.csv").open()))
    assert sum(int(r["is_confident"]) for r in rows) == summary["final_confident"]["n_confident"]
    # the final confident set is the last round's extraction
    assert summary["final_confident"]["n_confident"] == summary["rounds"][-1]["n_confident"]


def test_clothing1m_mode_resident_equals_streamed(clothing, mode_run, tmp_path):
    out = tmp_path / "resident"
    assert run_in_process(*_mode_args(clothing[0], out, "--no-stream")) == 0
    got, want = results(out), results(mode_run)
    assert got["config"].pop("stream") is False and want["config"].pop("stream") is True
    assert got == want


@pytest.mark.parametrize("kill_at", ["step:14", "round:1"])  # inside epoch 2 of round 1; between outer loops
def test_clothing1m_mode_sigkill_then_resume_is_bit_identical(clothing, mode_run, tmp_path, kill_at):
    out = tmp_path / "run"
    p = start_in_child("run", *_mode_args(clothing[0], out, "--stream"), kill_at=kill_at)
    _, err = p.communicate(timeout=300)
    assert p.returncode == -signal.SIGKILL, err
    saved = checkpoint_state(out)
    assert run_in_process("--resume", str(out), "--quiet") == 0
    assert_finished_like(out, mode_run, saved["elapsed"])


def test_the_clothing1m_mode_needs_clean_validation_labels(tmp_path):
    folder = tmp_path / "pets"
    write_image_folder(folder, classes=("cat", "dog"), per_class=10, size=(28, 20), seed=1)
    p = start_in_child("run", "--dataset", str(folder), *IMAGES, "--mode", "clothing1m", "--out", str(tmp_path / "out"))
    _, err = p.communicate(timeout=120)
    assert p.returncode == 2
    assert "the clothing1m mode validates on clean labels" in err and "--noise-type" in err

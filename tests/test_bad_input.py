"""Bad input: one sentence naming the bad value and what is allowed, exit status 2, no
traceback, and nothing left behind (no run directory; an existing one unchanged).

The command line is driven in-process through ``memomentum.cli.main`` (exactly what
``python -m memomentum`` runs, minus the interpreter start); two cases also go through a
real process. The same mistakes through the Python API raise ``InputError`` with the
same sentence. ``docs/errors.md`` lists every message (``python docs/errors.py``).
"""

import csv
import errno
import gzip
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import SCHEDULE_2_EPOCHS, checkout_env, flags, run_with_stderr

import memomentum
from memomentum import InputError, RunConfig
from memomentum.base.atomic import is_temp_file
from memomentum.cli import main
from memomentum.data import load_dataset
from memomentum.runner import files as run_files

FAST = [*flags(**SCHEDULE_2_EPOCHS, batch_size=32), "--quiet"]
FAST_CFG = dict(**SCHEDULE_2_EPOCHS, batch_size=32, progress=False)


def blobs(n=200, k=3, d=5, seed=0):
    rs = np.random.RandomState(seed)
    y = np.arange(n) % k
    return rs.randn(n, d).astype(np.float32) + y[:, None], y


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    return write_bad_files(tmp_path_factory.mktemp("bad"))


def write_bad_files(d: Path) -> Path:
    """Every bad input file (also used by docs/errors.py)."""
    x, y = blobs()
    np.savez(d / "good.npz", x=x, y=y)
    np.savez(d / "float-labels.npz", x=x, y=y + 0.5)
    gap = y.copy()
    gap[gap == 1] = 2
    np.savez(d / "missing-class.npz", x=x, y=gap)
    nan, inf = x.copy(), x.copy()
    nan[3, 2], inf[7, 0] = np.nan, -np.inf
    np.savez(d / "nan.npz", x=nan, y=y)
    np.savez(d / "inf.npz", x=inf, y=y)
    np.savez(d / "empty.npz", x=np.zeros((0, 5), np.float32), y=np.zeros(0, np.int64))
    np.savez(d / "small.npz", x=x[:30], y=y[:30])
    np.savez(d / "float-images.npz", x=np.full((200, 8, 8), 300.0), y=y)  # (N, H, W): 3-D, not 4-D
    good = (d / "good.npz").read_bytes()
    (d / "truncated.npz").write_bytes(good[: len(good) // 2])
    (d / "not-a-zip.npz").write_text("x,y\n1,2\n")
    # transition matrices for the 10 digits classes
    np.save(d / "t3x3.npy", np.full((3, 3), 1 / 3))
    rows = np.full((10, 10), 0.1)
    rows[4] = 0.2
    np.save(d / "rows.npy", rows)
    # CIFAR-N style human labels for the 1437 digits training images
    human = np.zeros(1437, np.int64)
    human[5] = 10
    np.save(d / "human-10.npy", human)
    digits = load_dataset("digits").y_train
    np.savez(d / "human-other-clean.npz", worse_label=digits, clean_label=(digits + 1) % 10)
    np.savez(d / "human-coarse.npz", noisy_label=digits, noisy_coarse_label=digits // 2)
    np.save(d / "human-5-classes.npy", digits % 5)
    # a test set with a class the training labels never have
    x, y = blobs()
    np.savez(d / "test-class.npz", x=x, y=y, x_test=x[:4], y_test=np.array([0, 1, 3, 3]))
    (d / "empty-dir").mkdir()
    # MNIST idx files: training images cut short (plain and gzipped)
    rs = np.random.RandomState(1)
    header = b"".join(v.to_bytes(4, "big") for v in (2051, 50, 28, 28))
    payload = header + rs.randint(0, 256, 50 * 28 * 28, dtype=np.uint8).tobytes()
    labels = b"".join(v.to_bytes(4, "big") for v in (2049, 50)) + bytes(50)
    for name, images in (("idx", payload[:5000]), ("idx-gz", gzip.compress(payload)[:5000])):
        (d / name).mkdir()
        (d / name / ("train-images-idx3-ubyte" + (".gz" if name == "idx-gz" else ""))).write_bytes(images)
        (d / name / "train-labels-idx1-ubyte").write_bytes(labels)
    # a CIFAR-10 pickle cut short
    (d / "cifar").mkdir()
    batch = pickle.dumps({b"data": np.zeros((20, 3072), np.uint8), b"labels": list(range(10)) * 2}, protocol=2)
    (d / "cifar" / "data_batch_1").write_bytes(batch[: len(batch) // 2])
    (d / "a-file").write_text("not a directory\n")
    return d


# name -> (CLI arguments, the message, RunConfig fields for the same mistake or None)
# "{d}" stands for the directory of the bad files.
CASES = {
    "unknown dataset": (
        ["--dataset", "imagenet"],
        "unknown dataset 'imagenet': choose one of digits, mnist, fashion-mnist, cifar10, cifar100, "
        "clothing1m, the path of a .npz file, a table (.csv, .csv.gz, .csv.bz2, .csv.xz, .csv.zip, "
        ".csv.zst, .parquet), or a folder of images with one sub-folder per class",
        dict(dataset="imagenet"),
    ),
    "unknown model": (
        ["--model", "vgg16"],
        "unknown model 'vgg16'; choose one of lenet, resnet18, resnet34, resnet50, mlp",
        dict(model="vgg16"),
    ),
    "model that needs images": (
        ["--dataset", "{d}/good.npz", "--model", "lenet"],
        "model 'lenet' needs images, but the data are flat feature vectors; use --model mlp",
        dict(dataset="{d}/good.npz", model="lenet"),
    ),
    "unknown noise type": (
        ["--noise-type", "gaussian"],
        "unknown noise type 'gaussian'; choose one of none, symmetric, pairflip, instance, asymmetric, transition",
        dict(noise_type="gaussian"),
    ),
    "unknown device": (
        ["--device", "tpu"],
        "argument --device: invalid choice: 'tpu' (choose from 'auto', 'cpu', 'cuda') (see memomentum run --help)",
        None,
    ),
    "unknown device (API)": (None, "unknown device 'tpu'; choose one of auto, cpu, cuda", dict(device="tpu")),
    "noise rate NaN": (["--noise-rate", "nan"], "noise rate nan is outside [0, 1)", dict(noise_rate=float("nan"))),
    "transition matrix of the wrong size": (
        ["--noise-type", "transition", "--transition", "{d}/t3x3.npy"],
        "the transition matrix must have shape (10, 10) for 10 classes, got (3, 3)",
        dict(noise_type="transition", transition_path="{d}/t3x3.npy"),
    ),
    "transition rows not summing to 1": (
        ["--noise-type", "transition", "--transition", "{d}/rows.npy"],
        "row 4 of the transition matrix (clean class 4) sums to 2.0; each row must sum to 1 "
        "(T[i, j] = P(noisy = j | clean = i))",
        dict(noise_type="transition", transition_path="{d}/rows.npy"),
    ),
    "human labels >= K": (
        ["--human-labels", "{d}/human-10.npy"],
        "the human label file {d}/human-10.npy holds the label 10, but digits has 10 classes: labels must be 0..9",
        dict(human_labels_path="{d}/human-10.npy"),
    ),
    "non-integer labels": (
        ["--dataset", "{d}/float-labels.npz"],
        "y in {d}/float-labels.npz contains the non-integer label 0.5; labels must be integers 0..K-1",
        dict(dataset="{d}/float-labels.npz"),
    ),
    "a class without examples": (
        ["--dataset", "{d}/missing-class.npz"],
        "{d}/missing-class.npz has no training example of class 1; labels must cover 0..2 (K = max label + 1)",
        dict(dataset="{d}/missing-class.npz"),
    ),
    "images of floats beyond 0..255": (
        ["--dataset", "{d}/float-images.npz"],
        "x in {d}/float-images.npz is a 3-D float64 array but images must hold integer "
        "pixel values 0..255 (save them as uint8), or reshape to (N, D) to use them as "
        "features",
        dict(dataset="{d}/float-images.npz"),
    ),
    "NaN in features": (
        ["--dataset", "{d}/nan.npz"],
        "x in {d}/nan.npz contains NaN or infinite values (after conversion to float32)",
        dict(dataset="{d}/nan.npz"),
    ),
    "inf in features": (
        ["--dataset", "{d}/inf.npz"],
        "x in {d}/inf.npz contains NaN or infinite values (after conversion to float32)",
        dict(dataset="{d}/inf.npz"),
    ),
    "empty data set": (
        ["--dataset", "{d}/empty.npz"],
        "{d}/empty.npz holds an empty data set (x has no rows)",
        dict(dataset="{d}/empty.npz"),
    ),
    "fewer examples than one batch": (
        ["--dataset", "{d}/small.npz"],
        "the training part has 27 examples (--val-fraction 0.1 holds out 3), fewer than "
        "one batch of 32; lower --batch-size or --val-fraction",
        dict(dataset="{d}/small.npz"),
    ),
    "a validation share that leaves no training example": (
        ["--dataset", "{d}/good.npz", "--val-fraction", "0.999"],
        "--val-fraction 0.999 leaves 0 of the 200 training examples for training and 200 for validation; both parts "
        "need one at least, so choose --val-fraction above 0 and at most 0.995",
        dict(dataset="{d}/good.npz", val_fraction=0.999),
    ),
    "a test class the training labels never have": (
        ["--dataset", "{d}/test-class.npz"],
        "y_test in {d}/test-class.npz holds the class 3, which y never has; test labels must be classes of the "
        "training labels (0..2)",
        dict(dataset="{d}/test-class.npz"),
    ),
    "a directory that is no dataset": (
        ["--dataset", "{d}/empty-dir"],
        "{d}/empty-dir is not a dataset directory: one holds a sub-folder of images per class (at least 2 classes, "
        "optionally inside train/ and test/), or is Clothing1M's release (--dataset clothing1m --data-dir DIR)",
        dict(dataset="{d}/empty-dir"),
    ),
    "a benchmark's files given as the dataset": (
        ["--dataset", "{d}/idx"],
        "{d}/idx holds MNIST-format idx files, not an image folder: use --dataset mnist (or fashion-mnist) "
        "--data-dir {d}/idx",
        dict(dataset="{d}/idx"),
    ),
    "a noise rate with transition noise": (
        ["--noise-type", "transition", "--transition", "{d}/t3x3.npy", "--noise-rate", "0"],
        "--noise-type transition takes its flip rates from the --transition matrix, so --noise-rate 0 would be "
        "ignored; leave --noise-rate out",
        dict(noise_type="transition", transition_path="{d}/t3x3.npy", noise_rate=0.0),
    ),
    "a noise rate with no noise": (
        ["--noise-type", "none", "--noise-rate", "0.4"],
        "--noise-type none keeps the labels as given, so --noise-rate 0.4 would be ignored; leave --noise-rate out or "
        "choose a noise type (symmetric, pairflip, instance, asymmetric)",
        dict(noise_type="none", noise_rate=0.4),
    ),
    "a noise rate with human labels": (
        ["--human-labels", "{d}/human-10.npy", "--noise-rate", "0.2"],
        "--human-labels replaces synthetic noise with the file's labels, so --noise-rate 0.2 would be ignored; leave "
        "--noise-rate out",
        dict(human_labels_path="{d}/human-10.npy", noise_rate=0.2),
    ),
    "human labels whose clean labels are another data set's": (
        ["--human-labels", "{d}/human-other-clean.npz"],
        "the clean labels in the human label file {d}/human-other-clean.npz differ from the training labels of "
        "digits at 1437 of 1437 examples, so its noisy labels belong to other images (another data set, or "
        "another order)",
        dict(human_labels_path="{d}/human-other-clean.npz"),
    ),
    "a coarse-label key on fine classes": (
        ["--human-labels", "{d}/human-coarse.npz", "--human-labels-key", "noisy_coarse_label"],
        "the key 'noisy_coarse_label' of {d}/human-coarse.npz holds CIFAR-100's 20 coarse (superclass) labels, but "
        "digits has 10 classes; choose noisy_label (--human-labels-key)",
        dict(human_labels_path="{d}/human-coarse.npz", human_labels_key="noisy_coarse_label"),
    ),
    "human labels of fewer classes": (
        ["--human-labels", "{d}/human-5-classes.npy"],
        "the human label file {d}/human-5-classes.npy uses only 5 of the 10 classes of digits, so it belongs to "
        "another data set",
        dict(human_labels_path="{d}/human-5-classes.npy"),
    ),
    "truncated npz": (
        ["--dataset", "{d}/truncated.npz"],
        "{d}/truncated.npz is not a readable .npz file (corrupt or truncated: BadZipFile: File is not a zip file)",
        dict(dataset="{d}/truncated.npz"),
    ),
    "npz that is not a zip archive": (
        ["--dataset", "{d}/not-a-zip.npz"],
        "{d}/not-a-zip.npz is not a readable .npz file (it is not a zip archive)",
        dict(dataset="{d}/not-a-zip.npz"),
    ),
    "truncated idx": (
        ["--dataset", "mnist", "--data-dir", "{d}/idx"],
        "MNIST training images {d}/idx/train-images-idx3-ubyte holds 4984 bytes of data but its header "
        "(50, 28, 28) announces 39200 (truncated)",
        dict(dataset="mnist", data_dir="{d}/idx"),
    ),
    "truncated gzipped idx": (
        ["--dataset", "mnist", "--data-dir", "{d}/idx-gz"],
        "MNIST training images {d}/idx-gz/train-images-idx3-ubyte.gz is a corrupt or truncated "
        "gzip file (Compressed file ended before the end-of-stream marker was reached)",
        dict(dataset="mnist", data_dir="{d}/idx-gz"),
    ),
    "truncated pickle": (
        ["--dataset", "cifar10", "--data-dir", "{d}/cifar"],
        "CIFAR-10 training batch {d}/cifar/data_batch_1 is not a readable pickle (corrupt or "
        "truncated: UnpicklingError: pickle data was truncated)",
        dict(dataset="cifar10", data_dir="{d}/cifar"),
    ),
    "output below a regular file": (
        ["--out", "{d}/a-file/run"],
        "cannot write to the output directory {d}/a-file/run: Not a directory",
        dict(out="{d}/a-file/run"),
    ),
    "output is a regular file": (
        ["--out", "{d}/a-file"],
        "{d}/a-file is a file, not a run directory; choose another --out",
        dict(out="{d}/a-file"),
    ),
    "negative seed": (["--seed", "-1"], "seed must be a whole number in 0..4294967295, got -1", dict(seed=-1)),
}


def fill(value, d: Path):
    return value.replace("{d}", str(d)) if isinstance(value, str) else value


@pytest.mark.parametrize("name", [n for n, c in CASES.items() if c[0] is not None])
def test_cli_refuses_bad_input(name, files, tmp_path):
    args, message, _ = CASES[name]
    args = [fill(a, files) for a in args]
    out = tmp_path / "run"
    before = sorted(p.name for p in files.rglob("*"))
    code, err = run_with_stderr(*FAST, *(["--out", str(out)] if "--out" not in args else []), *args)
    assert code == 2
    assert err.splitlines() == [f"memomentum: error: {fill(message, files)}"]
    assert not out.exists()
    assert sorted(p.name for p in files.rglob("*")) == before  # nothing created beside the inputs either


@pytest.mark.parametrize("name", [n for n, c in CASES.items() if c[2] is not None])
def test_python_api_raises_the_same_input_error(name, files, tmp_path):
    _, message, fields = CASES[name]
    fields = {k: fill(v, files) for k, v in fields.items()}
    fields.setdefault("out", str(tmp_path / "run"))
    with pytest.raises(InputError) as e:
        memomentum.run(RunConfig(**{**FAST_CFG, **fields}))
    assert str(e.value) == fill(message, files)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("name", ["NaN in features", "output below a regular file"])
def test_a_real_process_exits_2_without_traceback(name, files, tmp_path):
    args, message, _ = CASES[name]
    env = checkout_env()
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "memomentum",
            "run",
            *FAST,
            "--out",
            str(tmp_path / "run"),
            *[fill(a, files) for a in args],
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert r.returncode == 2
    assert r.stderr == f"memomentum: error: {fill(message, files)}\n"
    assert r.stdout == ""
    assert not (tmp_path / "run").exists()


def test_output_directory_under_proc(tmp_path):
    code, err = run_with_stderr(*FAST, "--out", "/proc/memomentum/run")  # cannot be created, even by root
    assert code == 2
    assert err.startswith("memomentum: error: cannot write to the output directory /proc/memomentum/run: ")
    assert len(err.splitlines()) == 1
    with pytest.raises(InputError, match=r"^cannot write to the output directory /proc/memomentum/run: "):
        memomentum.run(RunConfig(out="/proc/memomentum/run", **FAST_CFG))


# -- existing run directories stay as they were ---------------------------------------------


def snapshot(d: Path) -> dict:
    return {p.name: p.read_bytes() for p in sorted(d.iterdir())}


@pytest.fixture
def finished_run(tmp_path) -> Path:
    d = tmp_path / "finished"
    d.mkdir()
    for name in ("config.json", "summary.json", "history.csv", "examples.csv"):
        (d / name).write_text("{}\n")
    return d


@pytest.fixture
def unfinished_run(files, tmp_path) -> Path:
    d = tmp_path / "unfinished"
    d.mkdir()
    cfg = RunConfig(dataset=str(files / "good.npz"), out=str(d), **FAST_CFG)
    torch.save({"config": cfg.to_dict(), "procedure": {}, "elapsed": 1.0}, d / run_files.CHECKPOINT)
    (d / "config.json").write_text("{}\n")
    return d


def test_overwrite_with_bad_input_keeps_the_finished_run(files, finished_run):
    before = snapshot(finished_run)
    code, err = run_with_stderr(
        *FAST, "--out", str(finished_run), "--overwrite", "--dataset", str(files / "good.npz"), "--model", "resnet18"
    )
    assert code == 2
    assert (
        err
        == "memomentum: error: model 'resnet18' needs images, but the data are flat feature vectors; use --model mlp\n"
    )
    assert snapshot(finished_run) == before


def test_overwrite_refuses_a_directory_that_is_not_a_run(tmp_path):
    d = tmp_path / "thesis"
    d.mkdir()
    (d / "chapter1.tex").write_text("precious\n")
    (d / "summary.json").write_text("{}\n")
    code, err = run_with_stderr(*FAST, "--out", str(d), "--overwrite")
    assert code == 2
    assert err == (
        f"memomentum: error: {d} holds files that are not part of a memomentum run (chapter1.tex); "
        f"--overwrite only replaces run directories, so choose another --out\n"
    )
    assert (d / "chapter1.tex").read_text() == "precious\n"


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--noise-rate", "2"], "noise rate 2.0 is outside [0, 1)"),
        (["--overwrite"], "--resume continues a run and --overwrite starts it again; pass only one of them"),
        (["--epochs", "7"], "cannot resume {run}: these settings differ from the saved run: epochs"),
    ],
)
def test_bad_resume_leaves_the_unfinished_run_alone(extra, message, unfinished_run):
    before = snapshot(unfinished_run)
    code, err = run_with_stderr("--resume", str(unfinished_run), *extra)
    assert code == 2
    assert err == f"memomentum: error: {message.format(run=unfinished_run)}\n"
    assert snapshot(unfinished_run) == before


def test_corrupt_checkpoint(unfinished_run):
    (unfinished_run / run_files.CHECKPOINT).write_bytes(b"PK\x03\x04 not really")
    before = snapshot(unfinished_run)
    code, err = run_with_stderr("--resume", str(unfinished_run))
    assert code == 2
    assert err == (
        f"memomentum: error: cannot read the checkpoint {unfinished_run / run_files.CHECKPOINT}: "
        f"the file is corrupt or truncated (RuntimeError)\n"
    )
    assert snapshot(unfinished_run) == before


def test_resume_without_a_run(tmp_path, finished_run):
    assert run_with_stderr("--resume", str(tmp_path / "nowhere")) == (
        2,
        f"memomentum: error: nothing to resume: there is no run directory {tmp_path / 'nowhere'}\n",
    )
    assert run_with_stderr("--resume", str(finished_run)) == (
        2,
        f"memomentum: error: the run in {finished_run} has already finished; nothing to resume\n",
    )


# -- a full disk, simulated: os.replace (the rename of every atomic write) or fsync fails --


def disk_full_at(monkeypatch, name: str, nth: int, call: str = "replace"):
    """Make the ``nth`` atomic write of ``name`` fail with ENOSPC."""
    seen = {"n": 0}
    real = getattr(os, call)

    def failing(*args):
        target = args[1] if call == "replace" else os.readlink(f"/proc/self/fd/{args[0]}")
        if Path(target).name == name or (call == "fsync" and Path(target).name.startswith(f".{name}.")):
            seen["n"] += 1
            if seen["n"] == nth:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(*args)

    monkeypatch.setattr(os, call, failing)


def temp_files(d: Path) -> list:
    return [p.name for p in d.iterdir() if is_temp_file(p)] if d.exists() else []


def full_disk_config(files, out: Path) -> RunConfig:
    return RunConfig(dataset=str(files / "good.npz"), noise_type="symmetric", noise_rate=0.2, out=str(out), **FAST_CFG)


def assert_history_follows_checkpoint(run_dir: Path) -> None:
    """history.csv holds exactly the epochs the checkpoint holds, each once."""
    rows = list(csv.DictReader((run_dir / "history.csv").open()))
    saved = torch.load(run_dir / run_files.CHECKPOINT, weights_only=False)["procedure"]["history"]
    assert saved and [(r["outer"], r["inner"], r["epoch"]) for r in rows] == [
        (str(h["outer"]), str(h["inner"]), str(h["epoch"])) for h in saved
    ]


def test_full_disk_before_the_first_checkpoint_leaves_nothing(files, tmp_path, monkeypatch):
    out = tmp_path / "run"
    disk_full_at(monkeypatch, "config.json", 1)
    with pytest.raises(InputError) as e:
        memomentum.run(full_disk_config(files, out))
    assert str(e.value) == f"the disk holding {out} is full; free some space, then run the same command again"
    assert not out.exists()

    disk_full_at(monkeypatch, run_files.CHECKPOINT, 1, call="fsync")  # the initial checkpoint
    with pytest.raises(InputError) as e:
        memomentum.run(full_disk_config(files, out))
    assert str(e.value) == f"the disk holding {out} is full; free some space, then run the same command again"
    assert not out.exists()


def test_full_disk_during_the_run_keeps_a_resumable_checkpoint(files, tmp_path, monkeypatch):
    uninterrupted = memomentum.run(full_disk_config(files, tmp_path / "uninterrupted"))
    out = tmp_path / "run"
    disk_full_at(monkeypatch, run_files.CHECKPOINT, 4)
    with pytest.raises(InputError) as e:
        memomentum.run(full_disk_config(files, out))
    assert str(e.value) == (
        f"the disk holding {out} is full; free some space, then resume with: memomentum run --resume {out}"
    )
    # no temporary files, no lock; history.csv holds the epochs of the last checkpoint
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.pt", "config.json", "history.csv"]
    assert_history_follows_checkpoint(out)

    monkeypatch.undo()
    disk_full_at(monkeypatch, "examples.csv", 1, call="fsync")  # the final outputs: all or nothing
    with pytest.raises(InputError) as e:
        memomentum.run(full_disk_config(files, out), resume=True)
    assert "is full; free some space, then resume with" in str(e.value)
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.pt", "config.json", "history.csv"]
    assert_history_follows_checkpoint(out)

    monkeypatch.undo()
    resumed = memomentum.run(full_disk_config(files, out), resume=True)
    strip = lambda s: {k: v for k, v in s.items() if k not in ("wall_time_s", "time_s")}  # noqa: E731
    assert strip(resumed.summary) == strip(uninterrupted.summary)
    assert (out / "examples.csv").read_bytes() == (tmp_path / "uninterrupted" / "examples.csv").read_bytes()
    assert not (out / run_files.CHECKPOINT).exists() and not temp_files(out)


# -- human labels that belong to another data set (CIFAR-N files, checked without CIFAR) --


def cifar_n_file(path: Path, kind: str, clean: np.ndarray) -> str:
    """A CIFAR-10N or CIFAR-100N label file as released (a dict saved with torch.save)."""
    rs = np.random.RandomState(0)
    noisy = np.where(rs.rand(clean.size) < 0.4, rs.randint(0, clean.max() + 1, clean.size), clean)
    if kind == "CIFAR-10N":
        content = {
            "clean_label": clean,
            "worse_label": noisy,
            "aggre_label": clean,
            "random_label1": noisy,
            "random_label2": noisy,
            "random_label3": noisy,
        }
    else:
        content = {
            "clean_label": clean,
            "noisy_label": noisy,
            "clean_coarse_label": clean // 5,
            "noisy_coarse_label": noisy // 5,
        }
    torch.save({k: torch.as_tensor(v) for k, v in content.items()}, path)
    return str(path)


@pytest.mark.parametrize(
    "file_kind, dataset, k, key, message",
    [
        (
            "CIFAR-10N",
            "cifar100",
            100,
            None,
            "the human label file {p} is a CIFAR-10N file (keys aggre_label, clean_label, "
            "random_label1, random_label2, random_label3, worse_label), but the dataset is cifar100, whose human labels are "
            "CIFAR-100N",
        ),
        (
            "CIFAR-100N",
            "cifar10",
            10,
            None,
            "the human label file {p} is a CIFAR-100N file (keys clean_coarse_label, "
            "clean_label, noisy_coarse_label, noisy_label), but the dataset is cifar10, whose human labels are CIFAR-10N",
        ),
        (
            "CIFAR-100N",
            "cifar100",
            100,
            "noisy_coarse_label",
            "the key 'noisy_coarse_label' of {p} holds CIFAR-100's 20 "
            "coarse (superclass) labels, but cifar100 has 100 classes; choose noisy_label (--human-labels-key)",
        ),
    ],
)
def test_human_labels_of_another_cifar_are_refused(tmp_path, file_kind, dataset, k, key, message):
    from memomentum.data import check_human_labels, read_human_labels

    y = np.arange(1000) % k
    p = cifar_n_file(tmp_path / "human.pt", file_kind, y)
    with pytest.raises(InputError) as e:
        check_human_labels(read_human_labels(p, key=key), path=p, y_train=y, num_classes=k, dataset_name=dataset)
    assert str(e.value) == message.format(p=p)


def test_human_labels_that_match_are_accepted_and_their_clean_labels_checked(tmp_path):
    from memomentum.data import check_human_labels, read_human_labels

    y = np.arange(1000) % 10
    p = cifar_n_file(tmp_path / "human.pt", "CIFAR-10N", y)
    human = read_human_labels(p)
    assert human.key == "worse_label" and (human.clean == y).all()
    check_human_labels(human, path=p, y_train=y, num_classes=10, dataset_name="cifar10")
    y_other = np.roll(y, 1)  # the same labels in another order
    with pytest.raises(InputError, match="differ from the training labels of cifar10 at 1000 of 1000 examples"):
        check_human_labels(human, path=p, y_train=y_other, num_classes=10, dataset_name="cifar10")
    p100 = cifar_n_file(tmp_path / "human100.pt", "CIFAR-100N", np.arange(1000) % 100)
    coarse = read_human_labels(p100, key="noisy_coarse_label")  # compared with the coarse clean labels
    assert (coarse.clean == (np.arange(1000) % 100) // 5).all()


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["--label-column", "species"],
            "--label-column names the label column of a table (.csv, .parquet); digits is not "
            "a table, so it would be ignored; leave --label-column out",
        ),
        (
            ["--image-size", "64"],
            "--image-size applies to image files (clothing1m, a folder or a table of images); digits "
            "is not, so it would be ignored; leave --image-size out",
        ),
        (
            ["--dataset", "x.npz", "--store-format", "raw"],
            "--store-format applies to image files (clothing1m, a folder or "
            "a table of images); x.npz is not, so it would be ignored",
        ),
        (
            ["--train-set", "clean"],
            "--train-set chooses between Clothing1M's training sets; digits has one, so it would "
            "be ignored; leave --train-set out",
        ),
        (
            ["--workers", "2"],
            "--workers applies to image files (clothing1m, a folder or a table of images); digits is not, "
            "so it would be ignored; leave --workers out",
        ),
        (
            ["--dataset", "x.npz", "--no-stream"],
            "--no-stream applies to image files (clothing1m, a folder or a table of "
            "images); x.npz is not, so it would be ignored; leave --no-stream out",
        ),
        (
            ["--stream"],
            "--stream applies to image files (clothing1m, a folder or a table of images); digits is not, so it "
            "would be ignored; leave --stream out",
        ),
    ],
)
def test_options_for_another_kind_of_data_are_refused_not_ignored(args, message, capsys, tmp_path):

    assert main(["run", *args, "--out", str(tmp_path / "run"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and not (tmp_path / "run").exists()

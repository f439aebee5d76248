"""The command line end to end: the default run, its outputs, and one-line errors (exit 2)."""

import csv
import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
from helpers import SCHEDULE_2_EPOCHS, SCHEDULE_3_EPOCHS, flags, run_in_child

from memomentum.cli import main

FAST = [*flags(**SCHEDULE_3_EPOCHS), "--quiet"]


@pytest.fixture(scope="module")
def default_runs(tmp_path_factory):
    """`memomentum run` with no options but the output directory, and the CE baseline."""
    root = tmp_path_factory.mktemp("default")
    mm = run_in_child("run", "--quiet", "--out", str(root / "mm"))
    ce = run_in_child("run", "--quiet", "--method", "ce", "--out", str(root / "ce"))
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
    assert (s["dataset"], s["method"], s["noise_type"], s["noise_rate"], s["seed"]) == (
        "digits",
        "memomentum",
        "instance",
        0.4,
        1,
    )
    assert 30 < s["realised_noise_rate"] < 50
    assert s["rounds"] and all(
        {"outer", "inner", "n_confident", "label_precision", "label_recall"} <= set(r) for r in s["rounds"]
    )
    rows = list(csv.DictReader((out / "examples.csv").open()))
    assert len(rows) == s["n_train"]
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
    idx = [int(r["index"]) for r in rows]
    assert idx == sorted(idx) and len(set(idx)) == len(idx)
    assert all(r["is_confident"] == str(int(r["given_label"] == r["predicted_label"])) for r in rows)
    history = list(csv.DictReader((out / "history.csv").open()))
    assert len(history) == s["epochs_run"]
    assert list(history[0]) == ["outer", "inner", "epoch", "n_train", "train_loss", "val_accuracy", "lr"]


def test_default_run_beats_cross_entropy_and_cleans_labels(default_runs):
    root, mm, ce = default_runs
    assert mm.returncode == 0, mm.stderr
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
    r = run_in_child("run", "--out", str(out), *FAST, *args)
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
    msg = one_line_error(
        tmp_path, "--dataset", "mnist", "--data-dir", str(tmp_path / "nowhere"), expect="train-images-idx3-ubyte"
    )
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
    r = run_in_child(
        "noise",
        "--labels",
        str(labels),
        "--out",
        str(tmp_path / "n.npy"),
        "--noise-type",
        "symmetric",
        "--noise-rate",
        "0.2",
        "--num-classes",
        "3",
    )
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "n.npy").exists()


@pytest.mark.parametrize("how", ["same name", "another spelling", "a link"])
def test_noise_command_never_overwrites_its_input(tmp_path, capsys, how):
    labels = tmp_path / "y.npy"
    clean = np.arange(100) % 10
    np.save(labels, clean)
    out = {
        "same name": str(labels),
        "another spelling": str(tmp_path / "." / "y.npy"),
        "a link": str(tmp_path / "link.npy"),
    }[how]
    if how == "a link":
        (tmp_path / "link.npy").symlink_to(labels)
    code = main(["noise", "--labels", str(labels), "--out", out, "--noise-type", "symmetric", "--noise-rate", "0.2"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "is the file given to --labels" in err[0]
    np.testing.assert_array_equal(np.load(labels), clean)  # the clean labels are still there


def test_noise_command_writes_noisy_labels(tmp_path):
    labels = tmp_path / "y.csv"
    clean = np.arange(1000) % 10
    labels.write_text("\n".join(map(str, clean)) + "\n")
    r = run_in_child(
        "noise",
        "--labels",
        str(labels),
        "--out",
        str(tmp_path / "n.csv"),
        "--noise-type",
        "symmetric",
        "--noise-rate",
        "0.2",
        "--seed",
        "1",
    )
    assert r.returncode == 0, r.stderr
    noisy = np.loadtxt(tmp_path / "n.csv", dtype=np.int64, ndmin=1)
    assert noisy.shape == clean.shape
    assert 0.15 < np.mean(noisy != clean) < 0.25
    assert "realised noise rate" in r.stdout


def test_the_message_without_a_command_names_every_command():
    from memomentum.cli import COMMANDS_IN_SHORT, build_parser

    assert list(COMMANDS_IN_SHORT) and set(COMMANDS_IN_SHORT) == set(build_parser().commands)


@pytest.mark.parametrize(
    "args, hint",
    [
        (
            [],
            "choose a command: run (train and write a run directory), predict "
            "(classify new data with a finished run), grid (many runs at once), "
            "table (mean ± std of finished runs), consensus (combine the verdicts of "
            "several runs), report (a run's page), prepare "
            "(pack an image dataset), noise (add label noise to a file) or "
            "review (look at the suspects in the browser, decide, export) "
            "(see memomentum --help)",
        ),
        (["run", "--bogus"], "unrecognized arguments: --bogus (see memomentum run --help)"),
        (
            ["noise", "--labels", "y.npy", "--out", "z.npy", "--noise-type", "symmetric", "--zz"],
            "unrecognized arguments: --zz (see memomentum noise --help)",
        ),
    ],
)
def test_usage_errors_name_the_right_help(args, hint):
    r = run_in_child(*args)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr == f"memomentum: error: {hint}\n"


def test_a_diverging_run_stops_with_status_1_names_the_learning_rate_and_leaves_nothing(tmp_path):
    out = tmp_path / "run"
    r = run_in_child(
        "run",
        "--lr",
        "1e6",
        "--epochs",
        "2",
        "--max-outer-loop",
        "1",
        "--max-inner-loop",
        "1",
        "--quiet",
        "--out",
        str(out),
    )
    assert r.returncode == 1 and r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("memomentum: error: training diverged: the loss became ")
    assert "with learning rate 1e+06; no results were written, start again with a lower --lr" in lines[0]
    assert not out.exists()
    # the same command with a sane learning rate then runs into the same directory
    r = run_in_child(
        "run",
        "--lr",
        "0.01",
        "--epochs",
        "2",
        "--max-outer-loop",
        "1",
        "--max-inner-loop",
        "1",
        "--quiet",
        "--out",
        str(out),
    )
    assert r.returncode == 0, r.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert all(np.isfinite(float(row["confidence"])) for row in csv.DictReader((out / "examples.csv").open()))
    assert summary["test_accuracy"] is not None


def noise_cmd(capsys, tmp_path, *args) -> tuple[int, str]:
    """``memomentum noise`` in this process on 30 labels of 3 classes: (exit status, stderr)."""
    np.save(tmp_path / "y.npy", np.arange(30) % 3)
    code = main(["noise", "--labels", str(tmp_path / "y.npy"), "--out", str(tmp_path / "n.npy"), *args])
    return code, capsys.readouterr().err


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["--noise-type", "transition", "--transition", "{t}", "--noise-rate", "0"],
            "--noise-type transition takes its flip rates from the transition matrix, so --noise-rate 0.0 would be ignored; "
            "leave --noise-rate out",
        ),
        (
            ["--noise-type", "none", "--noise-rate", "0.2"],
            "--noise-type none keeps the labels, so --noise-rate 0.2 would be ignored; leave --noise-rate out",
        ),
        (
            ["--noise-type", "instance", "--noise-rate", "0.2"],
            "--noise-type instance needs the training inputs (--features PATH)",
        ),
        (
            ["--noise-type", "instance", "--noise-rate", "0.2", "--features", "{f}"],
            "the --features array must have shape (N, ...) with N = 30 (one row per label), got (4, 2)",
        ),
        (["--noise-type", "transition"], "--noise-type transition needs a transition matrix (--transition PATH)"),
        (
            ["--noise-type", "symmetric", "--noise-rate", "0.2", "--transition", "{t}"],
            "a transition matrix was given but --noise-type is 'symmetric'; use --noise-type transition to apply it",
        ),
        (
            ["--noise-type", "asymmetric", "--noise-rate", "0.2"],
            "--noise-type asymmetric is defined for the 10 CIFAR-10 classes only, got 3 classes (--num-classes)",
        ),
        (
            ["--noise-type", "sym"],
            "--noise-type must be one of none, symmetric, pairflip, instance, asymmetric, transition; got 'sym'",
        ),
    ],
)
def test_noise_command_messages_name_its_options(capsys, tmp_path, args, message):
    np.save(tmp_path / "t.npy", np.eye(3))
    np.save(tmp_path / "f.npy", np.zeros((4, 2)))
    args = [a.format(t=tmp_path / "t.npy", f=tmp_path / "f.npy") for a in args]
    assert noise_cmd(capsys, tmp_path, *args) == (2, f"memomentum: error: {message}\n")
    assert not (tmp_path / "n.npy").exists()


def test_noise_command_transition_without_a_rate_flips_by_the_matrix(capsys, tmp_path):
    np.save(tmp_path / "t.npy", np.roll(np.eye(3), 1, axis=1))  # every label i becomes i + 1
    assert noise_cmd(capsys, tmp_path, "--noise-type", "transition", "--transition", str(tmp_path / "t.npy"))[0] == 0
    np.testing.assert_array_equal(np.load(tmp_path / "n.npy"), (np.arange(30) % 3 + 1) % 3)


def test_runs_without_a_rate_do_not_claim_one(tmp_path):
    from memomentum import RunConfig
    from memomentum.entrypoints.api import default_run_dir

    t = str(tmp_path / "t.npy")
    assert default_run_dir(RunConfig()) == Path("runs/digits-instance-0.4-seed1-memomentum")
    assert (
        default_run_dir(RunConfig(noise_type="symmetric", noise_rate=0.2)).name
        == "digits-symmetric-0.2-seed1-memomentum"
    )
    assert default_run_dir(RunConfig(noise_type="none")).name == "digits-none-seed1-memomentum"
    assert (
        default_run_dir(RunConfig(noise_type="transition", transition_path=t)).name
        == "digits-transition-seed1-memomentum"
    )
    assert default_run_dir(RunConfig(human_labels_path=t)).name == "digits-human-seed1-memomentum"
    assert default_run_dir(RunConfig(human_labels_path=t, human_labels_key="aggre_label")).name == (
        "digits-human-aggre_label-seed1-memomentum"
    )
    for cfg in (
        RunConfig(noise_type="none"),
        RunConfig(noise_type="transition", transition_path=t),
        RunConfig(human_labels_path=t),
    ):
        assert cfg.noise_rate is None  # made, so checked: no rate given is accepted
    assert RunConfig.from_dict({"noise_type": "none", "noise_rate": 0.4}).noise_rate is None  # an older run's config


def test_a_human_label_run_reports_human_noise_and_no_rate(tmp_path, monkeypatch, capsys):
    from memomentum.data import load_dataset

    clean = load_dataset("digits").y_train
    human = clean.copy()
    human[::5] = (human[::5] + 3) % 10  # 20 % wrong
    np.savez(tmp_path / "digits-n.npz", worse_label=human, clean_label=clean)
    monkeypatch.chdir(tmp_path)
    assert (
        main(
            [
                "run",
                "--human-labels",
                "digits-n.npz",
                "--epochs",
                "1",
                "--max-outer-loop",
                "1",
                "--max-inner-loop",
                "1",
                "--quiet",
                "--threads",
                "1",
            ]
        )
        == 0
    )
    run_dir = tmp_path / "runs" / "digits-human-seed1-memomentum"
    summary = json.loads((run_dir / "summary.json").read_text())
    assert (summary["noise_type"], summary["noise_rate"]) == ("human", None)
    assert summary["realised_noise_rate"] == round(100 * np.mean(human != clean), 2)
    assert json.loads((run_dir / "config.json").read_text())["noise_rate"] is None
    out = capsys.readouterr().out
    assert f"human noise (realised {summary['realised_noise_rate']:.2f}%)" in out


def test_help_and_docs_cite_what_the_repository_holds():
    """--help and the sources cite docs/method.md (SPEC.md is not in the repository), and the
    reference fixtures the tests compare with are in the repository, not beside it."""
    from memomentum.cli import build_parser

    repo = Path(__file__).resolve().parents[1]
    run_help = build_parser().commands["run"].format_help()
    assert "docs/method.md" in run_help and "SPEC" not in run_help
    for path in [*(repo / "memomentum").rglob("*.py"), repo / "README.md", *(repo / "docs").glob("*.md")]:
        assert "SPEC.md" not in path.read_text(encoding="utf-8"), path
        assert "shared/fixtures" not in path.read_text(encoding="utf-8"), path
    assert (repo / "docs" / "method.md").is_file()
    from helpers import fixture_dir

    assert fixture_dir() == repo / "tests" / "fixtures" or os.environ.get("MEMOMENTUM_FIXTURES")
    for name in (
        "reference_noise_fashion_mnist_seed1.npz",
        "reference_instance_noise_cifar_shaped_seed3.npz",
        "mnist/t10k-images-idx3-ubyte.gz",
        "mnist/t10k-labels-idx1-ubyte.gz",
        "README.md",
    ):
        assert (repo / "tests" / "fixtures" / name).is_file(), name


def test_readme_says_which_torch_build_pip_installs():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    assert "only the CPU build" not in readme
    assert "pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu" in readme
    assert "NVIDIA" in readme  # what the public index's build pulls in


def test_synthetic_noise_on_a_users_npz_is_scored_against_the_files_labels(tmp_path):
    # the file's y are the clean labels once synthetic noise is asked for: the summary and
    # examples.csv measure the confident set against them
    rs = np.random.RandomState(0)
    y = np.arange(300) % 3
    x = (rs.randn(300, 6) + 2 * y[:, None]).astype(np.float32)
    np.savez(tmp_path / "data.npz", x=x, y=y)
    out = tmp_path / "out"
    assert (
        main(
            [
                "run",
                "--dataset",
                str(tmp_path / "data.npz"),
                "--noise-type",
                "pairflip",
                "--noise-rate",
                "0.45",
                *flags(**SCHEDULE_2_EPOCHS),
                "--batch-size",
                "32",
                "--quiet",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    summary = json.loads((out / "summary.json").read_text())
    assert summary["noise_type"] == "pairflip" and summary["noise_rate"] == 0.45
    assert "label_precision" in summary["final_confident"] and "label_recall" in summary["final_confident"]
    assert 40 < summary["noisy_label_precision"] < 70  # pairflip 0.45 leaves about 55 % correct
    rows = list(csv.DictReader((out / "examples.csv").open()))
    assert all(int(r["true_label"]) == y[int(r["index"])] for r in rows)
    flipped = sum(r["given_label"] != r["true_label"] for r in rows)
    assert abs(flipped / len(rows) - (100 - summary["noisy_label_precision"]) / 100) < 5e-5  # rounded to 0.01 %


def test_the_choices_help_reads_from_the_configuration_agree_with_their_owners():
    """`memomentum run --help` reads the model names and the default noise from memomentum.config
    (torch-free); they must be what the models and RunConfig actually use."""
    from memomentum import config
    from memomentum.training.models import MODELS

    assert config.MODEL_NAMES == MODELS
    assert config.RunConfig(dataset="cifar10").noise_type == config.DEFAULT_NOISE_TYPE
    from memomentum.cli import build_parser

    run_parser = build_parser().commands["run"]
    run_help = " ".join(run_parser.format_help().split())
    assert f"{', '.join(MODELS)} (default per dataset:" in run_help
    # and each named dataset's default network, as the registry has it (argparse may wrap at a hyphen,
    # so the option's own help text is read)
    from memomentum.data.registry import SPECS

    model_help = next(a.help for a in run_parser._actions if "--model" in a.option_strings)
    for spec in SPECS:
        assert re.search(rf"{spec.default_model} for [^;]*\b{re.escape(spec.name)}\b", model_help), spec.name

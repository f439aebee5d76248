"""``memomentum consensus``: the verdicts of several seeds on the same data, per example; refused
for runs on other data, other noisy labels or other class names; ``--noise-seed``, which keeps
synthetic noise while the seed changes; the consensus at the end of a grid of seeds."""

import json
import shutil

import numpy as np
import pandas as pd  # the tables extra (in the test extra too)
import pytest
from helpers import SCHEDULE_2_EPOCHS, flags

from memomentum import InputError
from memomentum.cli import main
from memomentum.config import RunConfig
from memomentum.entrypoints.consensus import consensus_table, write_consensus
from memomentum.entrypoints.grid import Cell, expand, write_seed_consensus
from memomentum.runner.prepare import prepare_data

NAMES = np.array(["ash", "birch", "cedar"])
# a few seconds a run: the table's 3 classes, 2 epochs a phase, one outer loop of one inner round
SHORT = ["--label-column", "species", *flags(**SCHEDULE_2_EPOCHS, batch_size=16), "--threads", "1", "--quiet"]


def tree_frame(n=120, seed=0):
    rs = np.random.RandomState(seed)
    y = rs.randint(0, 3, n)
    return pd.DataFrame({"girth": rs.randn(n) + 3 * y, "height": rs.randn(n) - 2 * y, "species": NAMES[y]})


def train(csv, out, seed, *extra):
    code = main(["run", "--dataset", str(csv), *SHORT, "--seed", str(seed), *extra, "--out", str(out)])
    assert code == 0
    return out


@pytest.fixture(scope="module")
def seeds(tmp_path_factory):
    """Three seeds of one small CSV run, with symmetric noise drawn from --noise-seed 5."""
    root = tmp_path_factory.mktemp("consensus")
    tree_frame().to_csv(root / "trees.csv", index=False)
    noise = ["--noise-type", "symmetric", "--noise-rate", "0.3", "--noise-seed", "5"]
    runs = [train(root / "trees.csv", root / f"seed-{s}", s, *noise) for s in (1, 2, 3)]
    return root, runs


def by_hand(runs):
    """The consensus computed from the runs' examples.csv with pandas."""
    frames = [pd.read_csv(r / "examples.csv") for r in runs]
    all_rows = pd.concat(frames)
    grouped = all_rows.groupby("index")
    expected = pd.DataFrame(
        {
            "n_runs": grouped.size(),
            "issue_share": grouped["is_label_issue"].mean(),
            "mean_label_quality": grouped["label_quality"].mean(),
            "given_label": grouped["given_label"].first(),
        }
    )
    counts = all_rows.groupby(["index", "predicted_label"]).size().rename("votes").reset_index()
    expected["majority_share"] = counts.groupby("index")["votes"].max() / expected["n_runs"]
    return expected, counts


def test_share_per_example_equals_the_share_from_the_three_examples_files(seeds, tmp_path):
    _, runs = seeds
    assert main(["consensus", *map(str, runs), "--out", str(tmp_path / "c")]) == 0
    got = pd.read_csv(tmp_path / "c" / "consensus.csv").set_index("index")
    expected, counts = by_hand(runs)
    # every example some run judged: the splits differ by seed, the index lines them up
    assert sorted(got.index) == sorted(expected.index)
    assert len(got) > max(len(pd.read_csv(r / "examples.csv")) for r in runs) and (got["n_runs"] < 3).any()
    got = got.loc[expected.index]
    assert (got["n_runs"] == expected["n_runs"]).all()
    assert (got["given_label"] == expected["given_label"]).all()
    np.testing.assert_allclose(got["issue_share"], expected["issue_share"], atol=1e-6)
    np.testing.assert_allclose(got["mean_label_quality"], expected["mean_label_quality"], atol=1e-6)
    np.testing.assert_allclose(got["majority_share"], expected["majority_share"], atol=1e-6)
    # the majority label is one of the labels with the most votes
    best = counts[counts["votes"] == counts.groupby("index")["votes"].transform("max")]
    assert all(
        label in set(best.loc[best["index"] == i, "predicted_label"]) for i, label in got["majority_label"].items()
    )
    # synthetic noise: the true labels are known, and some given labels are wrong
    assert (got["true_label"] != got["given_label"]).any()


def test_rows_come_in_review_order(seeds):
    table = consensus_table(seeds[1])
    key = list(zip(-table["issue_share"], table["mean_label_quality"], table["index"]))
    assert key == sorted(key)
    assert table["issue_share"][0] > table["issue_share"][-1]


def test_runs_on_other_data_are_refused(seeds, tmp_path):
    _, runs = seeds
    other = tree_frame(seed=1)  # other features (and labels)
    other.to_csv(tmp_path / "other.csv", index=False)
    moved = train(
        tmp_path / "other.csv",
        tmp_path / "other",
        1,
        "--noise-type",
        "symmetric",
        "--noise-rate",
        "0.3",
        "--noise-seed",
        "5",
    )
    with pytest.raises(
        InputError,
        match=r"were trained on other data \(the features differ\), so their verdicts "
        r"cannot be combined; give runs of one dataset",
    ):
        consensus_table([runs[0], moved])


def test_runs_with_other_noisy_labels_are_refused_and_the_noise_seed_named(seeds, tmp_path):
    root, runs = seeds
    own_noise = train(root / "trees.csv", tmp_path / "seed-4", 4, "--noise-type", "symmetric", "--noise-rate", "0.3")
    with pytest.raises(
        InputError,
        match=r"other noisy labels \(the noisy labels of the training set differ\).*"
        r"synthetic noise follows --seed unless --noise-seed fixes it",
    ):
        consensus_table([runs[0], own_noise])


def test_runs_with_other_class_names_are_refused(seeds, tmp_path):
    renamed = tmp_path / "renamed"
    shutil.copytree(seeds[1][1], renamed)
    (renamed / "classes.json").write_text(json.dumps(["ash", "beech", "cedar"]))
    with pytest.raises(InputError, match="name their classes differently"):
        consensus_table([seeds[1][0], renamed])


def test_runs_before_the_fingerprint_are_judged_by_settings_and_shared_examples(seeds, tmp_path):
    """Runs written before summary.json had a data_fingerprint: their settings, and the given
    labels of the examples both hold."""
    old = []
    for run in seeds[1][:2]:
        copy = tmp_path / run.name
        shutil.copytree(run, copy)
        summary = json.loads((copy / "summary.json").read_text())
        del summary["data_fingerprint"]
        (copy / "summary.json").write_text(json.dumps(summary))
        old.append(copy)
    assert consensus_table(old)["index"].size == consensus_table(seeds[1][:2])["index"].size
    examples = pd.read_csv(old[1] / "examples.csv")
    examples.loc[examples["index"] == examples["index"][0], "given_label"] = (
        "cedar" if examples["given_label"][0] != "cedar" else "ash"
    )
    examples.to_csv(old[1] / "examples.csv", index=False)
    with pytest.raises(InputError, match=r"1 of the \d+ examples both hold have another given label"):
        consensus_table(old)


def test_cli_refusal_is_one_sentence_with_exit_2(seeds, tmp_path, capsys):
    runs = seeds[1]
    assert main(["consensus", str(runs[0]), str(tmp_path / "absent"), "--out", str(tmp_path / "c")]) == 2
    assert capsys.readouterr().err == f"memomentum: error: there is no run directory {tmp_path / 'absent'}\n"
    assert main(["consensus", str(runs[0]), str(runs[0]), "--out", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is given twice" in err
    assert main(["consensus", str(runs[0]), str(runs[1]), "--out", str(runs[1])]) == 2
    assert "is one of the run directories" in capsys.readouterr().err
    assert not (runs[1] / "consensus.csv").exists()


def test_the_noise_seed_keeps_the_labels_while_the_seed_changes(tmp_path):
    def prepared(**kw):
        return prepare_data(RunConfig(dataset="digits", noise_type="symmetric", noise_rate=0.3, progress=False, **kw))

    kept = [prepared(seed=s, noise_seed=7) for s in (1, 2)]
    np.testing.assert_array_equal(kept[0].noisy_labels, kept[1].noisy_labels)
    assert not np.array_equal(kept[0].train_index, kept[1].train_index)  # the split follows the training seed
    drawn = [prepared(seed=s) for s in (1, 2)]
    assert not np.array_equal(drawn[0].noisy_labels, drawn[1].noisy_labels)
    # no noise seed: the run's own seed, so a run without one draws the labels it always drew
    np.testing.assert_array_equal(drawn[0].noisy_labels, prepared(seed=1, noise_seed=1).noisy_labels)
    np.testing.assert_array_equal(drawn[0].train_index, prepared(seed=1, noise_seed=7).train_index)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(noise_seed=-1), "noise-seed must be a whole number in 0..4294967295, got -1"),
        (dict(noise_seed=2.5), "noise-seed must be a whole number in 0..4294967295, got 2.5"),
        (
            dict(noise_type="none", noise_seed=3),
            "--noise-type none keeps the labels as given, so --noise-seed 3 would be ignored",
        ),
    ],
)
def test_a_bad_or_unused_noise_seed_is_refused(kwargs, message):
    with pytest.raises(InputError, match=message):
        RunConfig(**kwargs)


def test_a_grid_of_seeds_writes_their_consensus(seeds, tmp_path):
    """The end of a grid: the cells that differ only by seed, their runs combined."""
    _, runs = seeds
    grid = tmp_path / "grid"
    cells = expand([("--method", ["memomentum", "ce"]), ("--seed", ["1", "2", "3"])])
    for cell, run in zip(cells[:3], runs):  # the Me-Momentum cells finished; the CE cells never ran
        shutil.copytree(run, grid / cell.name)
    lines = []
    written = write_seed_consensus(cells, grid, say=lines.append)
    assert written == [grid / "consensus" / "method-memomentum" / "consensus.csv"]
    expected = consensus_table(runs)
    got = pd.read_csv(written[0])
    assert list(got["index"]) == list(expected["index"])
    assert lines == [f"grid: consensus of 3 seeds of method-memomentum in {written[0]}"]


def test_a_grid_of_seeds_with_noise_drawn_per_seed_says_why_it_has_no_consensus(seeds, tmp_path):
    root, runs = seeds
    grid = tmp_path / "grid"
    shutil.copytree(runs[0], grid / "seed-1")
    train(root / "trees.csv", grid / "seed-4", 4, "--noise-type", "symmetric", "--noise-rate", "0.3")
    cells = [Cell("seed-1", (("--seed", "1"),)), Cell("seed-4", (("--seed", "4"),))]
    lines = []
    assert write_seed_consensus(cells, grid, say=lines.append) == []
    assert len(lines) == 1 and lines[0].startswith("grid: no consensus of the cells seed-*: the runs ")
    assert "--noise-seed" in lines[0]


def test_write_consensus_refuses_a_file_as_out(seeds, tmp_path):
    (tmp_path / "taken").write_text("")
    with pytest.raises(InputError, match="is a file, not a folder"):
        write_consensus(seeds[1], tmp_path / "taken")


def test_table_puts_runs_from_before_the_noise_seed_in_the_row_of_the_same_setting(seeds, tmp_path):
    """A grid resumed after the upgrade: its older cells' config.json have no noise_seed key."""
    from memomentum.entrypoints.table import find_runs, make_rows

    for seed in (1, 2):
        shutil.copytree(seeds[1][seed - 1], tmp_path / f"seed-{seed}")
        config = json.loads((tmp_path / f"seed-{seed}" / "config.json").read_text())
        config["noise_seed"] = None
        if seed == 1:
            del config["noise_seed"]
        (tmp_path / f"seed-{seed}" / "config.json").write_text(json.dumps(config))
    rows = make_rows(find_runs(tmp_path))
    assert len(rows) == 1 and rows[0].methods["memomentum"]["seeds"] == [1, 2]


def test_find_label_issues_refuses_a_noise_seed_for_labels_taken_as_given():
    import memomentum

    x, y = np.zeros((20, 2), dtype=np.float32), np.arange(20) % 2
    with pytest.raises(InputError, match="the run option 'noise_seed' does not apply here"):
        memomentum.find_label_issues(y, features=x, noise_seed=3)

"""``memomentum report RUN_DIR``: the self-contained HTML report of a finished run.

Most tests build a run directory by hand (the files ``memomentum run`` writes), so that
every number the report shows can be checked against numbers computed here; two tiny
digits runs check that a run writes its report and that a report that fails only warns;
one test opens the page in headless chromium (Debian's package) and looks at the pixels.
"""

import base64
import csv
import io
import json
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import matplotlib  # noqa: F401 - the plots extra (in the test extra too)
import numpy as np
import pytest
from helpers import SCHEDULE_1_EPOCH, skip_or_fail

from memomentum import RunConfig, run
from memomentum.base.errors import InputError
from memomentum.cli import main
from memomentum.data import load_dataset
from memomentum.entrypoints.report import label_errors_section, read_run, verdicts, write_report

NAMES = ["zero <0>", "one & 1", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
HEADINGS = [
    "Settings and result",
    "Training progress",
    "Confident set per round",
    "Recall per difficulty quintile",
    "Confident examples per class",
    "Given vs predicted labels",
    "Most likely label errors",
]
N = 300  # examples of the hand-made run: the first 300 digits


class Page(HTMLParser):
    """The parts of the report the tests look at: headings, images, tables and figure
    captions, each by the section it is in."""

    def __init__(self, text: str):
        super().__init__()
        self.section = None
        self.headings, self.images, self.links, self.external = [], [], [], []
        self.tables: dict[str, list] = {}
        self.captions: list[str] = []
        self.alts: list[str] = []
        self.text: dict[str, str] = {}
        self._cell = self._caption = None
        self._in_h2 = False
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "section":
            self.section = a.get("id")
            self.tables.setdefault(self.section, [])
        elif tag == "h2":
            self._in_h2 = True
            self.headings.append("")
        elif tag == "img":
            self.images.append(a.get("src", ""))
            self.alts.append(a.get("alt", ""))
        elif tag == "a":
            self.links.append(a.get("href", ""))
        elif tag in ("script", "link", "iframe", "object", "embed"):
            self.external.append(tag)
        elif tag == "table":
            self.tables[self.section].append([])
        elif tag == "tr":
            self.tables[self.section][-1].append([])
        elif tag in ("td", "th"):
            self._cell = ""
        elif tag == "figcaption":
            self._caption = ""

    def handle_endtag(self, tag):
        if tag == "h2":
            self._in_h2 = False
        elif tag in ("td", "th") and self._cell is not None:
            self.tables[self.section][-1][-1].append(self._cell.strip())
            self._cell = None
        elif tag == "figcaption":
            self.captions.append(self._caption)
            self._caption = None

    def handle_data(self, data):
        if self._in_h2:
            self.headings[-1] += data
        if self._cell is not None:
            self._cell += data
        if self._caption is not None:
            self._caption += data + " "
        if self.section:
            self.text[self.section] = self.text.get(self.section, "") + data


def _number(text: str) -> int:
    return int(text.replace(",", ""))


def _write_csv(path: Path, header: list[str], rows: list[list]) -> None:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


def make_run(root: Path, *, names=True, verdict_columns=True, difficulty=False, dataset="digits", seed=0) -> dict:
    """A finished run directory written by hand, and the arrays it was made from."""
    rng = np.random.default_rng(seed)
    true = load_dataset("digits").y_train[:N]
    given = true.copy()
    flip = rng.random(N) < 0.3
    given[flip] = (true[flip] + rng.integers(1, 10, flip.sum())) % 10
    predicted = np.where(rng.random(N) < 0.8, true, rng.integers(0, 10, N))
    confidence = rng.uniform(0.3, 1.0, N).round(6)
    confident = predicted == given
    quality = np.where(confident, 0.5 + confidence / 2, rng.uniform(0, 0.5, N)).round(6)
    index = np.arange(N)
    label = (lambda c: NAMES[c]) if names else (lambda c: int(c))
    header = ["index", "given_label", "predicted_label", "confidence", "is_confident"]
    header += ["is_label_issue", "label_quality"] if verdict_columns else []
    header += ["true_label"]
    rows = []
    for i in range(N):
        row = [index[i], label(given[i]), label(predicted[i]), confidence[i], int(confident[i])]
        row += [int(not confident[i]), quality[i]] if verdict_columns else []
        rows.append(row + [label(true[i])])
    root.mkdir(parents=True, exist_ok=True)
    _write_csv(root / "examples.csv", header, rows)
    history = (
        [(1, 0, e, 2.0 / e, 40 + 5 * e) for e in range(1, 5)]
        + [(1, 1, e, 0.5, 60 + e) for e in range(1, 3)]
        + [(2, 0, e, 1.0, 50 + e) for e in range(1, 4)]
        + [(2, 1, e, 0.4, 63 + e) for e in range(1, 3)]
    )
    _write_csv(
        root / "history.csv",
        ["outer", "inner", "epoch", "n_train", "train_loss", "val_accuracy", "lr"],
        [[o, i, e, N, loss, acc, 0.01] for o, i, e, loss, acc in history],
    )
    rounds = [
        {
            "outer": 1,
            "inner": 1,
            "n_confident": 180,
            "label_precision": 91.5,
            "label_recall": 80.25,
            "best_val_accuracy": 62.0,
        },
        {
            "outer": 2,
            "inner": 1,
            "n_confident": int(confident.sum()),
            "label_precision": 93.75,
            "label_recall": 84.5,
            "best_val_accuracy": 65.0,
        },
    ]
    summary = {
        "dataset": dataset,
        "method": "memomentum",
        "mode": "benchmark",
        "model": "mlp",
        "noise_type": "instance",
        "noise_rate": 0.3,
        "realised_noise_rate": round(100 * flip.mean(), 2),
        "seed": 1,
        "test_accuracy": 87.25,
        "best_val_accuracy": 65.0,
        "best_at": {"outer": 2, "inner": 1, "epoch": 2},
        "n_train": N,
        "n_val": 30,
        "epochs_run": len(history),
        "wall_time_s": 3.5,
        "device": "cpu",
        "threads": 1,
        "rounds": rounds,
        "final_confident": {"n_confident": int(confident.sum()), "label_precision": 93.75, "label_recall": 84.5},
        "noisy_label_precision": round(100 * (given == true).mean(), 2),
    }
    if difficulty:
        summary["difficulty"] = {
            "definition": "the epoch from which the first-phase network keeps predicting "
            "the true label <earliest = easiest>",
            "quintile_counts": [42, 42, 42, 41, 41],
            "rounds": [
                {"round": "1.1", "recall": [99.5, 95.25, 80.0, 61.75, 20.5]},
                {"round": "final", "recall": [98.0, 94.0, 83.5, 65.0, 31.25]},
            ],
        }
    (root / "summary.json").write_text(json.dumps(summary))
    (root / "config.json").write_text(
        json.dumps(
            {"dataset": dataset, "data_dir": None, "seed": 1, "epochs": 4, "milestones": [40, 80], "out": str(root)}
        )
    )
    if names:
        (root / "classes.json").write_text(json.dumps(NAMES))
    return dict(
        given=given,
        predicted=predicted,
        true=true,
        confident=confident,
        confidence=confidence,
        quality=quality,
        index=index,
    )


def report(root: Path, **kw) -> tuple[str, Page]:
    path = write_report(root, **kw)
    assert path == root / "report.html"
    text = path.read_text(encoding="utf-8")
    return text, Page(text)


def _png_bytes(src: str) -> bytes:
    assert src.startswith("data:image/png;base64,")
    data = base64.b64decode(src.split(",", 1)[1], validate=True)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return data


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    """The report of a hand-made run without difficulty tracking (rendered once: charts cost ~0.6 s)."""
    root = tmp_path_factory.mktemp("plain") / "run"
    arrays = make_run(root)
    return (root, arrays, *report(root))


@pytest.fixture(scope="module")
def tracked(tmp_path_factory):
    """The same with the difficulty quintiles in summary.json."""
    root = tmp_path_factory.mktemp("tracked") / "run"
    arrays = make_run(root, difficulty=True)
    return (root, arrays, *report(root))


def test_every_section_is_there_and_nothing_is_loaded_from_elsewhere(plain):
    root, _, text, page = plain
    assert page.headings == HEADINGS
    assert not page.external  # no script, stylesheet link or frame
    assert all(href.startswith("#") for href in page.links)
    # the progress and rounds charts (no difficulty chart: not tracked) and 24 label errors
    assert page.alts[:2] == ["validation accuracy per epoch", "confident set per round"]
    assert len(page.images) == 2 + 24
    for src in page.images:
        _png_bytes(src)
    # class names are escaped, never markup
    assert "zero &lt;0&gt;" in text and "one &amp; 1" in text and "zero <0>" not in text
    assert "87.25 %" in page.text["result"] and "93.75 %" in page.text["result"]
    assert "not tracked (run with --track-difficulty)" in page.text["difficulty"]
    assert not list(root.glob(".*.tmp"))  # written atomically: no temporary file left


def test_rounds_table_shows_each_round(plain):
    page = plain[3]
    (table,) = page.tables["rounds"]
    assert table[1][:5] == ["1.1", "1", "180", "91.50 %", "80.25 %"]
    assert table[2][0] == "2.1" and table[2][3:5] == ["93.75 %", "84.50 %"]


def test_confusion_matrix_and_class_counts_match_the_examples(plain):
    _, a, _, page = plain
    (table,) = page.tables["confusion"]
    assert table[0][1:] == NAMES
    shown = np.array([[_number(c) for c in row[1:]] for row in table[1:]])
    expected = np.zeros((10, 10), dtype=int)
    np.add.at(expected, (a["given"], a["predicted"]), 1)
    np.testing.assert_array_equal(shown, expected)

    (classes,) = page.tables["classes"]
    for c in range(10):
        row = classes[1 + c]
        assert row[0] == NAMES[c]
        assert _number(row[1]) == int(np.sum(a["given"] == c))
        assert _number(row[2]) == int(np.sum((a["given"] == c) & a["confident"]))


def test_difficulty_quintiles_are_tabulated_when_tracked(tracked):
    _, _, text, page = tracked
    (table,) = page.tables["difficulty"]
    assert table[0][1].startswith("quintile 1 (n=42)") and "easiest" in table[0][1] and "hardest" in table[0][5]
    assert table[1] == ["1.1", "99.50 %", "95.25 %", "80.00 %", "61.75 %", "20.50 %"]
    assert table[2][0] == "final" and table[2][5] == "31.25 %"
    assert "&lt;earliest = easiest&gt;" in text
    assert "not tracked" not in page.text["difficulty"]


def _grid_indices(page: Page) -> list[int]:
    return [int(alt.split()[-1]) for alt in page.alts if alt.startswith("example ")]


def test_label_errors_are_the_lowest_label_quality_with_their_images(plain):
    _, a, _, page = plain
    shown = _grid_indices(page)
    assert shown == list(np.lexsort((-a["confidence"], a["quality"]))[:24])
    first = shown[0]
    caption = page.captions[0]
    assert f"given: {NAMES[a['given'][first]]}" in caption and f"predicted: {NAMES[a['predicted'][first]]}" in caption
    assert f"true: {NAMES[a['true'][first]]}" in caption
    # the picture is that example's digit from the dataset
    from matplotlib.image import imread

    src = next(s for s, alt in zip(page.images, page.alts) if alt == f"example {first}")
    pixels = imread(io.BytesIO(_png_bytes(src)))[..., 0]
    digit = load_dataset("digits").x_train[first, :, :, 0].astype(float)
    assert pixels.shape == digit.shape
    assert np.corrcoef(pixels.ravel(), digit.ravel())[0, 1] > 0.99


def test_without_verdict_columns_the_most_confident_suspects_come_first(tmp_path):
    """examples.csv of an older run: numbered labels, no is_label_issue or label_quality."""
    root = tmp_path / "run"
    a = make_run(root, names=False, verdict_columns=False)
    run_files = read_run(root)
    page = Page(label_errors_section(run_files, verdicts(run_files), dataset=None, limit=5))
    suspects = np.flatnonzero(~a["confident"] & (a["predicted"] != a["given"]))
    expected = suspects[np.argsort(-a["confidence"][suspects], kind="stable")][:5]
    assert _grid_indices(page) == list(expected)
    assert f"given: {a['given'][expected[0]]}" in page.captions[0]


@pytest.mark.parametrize(
    "dataset, why",
    [("arrays", "given in memory"), ("table.csv", "a table, not images"), ("gone.npz", "could not be read")],
)
def test_data_without_images_to_show_get_a_table_instead(tmp_path, dataset, why):
    root = tmp_path / "run"
    a = make_run(root, dataset=dataset)
    run_files = read_run(root)
    page = Page(label_errors_section(run_files, verdicts(run_files), dataset=None, limit=4))
    assert why in page.text["label-errors"] and not _grid_indices(page)
    (table,) = page.tables["label-errors"]
    assert [_number(r[0]) for r in table[1:]] == list(np.lexsort((-a["confidence"], a["quality"]))[:4])


def test_cli_writes_the_report_and_prints_its_path(tmp_path, capsys):
    root = tmp_path / "run"
    make_run(root)
    assert main(["report", str(root)]) == 0
    assert capsys.readouterr().out.strip() == str(root / "report.html")
    assert (root / "report.html").stat().st_size > 10_000


@pytest.mark.parametrize("what", ["missing", "file", "unfinished"])
def test_cli_refuses_what_is_not_a_finished_run_in_one_sentence(tmp_path, capsys, what):
    target = tmp_path / "d"
    if what == "file":
        target.write_text("x")
    elif what == "unfinished":
        make_run(target)
        (target / "summary.json").unlink()
        (target / "checkpoint.pt").write_bytes(b"")
    assert main(["report", str(target)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("memomentum: error: ") and str(target) in err[0]
    assert not (target / "report.html").exists()


def test_without_matplotlib_the_message_names_the_extra(tmp_path, monkeypatch):
    root = tmp_path / "run"
    make_run(root)
    monkeypatch.setitem(__import__("sys").modules, "matplotlib", None)  # import matplotlib -> ImportError
    with pytest.raises(InputError, match=r"pip install memomentum\[plots\]"):
        write_report(root)


TINY = dict(dataset="digits", **SCHEDULE_1_EPOCH, threads=1, progress=False)


def test_a_run_writes_its_report(tmp_path):
    result = run(RunConfig(**TINY, out=str(tmp_path / "r")))
    page = Page((result.run_dir / "report.html").read_text(encoding="utf-8"))
    assert page.headings == HEADINGS
    assert len(_grid_indices(page)) == 24


def test_a_report_that_fails_only_warns(tmp_path, monkeypatch, capsys):
    import memomentum.entrypoints.report

    def broken(*args, **kwargs):
        raise RuntimeError("no fonts")

    monkeypatch.setattr(memomentum.entrypoints.report, "write_report", broken)
    result = run(RunConfig(**TINY, out=str(tmp_path / "r")))
    assert (result.run_dir / "summary.json").is_file() and not (result.run_dir / "report.html").exists()
    err = capsys.readouterr().err
    assert "warning" in err and "no fonts" in err and "memomentum report" in err


def test_the_report_renders_in_headless_chromium(tracked, tmp_path):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        skip_or_fail("chromium is not installed (Debian: apt-get install chromium; .ci/run installs it)")
    from PIL import Image

    page = tracked[0] / "report.html"
    shot = tmp_path / "report.png"
    done = subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            f"--screenshot={shot}",
            "--window-size=1200,3000",
            "--hide-scrollbars",
            page.resolve().as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0 and shot.is_file(), done.stderr[-2000:]
    image = np.asarray(Image.open(shot).convert("RGB"))
    assert image.shape == (3000, 1200, 3)
    ink = (image < 200).any(axis=2)  # anything darker than a light background
    assert ink.mean() > 0.02  # text, tables and charts, not a blank page
    rows_with_ink = np.flatnonzero(ink.any(axis=1))
    assert rows_with_ink.max() > 2000  # the page is laid out down the screen, not one collapsed line
    blue = (image[..., 2] > 150) & (image[..., 0] < 120)  # the charts' and the confusion matrix's blues
    assert blue.sum() > 5000


def test_a_cut_short_examples_csv_is_refused_rather_than_contradict_the_summary(tmp_path, capsys):
    root = tmp_path / "run"
    make_run(root)
    n_train = json.loads((root / "summary.json").read_text())["n_train"]
    lines = (root / "examples.csv").read_text().splitlines()
    (root / "examples.csv").write_text("\n".join(lines[: len(lines) // 2]) + "\n")
    assert main(["report", str(root)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"has {len(lines) // 2 - 1:,} rows but summary.json says the run had {n_train:,}" in err[0]
    assert not (root / "report.html").exists()


def test_every_template_is_shipped_in_the_package():
    """The pages are rendered from memomentum/templates: a template that pyproject.toml's
    package-data does not name would be missing from an installed wheel."""
    import fnmatch
    import re

    repo = Path(__file__).resolve().parents[1]
    data = re.search(r"\[tool.setuptools.package-data\]\nmemomentum = (\[.*\])", (repo / "pyproject.toml").read_text())
    shipped = json.loads(data.group(1))
    templates = [
        p.relative_to(repo / "memomentum").as_posix()
        for p in (repo / "memomentum" / "templates").rglob("*")
        if p.is_file()
    ]
    assert {"templates/base.html", "templates/report.html", "templates/table.html"} <= set(templates)
    for name in templates:
        assert any(fnmatch.fnmatch(name, pattern) and "/" not in name[len(pattern) - 1 :] for pattern in shipped), name

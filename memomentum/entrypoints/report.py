"""The run report: ``memomentum report RUN_DIR`` writes ``RUN_DIR/report.html``.

One self-contained HTML file (charts and images embedded as base64 PNG; no other file,
no URL) that shows a finished run: its settings and result, the validation accuracy of
every epoch with the outer loops and rounds marked, the confident set per round, the recall
per difficulty quintile (runs that tracked difficulty), the confident examples per class,
the given-vs-predicted confusion matrix, and the examples most likely to be mislabelled
(as an image grid for image data).

It reads the run directory's files (``summary.json``, ``config.json``, ``history.csv``,
``examples.csv``, ``classes.json``) and, for the image grid only, the few images it shows:
from the files named in ``examples.csv`` (image-file datasets), else from the dataset that
``config.json`` names. The charts need matplotlib (the ``plots`` extra). The markup is in the
package's Jinja2 templates (``memomentum/templates``: ``report.html`` and one ``report/*.html``
per section, on ``base.html`` and ``style.css``, which the grid's table page shares); this module
computes what they show.
"""

from __future__ import annotations

import base64
import csv
import functools
import io
import json
import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from ..base.errors import InputError
from ..data.registry import known_class_names
from ..method.verdicts import rank_by_quality
from ..runner.files import CHECKPOINT, CLASSES, CONFIG, EXAMPLES, HISTORY, REPORT, SUMMARY, is_finished, read_json

MISSING_DIFFICULTY = "not tracked (run with --track-difficulty)"
DEFAULT_LABEL_ERRORS = 24
_THUMB_SIDE = 128  # larger images are shown down-sampled to about this side


@dataclass
class RunFiles:
    """What the report reads from a finished run directory.

    Attributes:
        run_dir: the run directory.
        summary, config: ``summary.json`` and ``config.json`` as dictionaries.
        history: the rows of ``history.csv`` (numbers as floats).
        examples: the columns of ``examples.csv`` as strings, or None without that file.
        class_names: the classes' names in label order (``classes.json``, else the
            dataset's known names), or None (numbered classes).
    """

    run_dir: Path
    summary: dict
    config: dict
    history: list[dict]
    examples: dict[str, np.ndarray] | None
    class_names: list[str] | None


@dataclass
class ExamplesTable:
    """The examples of T as label indices and per-example flags, from ``examples.csv``."""

    index: np.ndarray  # position in the dataset's training set
    given: np.ndarray  # class indices
    predicted: np.ndarray
    true: np.ndarray | None  # -1 where unknown; None when no true label is known
    suspect: np.ndarray  # bool: a label issue (not in the confident set)
    confidence: np.ndarray | None  # the prediction's confidence, in [0, 1]
    quality: np.ndarray | None  # label_quality, higher = more likely correct
    files: np.ndarray | None  # image file per example (image-file datasets)
    num_classes: int
    rows: np.ndarray | None = None  # the row of the user's table per example (tables)


def write_report_or_warn(run_dir: Path, dataset=None) -> None:
    """``report.html`` at the end of a run, when matplotlib is installed. The results are
    complete by then, so a report that cannot be rendered is a warning, never a failed run."""
    import importlib.util
    import shlex
    import sys

    if importlib.util.find_spec("matplotlib") is None:
        return
    try:
        write_report(run_dir, dataset=dataset)
    except Exception as e:  # noqa: BLE001 - whatever went wrong, the run itself succeeded
        print(
            f"memomentum: warning: the run finished, but its report could not be written ({type(e).__name__}: {e}); "
            f"try again with: memomentum report {shlex.quote(str(run_dir))}",
            file=sys.stderr,
        )


def write_report(run_dir, *, dataset=None, max_label_errors: int = DEFAULT_LABEL_ERRORS) -> Path:
    """Write ``report.html`` into a finished run directory, atomically.

    Args:
        run_dir: a directory written by ``memomentum run`` (it must hold ``summary.json``).
        dataset: the run's :class:`memomentum.data.Dataset` when it is already in memory
            (the end of a run passes it); by default the images of the label-error grid are
            read from the files ``examples.csv`` names or from the dataset in ``config.json``.
        max_label_errors: how many of the most likely label errors to show.

    Returns:
        The path of the report.

    Raises:
        InputError: ``run_dir`` is not a finished run directory, one of its files cannot be
            read, or matplotlib (the ``plots`` extra) is not installed.
    """
    if not isinstance(max_label_errors, int) or max_label_errors < 0:
        raise InputError(f"max_label_errors must be a whole number of at least 0, got {max_label_errors!r}")
    run = read_run(run_dir)
    _require_matplotlib()
    page = render_report(run, dataset=dataset, max_label_errors=max_label_errors)
    from ..runner.outputs import write_text

    path = run.run_dir / REPORT
    try:
        write_text(path, page)
    except OSError as e:
        raise InputError(f"cannot write {path}: {e.strerror or e}") from None
    return path


# -- reading the run directory -------------------------------------------------------------
def read_run(run_dir) -> RunFiles:
    """Read a finished run directory (see :class:`RunFiles`); :class:`InputError` with one
    sentence when it is not one."""
    run_dir = Path(run_dir)
    if not run_dir.exists():
        raise InputError(f"there is no run directory {run_dir}")
    if not run_dir.is_dir():
        raise InputError(f"{run_dir} is a file, not a run directory written by memomentum run")
    if not is_finished(run_dir):
        unfinished = (run_dir / CHECKPOINT).exists()
        raise InputError(
            f"{run_dir} holds no finished run (no {SUMMARY}"
            f"{'; the run is unfinished, resume it first' if unfinished else ''})"
        )
    summary = _read_json_of_kind(run_dir / SUMMARY, dict)
    config = _read_json_of_kind(run_dir / CONFIG, dict) if (run_dir / CONFIG).is_file() else {}
    history = _read_history(run_dir / HISTORY)
    examples = _read_columns(run_dir / EXAMPLES) if (run_dir / EXAMPLES).is_file() else None
    _check_examples_match(run_dir, examples, summary)
    names = _read_class_names(run_dir / CLASSES) if (run_dir / CLASSES).is_file() else None
    if names is None:
        names = known_class_names(str(summary.get("dataset", config.get("dataset"))))
    return RunFiles(run_dir, summary, config, history, examples, names)


def _check_examples_match(run_dir: Path, examples: dict | None, summary: dict) -> None:
    """examples.csv has one row per training example of the run: a file cut short (or from
    another run) would give counts that contradict the summary, so it is refused."""
    if not examples or "n_train" not in summary:
        return
    rows = len(next(iter(examples.values())))
    if rows != summary["n_train"]:
        raise InputError(
            f"{run_dir / 'examples.csv'} has {rows:,} rows but {SUMMARY} says the run had "
            f"{summary['n_train']:,} training examples: the file is cut short or from another run, "
            f"so the report would contradict the summary; run the training again to rewrite it"
        )


def _read_json_of_kind(path: Path, kind: type | tuple[type, ...]):
    data = read_json(path)
    if not isinstance(data, kind):
        raise InputError(f"{path} does not hold a JSON {'object' if kind is dict else 'list'}")
    return data


def _read_class_names(path: Path) -> list[str]:
    data = _read_json_of_kind(path, (list, dict))
    if isinstance(data, dict):  # {"0": "cat", ...}: ordered by label
        try:
            return [str(data[k]) for k in sorted(data, key=int)]
        except ValueError:
            raise InputError(f"{path} maps labels to names, but not every key is a label number") from None
    return [str(name) for name in data]


def _read_rows(path: Path) -> tuple[list[str], list[list[str]]]:
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise InputError(f"cannot read {path}: {e}") from None
    return (rows[0], rows[1:]) if rows else ([], [])


def _read_history(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    header, rows = _read_rows(path)
    out = []
    for row in rows:
        record = dict(zip(header, row))
        try:
            out.append(
                {k: float(record[k]) for k in ("outer", "inner", "epoch", "val_accuracy")}
                | {"train_loss": _float_or_nan(record.get("train_loss", ""))}
            )
        except (KeyError, ValueError):
            raise InputError(
                f"{path} is not a memomentum history (a row lacks outer, inner, epoch or val_accuracy)"
            ) from None
    return out


def _float_or_nan(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return math.nan


def _read_columns(path: Path) -> dict[str, np.ndarray]:
    header, rows = _read_rows(path)
    rows = [r for r in rows if len(r) == len(header)]
    return {name: np.array([r[i] for r in rows], dtype=object) for i, name in enumerate(header)}


def verdicts(run: RunFiles) -> ExamplesTable | None:
    """The examples of ``examples.csv`` with labels as class indices (labels may be written
    as numbers or as the class names of ``classes.json``), or None without that file."""
    ex = run.examples
    if ex is None or "given_label" not in ex or "predicted_label" not in ex:
        return None
    path = run.run_dir / EXAMPLES
    names = run.class_names
    lookup = {name: i for i, name in enumerate(names)} if names else {}

    def label(text: str) -> int:
        if text == "":
            return -1
        if text in lookup:
            return lookup[text]
        try:
            return int(text)
        except ValueError:
            raise InputError(f"{path} holds the label {text!r}, which classes.json does not list") from None

    def labels(column: str) -> np.ndarray:
        values, inverse = np.unique(ex[column].astype(str), return_inverse=True)  # a few classes, many rows
        return np.array([label(t) for t in values], dtype=np.int64)[inverse].reshape(-1)

    given, predicted = labels("given_label"), labels("predicted_label")
    true = labels("true_label") if "true_label" in ex else None
    if "is_label_issue" in ex:
        suspect = _flags(ex["is_label_issue"])
    elif "is_confident" in ex:
        suspect = ~_flags(ex["is_confident"])
    else:
        suspect = predicted != given
    known = [a for a in (given, predicted, true) if a is not None and a.size]
    k = max([len(names) if names else 0] + [int(a.max()) + 1 for a in known])
    return ExamplesTable(
        index=_ints(ex.get("index"), given.size),
        given=given,
        predicted=predicted,
        true=true if true is not None and (true >= 0).any() else None,
        suspect=suspect,
        confidence=_floats(ex.get("confidence")),
        quality=_floats(ex.get("label_quality")),
        files=ex.get("file"),
        num_classes=k,
        rows=None if ex.get("row") is None else _ints(ex.get("row"), given.size),
    )


def _flags(column: np.ndarray) -> np.ndarray:
    return np.array([str(v).strip().lower() in ("1", "true", "yes") for v in column], dtype=bool)


def _floats(column) -> np.ndarray | None:
    return None if column is None else np.array([_float_or_nan(v) for v in column], dtype=np.float64)


def _ints(column, n: int) -> np.ndarray:
    return np.arange(n) if column is None else np.array([int(v) for v in column], dtype=np.int64)


# -- choosing the label errors ---------------------------------------------------------------
def likely_label_errors(v: ExamplesTable, limit: int) -> tuple[np.ndarray, str]:
    """Rows of ``v`` most likely mislabelled, most likely first, and how they were ranked:
    the lowest ``label_quality`` when the run wrote it, else the suspects the network
    assigns to another class with the highest confidence."""
    if v.quality is not None and not np.isnan(v.quality).all():
        order = rank_by_quality(v.quality, v.confidence)
        return order[:limit], "lowest label quality first; ties: the most confident prediction first"
    rows = np.flatnonzero(v.suspect & (v.predicted != v.given))
    if v.confidence is not None:
        rows = rows[np.argsort(-np.nan_to_num(v.confidence[rows], nan=-1.0), kind="stable")]
    return rows[:limit], "suspects the network assigns to another class, most confident first"


def load_images(run: RunFiles, v: ExamplesTable, rows: np.ndarray, *, dataset=None) -> tuple[list | None, str]:
    """The images of ``rows`` (uint8 H x W x C arrays), or None and why not."""
    if rows.size == 0:
        return [], ""
    if v.files is not None:
        return _images_from_files([str(v.files[r]) for r in rows])
    ds = dataset
    if ds is None:
        name = run.config.get("dataset", run.summary.get("dataset"))
        if not name or name == "arrays":
            return None, "the run's data were given in memory, so the report cannot read its images"
        from ..data.registry import is_table_file

        if is_table_file(name):
            return None, "the data are a table, not images"
        try:
            from ..data import load_dataset

            ds = load_dataset(
                name,
                data_dir=run.config.get("data_dir"),
                cache_dir=run.config.get("cache_dir"),
                image_size=run.config.get("image_size"),
                store_format=run.config.get("store_format") or "jpeg",
                train_set=run.config.get("train_set") or "noisy",
                progress=False,
            )
        except Exception as e:  # noqa: BLE001 -- the grid is an extra: a dataset that cannot be read leaves the table
            return None, f"the images could not be read ({e})"
    if getattr(ds.x_train, "ndim", 0) != 4:
        return None, "the data are a table of features, not images"
    idx = v.index[rows]
    if idx.size and (idx.min() < 0 or idx.max() >= len(ds.x_train)):
        return None, "examples.csv does not match the dataset (an index lies outside its training set)"
    order = np.argsort(idx, kind="stable")  # packed stores read fastest in index order
    picked = np.asarray(ds.x_train[idx[order]])
    images = [None] * idx.size
    for j, i in enumerate(order):
        images[i] = picked[j]
    return images, ""


def _images_from_files(paths: list[str]) -> tuple[list | None, str]:
    try:
        from PIL import Image
    except ImportError:
        return None, "reading the image files needs Pillow (pip install memomentum[images])"
    images = []
    for p in paths:
        try:
            with Image.open(p) as im:
                im = im.convert("RGB")
                im.thumbnail((_THUMB_SIDE * 2, _THUMB_SIDE * 2))
                images.append(np.asarray(im))
        except OSError as e:
            return None, f"the image {p} could not be read ({e.strerror or e})"
    return images, ""


# -- charts (matplotlib) -----------------------------------------------------------------------
def _require_matplotlib() -> None:
    import importlib

    try:
        importlib.import_module("matplotlib")
    except ImportError:
        raise InputError(
            "the report draws its charts with matplotlib, which is not installed: pip install memomentum[plots]"
        ) from None


def new_figure(width: float, height: float):
    from matplotlib.figure import Figure  # no pyplot: no global state, no GUI backend

    return Figure(figsize=(width, height), dpi=100)


def figure_png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return _data_uri(buf.getvalue())


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _phase_label(outer: int, inner: int) -> str:
    return f"outer {outer}: first phase" if inner == 0 else f"round {outer}.{inner}"


def progress_chart(history: list[dict], best_at: dict | None) -> str:
    """Validation accuracy (and training loss) of every epoch; solid lines start an outer
    loop, dotted lines a round, and each phase is labelled."""
    fig = new_figure(11, 4.2)
    ax = fig.add_subplot()
    x = np.arange(1, len(history) + 1)
    ax.plot(
        x,
        [h["val_accuracy"] for h in history],
        color="#1f77b4",
        lw=1.6,
        marker="." if len(x) < 60 else None,
        label="validation accuracy",
    )
    loss = np.array([h["train_loss"] for h in history])
    twin = None
    if np.isfinite(loss).any():
        ax2 = twin = ax.twinx()
        ax2.plot(x, loss, color="#999999", lw=1, ls="--", label="training loss")
        ax2.set_ylabel("training loss", color="#666666")
        ax2.tick_params(axis="y", colors="#666666")
    starts = [
        i
        for i in range(len(history))
        if i == 0 or (history[i]["outer"], history[i]["inner"]) != (history[i - 1]["outer"], history[i - 1]["inner"])
    ]
    for j, i in enumerate(starts):
        h = history[i]
        if i > 0:
            new_outer = h["outer"] != history[i - 1]["outer"]
            ax.axvline(
                i + 0.5,
                color="#444444" if new_outer else "#888888",
                lw=1.2 if new_outer else 0.8,
                ls="-" if new_outer else ":",
            )
        end = starts[j + 1] if j + 1 < len(starts) else len(history)
        if h["inner"] == 0:
            ax.axvspan(i + 0.5, end + 0.5, color="#f2f2f2", zorder=0)
        ax.text(
            (i + end) / 2 + 0.5,
            1.01,
            _phase_label(int(h["outer"]), int(h["inner"])),
            rotation=90 if len(starts) > 8 else 0,
            ha="center",
            va="bottom",
            fontsize=7,
            transform=ax.get_xaxis_transform(),
        )
    if best_at:
        for i, h in enumerate(history):
            if (h["outer"], h["inner"], h["epoch"]) == (
                best_at.get("outer"),
                best_at.get("inner"),
                best_at.get("epoch"),
            ):
                ax.plot(
                    [i + 1],
                    [h["val_accuracy"]],
                    marker="*",
                    ms=14,
                    color="#d62728",
                    ls="none",
                    label="best validation (the model kept)",
                )
                break
    ax.set_xlim(0.5, len(history) + 0.5)
    ax.set_xlabel(
        "epoch, counted over the whole run (grey: first phases; solid line: new outer loop; dotted: new round)"
    )
    ax.set_ylabel("validation accuracy (%)")
    _legend_below(ax, twin)
    fig.tight_layout()
    return figure_png(fig)


def _legend_below(ax, twin) -> None:
    """One legend for an axis and its twin, under the plot where it hides no data."""
    handles, labels = ax.get_legend_handles_labels()
    if twin is not None:
        more = twin.get_legend_handles_labels()
        handles, labels = handles + more[0], labels + more[1]
    ax.legend(
        handles, labels, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=len(handles), fontsize=8, frameon=False
    )


def rounds_chart(rounds: list[dict]) -> str:
    """Confident-set size (bars) and its label precision and recall (lines) per round."""
    fig = new_figure(min(9.0, 4.0 + 0.8 * len(rounds)), 3.6)
    ax = fig.add_subplot()
    x = np.arange(1, len(rounds) + 1)
    ax.bar(x, [r.get("n_confident", 0) for r in rounds], color="#9ecae1", label="confident examples")
    ax.set_xticks(list(x), [f"{r.get('outer')}.{r.get('inner')}" for r in rounds])
    ax.set_xlabel("round (outer.inner)")
    ax.set_ylabel("confident examples")
    if any("label_precision" in r for r in rounds):
        ax2 = ax.twinx()
        ax2.plot(
            x, [r.get("label_precision", math.nan) for r in rounds], "o-", color="#d62728", label="label precision"
        )
        ax2.plot(x, [r.get("label_recall", math.nan) for r in rounds], "s-", color="#2ca02c", label="label recall")
        ax2.set_ylabel("%")
        ax2.set_ylim(0, 100)
        _legend_below(ax, ax2)
    fig.tight_layout()
    return figure_png(fig)


def difficulty_chart(difficulty: dict) -> str:
    """Recall of the confident set in each difficulty quintile, one line per round."""
    fig = new_figure(7, 3.6)
    ax = fig.add_subplot()
    rounds = difficulty.get("rounds", [])
    for r in rounds:
        recall = r.get("recall", [])
        ax.plot(np.arange(1, len(recall) + 1), recall, "o-", lw=1.2, label=str(r.get("round")))
    ax.set_xticks([1, 2, 3, 4, 5])
    ax.set_xlabel("difficulty quintile (1 = easiest)")
    ax.set_ylabel("recall of the confident set (%)")
    ax.set_ylim(0, 100)
    if rounds:
        ax.legend(fontsize=7, ncol=2 if len(rounds) > 6 else 1)
    fig.tight_layout()
    return figure_png(fig)


def confusion_chart(matrix: np.ndarray) -> str:
    """The given-vs-predicted matrix as a heat map (for many classes)."""
    fig = new_figure(8, 7)
    ax = fig.add_subplot()
    share = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    im = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    ax.set_xlabel("predicted label")
    ax.set_ylabel("given label")
    fig.colorbar(im, ax=ax, label="share of the given label's examples")
    fig.tight_layout()
    return figure_png(fig)


def image_png(image: np.ndarray) -> str:
    """One image as a PNG data URI (grey images scaled to their own range, large ones
    down-sampled)."""
    from matplotlib.image import imsave

    a = np.asarray(image)
    step = max(1, max(a.shape[:2]) // _THUMB_SIDE)
    a = a[::step, ::step]
    buf = io.BytesIO()
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim == 2:
        imsave(buf, a, format="png", cmap="gray", vmin=0, vmax=max(float(a.max()), 1.0))
    else:
        imsave(buf, np.ascontiguousarray(a[:, :, :3]), format="png")
    return _data_uri(buf.getvalue())


# -- HTML ------------------------------------------------------------------------------------
# -- the page (templates/report.html and templates/report/*.html) ----------------------------
# The style every page shares (templates/style.css; base.html puts it inline).
CSS = (resources.files("memomentum") / "templates" / "style.css").read_text(encoding="utf-8")
SECTIONS = [
    ("result", "Settings and result"),
    ("progress", "Training progress"),
    ("rounds", "Confident set per round"),
    ("difficulty", "Recall per difficulty quintile"),
    ("classes", "Confident examples per class"),
    ("confusion", "Given vs predicted labels"),
    ("label-errors", "Most likely label errors"),
]


@functools.lru_cache(maxsize=1)
def templates():
    """The Jinja2 environment of the package's templates (``memomentum/templates``): every
    value is HTML-escaped unless the code marked it as markup (a rendered piece of a page)."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("memomentum", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["thousands"] = lambda n: f"{n:,}"
    return env


def render(template: str, **context):
    """One of the package's templates rendered with ``context``, as markup another template
    can embed without escaping it again."""
    from markupsafe import Markup

    return Markup(templates().get_template(template).render(**context))


def _section(key: str, template: str = "report/section.html", **context):
    return render(template, key=key, title=dict(SECTIONS)[key], **context)


def _pct(value) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.2f} %"


def _count(value) -> str:
    return f"{value:,}" if isinstance(value, (int, np.integer)) else str(value)


def _class_name(run: RunFiles, label: int) -> str:
    if label < 0:
        return ""
    names = run.class_names
    return names[label] if names and label < len(names) else str(label)


def headline(run: RunFiles) -> str:
    """One sentence: what ran and what came out."""
    s = run.summary
    noise = s.get("noise_type")
    if noise == "none":
        noise_text = "labels as given"
    else:
        rate = "" if s.get("noise_rate") is None else f" {s['noise_rate']:g}"
        noise_text = f"{noise} noise{rate} (realised {_pct(s.get('realised_noise_rate'))})"
    fc = s.get("final_confident") or {}
    text = (
        f"{s.get('method', 'memomentum')} on {s.get('dataset')} ({s.get('model')}), {noise_text}, "
        f"seed {s.get('seed')}: test accuracy {_pct(s.get('test_accuracy'))}"
    )
    if "n_confident" in fc:
        text += f"; {fc['n_confident']:,} of {s.get('n_train', 0):,} training examples kept as confident"
        if "label_precision" in fc:
            text += f" (label precision {_pct(fc['label_precision'])}, recall {_pct(fc['label_recall'])})"
    return text + "."


def result_section(run: RunFiles) -> str:
    s = run.summary
    fc = s.get("final_confident") or {}
    best = s.get("best_at") or {}
    where = (
        (
            f" (outer {best.get('outer')}, {'first phase' if best.get('inner') == 0 else 'round ' + str(best.get('inner'))}"
            f", epoch {best.get('epoch')})"
        )
        if best
        else ""
    )
    val_kind = "clean" if s.get("mode") == "clothing1m" else "noisy"
    rows = [
        ["test accuracy", _pct(s.get("test_accuracy"))],
        [f"best validation accuracy ({val_kind} labels)", _pct(s.get("best_val_accuracy")) + where],
    ]
    if "assembled_test_accuracy" in s:
        rows.append(["test accuracy of the per-class assembled model", _pct(s["assembled_test_accuracy"])])
    rows.append(["realised label noise", _pct(s.get("realised_noise_rate"))])
    if "noisy_label_precision" in s:
        rows.append(["correct given labels (training part)", _pct(s["noisy_label_precision"])])
    if "review" in s:  # the data were exported by memomentum review
        r = s["review"]
        rows.append(["labels corrected / excluded by review", f"{r['corrected']:,} / {r['excluded']:,}"])
    if "n_confident" in fc:
        rows.append(["confident examples", f"{fc['n_confident']:,} of {s.get('n_train', 0):,}"])
    if "label_precision" in fc:
        rows.append(["label precision of the confident set", _pct(fc["label_precision"])])
        rows.append(["label recall of the confident set", _pct(fc["label_recall"])])
    rows += [
        ["training / validation examples", f"{s.get('n_train', 0):,} / {s.get('n_val', 0):,}"],
        ["epochs", _count(s.get("epochs_run", ""))],
        [
            "wall time",
            f"{s.get('wall_time_s', 0):,.1f} s on {s.get('device', '?')}"
            + (f", {s['threads']} thread{'s' if s['threads'] != 1 else ''}" if "threads" in s else ""),
        ],
    ]
    return _section(
        "result",
        "report/result.html",
        results=rows,
        settings=_settings_rows(run.config),
        summary_json=json.dumps(s, indent=2),
    )


def _settings_rows(config: dict) -> list[list[str]]:
    """config.json as rows of two settings each (it has some forty)."""
    pairs = [
        [k, "default" if v is None else ",".join(map(str, v)) if isinstance(v, list) else str(v)]
        for k, v in config.items()
    ]
    half = (len(pairs) + 1) // 2
    return [pairs[i] + (pairs[half + i] if half + i < len(pairs) else ["", ""]) for i in range(half)]


def progress_section(run: RunFiles) -> str:
    if not run.history:
        return _section("progress", note="no history.csv in this run directory")
    chart = progress_chart(run.history, run.summary.get("best_at"))
    phases = {(int(h["outer"]), int(h["inner"])) for h in run.history}
    return _section("progress", "report/progress.html", chart=chart, epochs=len(run.history), phases=len(phases))


def rounds_section(run: RunFiles) -> str:
    rounds = run.summary.get("rounds") or []
    if not rounds:
        return _section(
            "rounds", note="this run had no inner rounds (the cross-entropy baseline, or a single phase per outer loop)"
        )
    measured = any("label_precision" in r for r in rounds)
    header = ["round", "outer loop", "confident examples"] + (["label precision", "label recall"] if measured else [])
    header.append("best validation accuracy")
    rows = []
    for r in rounds:
        row = [f"{r.get('outer')}.{r.get('inner')}", _count(r.get("outer")), _count(r.get("n_confident", ""))]
        if measured:
            row += [_pct(r.get("label_precision")), _pct(r.get("label_recall"))]
        rows.append(row + [_pct(r.get("best_val_accuracy"))])
    return _section("rounds", "report/rounds.html", header=header, rows=rows, chart=rounds_chart(rounds))


def difficulty_section(run: RunFiles) -> str:
    d = run.summary.get("difficulty")
    if not isinstance(d, dict) or not d.get("rounds"):
        return _section("difficulty", note=MISSING_DIFFICULTY)
    counts = list(d.get("quintile_counts") or [])
    width = max([len(r.get("recall", [])) for r in d["rounds"]] + [len(counts)])
    quintiles = [{"count": counts[q] if q < len(counts) else None} for q in range(width)]
    rows = [(r.get("round"), [_pct(v) for v in r.get("recall", [])]) for r in d["rounds"]]
    settled = d.get("quintile_settled_epochs")
    settled = [_epoch_range(e) for e in settled] if isinstance(settled, list) and len(settled) == width else None
    return _section(
        "difficulty",
        "report/difficulty.html",
        definition=d.get("definition", ""),
        quintiles=quintiles,
        rows=rows,
        settled=settled,
        chart=difficulty_chart(d),
    )


def _epoch_range(pair) -> str:
    """``[first, last]`` settling epochs of a quintile; None = never settled."""
    if not isinstance(pair, (list, tuple)) or len(pair) != 2:
        return ""
    first, last = ("never" if e is None else str(e) for e in pair)
    return first if first == last else f"{first} to {last}"


def classes_section(run: RunFiles, v: ExamplesTable | None) -> str:
    if v is None:
        return _section("classes", note="no examples.csv in this run directory")
    classes = []
    for c in range(v.num_classes):
        mine = v.given == c
        kept = mine & ~v.suspect
        n, k = int(mine.sum()), int(kept.sum())
        share = 100 * k / n if n else math.nan
        precision = math.nan  # of the confident examples whose true label is known
        if v.true is not None and (kept & (v.true >= 0)).any():
            precision = 100 * float(np.mean(v.true[kept & (v.true >= 0)] == c))
        classes.append(
            {
                "name": _class_name(run, c),
                "given": n,
                "confident": k,
                "share": _pct(share),
                "bar_px": 0 if math.isnan(share) else round(share * 0.8),
                "precision": _pct(precision),
            }
        )
    return _section("classes", "report/classes.html", classes=classes, with_precision=v.true is not None)


def confusion_matrix(v: ExamplesTable) -> np.ndarray:
    """Counts of (given label, predicted label) over the examples of T."""
    k = v.num_classes
    ok = (v.given >= 0) & (v.predicted >= 0)
    return np.bincount(v.given[ok] * k + v.predicted[ok], minlength=k * k).reshape(k, k)


def confusion_section(run: RunFiles, v: ExamplesTable | None) -> str:
    if v is None:
        return _section("confusion", note="no examples.csv in this run directory")
    m = confusion_matrix(v)
    shown = {"agree": int(np.trace(m)), "total": int(m.sum())}
    if v.num_classes > 30:
        return _section("confusion", "report/confusion.html", chart=confusion_chart(m), **shown)
    share = m / np.maximum(m.sum(axis=1, keepdims=True), 1)  # each cell's share of its row shades it
    matrix = [
        [{"count": int(m[g, p]), "alpha": float(share[g, p]), "diag": g == p} for p in range(m.shape[1])]
        for g in range(m.shape[0])
    ]
    return _section(
        "confusion",
        "report/confusion.html",
        chart=None,
        matrix=matrix,
        names=[_class_name(run, c) for c in range(v.num_classes)],
        **shown,
    )


def label_errors_section(run: RunFiles, v: ExamplesTable | None, *, dataset, limit: int) -> str:
    if v is None:
        return _section("label-errors", note="no examples.csv in this run directory")
    rows, how = likely_label_errors(v, limit)
    if rows.size == 0:
        return _section("label-errors", note="no example is suspected of a wrong label")
    images, why = load_images(run, v, rows, dataset=dataset)
    score_name, scores = ("label quality", v.quality) if v.quality is not None else ("confidence", v.confidence)
    shown = {
        "shown": rows.size,
        "how": how,
        "wrong": None if v.true is None else int(np.sum(v.given[rows] != v.true[rows])),
    }
    if images is None:
        header = (
            ["example" if v.rows is None else "row in the table", "given", "predicted"]
            + ([score_name] if scores is not None else [])
            + (["true"] if v.true is not None else [])
        )
        table = []
        for r in rows:
            row = [
                f"{(v.index if v.rows is None else v.rows)[r]:,}",
                _class_name(run, v.given[r]),
                _class_name(run, v.predicted[r]),
            ]
            row += [f"{scores[r]:.3f}"] if scores is not None else []
            row += [_class_name(run, v.true[r])] if v.true is not None else []
            table.append(row)
        return _section(
            "label-errors", "report/label_errors.html", figures=None, why=why, header=header, rows=table, **shown
        )
    figures = [_label_error_figure(run, v, r, image, score_name, scores) for r, image in zip(rows, images)]
    return _section("label-errors", "report/label_errors.html", figures=figures, **shown)


def _label_error_figure(run: RunFiles, v: ExamplesTable, r: int, image, score_name: str, scores) -> dict:
    """What the grid shows of one example: its image, its labels and the score it was ranked by."""
    detail = f"#{v.index[r]}" + (f", {score_name} {scores[r]:.3f}" if scores is not None else "")
    if v.quality is not None and v.confidence is not None:
        detail += f", predicted with {v.confidence[r]:.2f}"
    true = _class_name(run, v.true[r]) if v.true is not None and v.true[r] >= 0 else None
    return {
        "index": v.index[r],
        "src": image_png(image),
        "given": _class_name(run, v.given[r]),
        "predicted": _class_name(run, v.predicted[r]),
        "true": true,
        "detail": detail,
    }


def render_report(run: RunFiles, *, dataset=None, max_label_errors: int = DEFAULT_LABEL_ERRORS) -> str:
    """The report of ``run`` as one HTML page (see :func:`write_report`)."""
    v = verdicts(run)
    body = [
        result_section(run),
        progress_section(run),
        rounds_section(run),
        difficulty_section(run),
        classes_section(run, v),
        confusion_section(run, v),
        label_errors_section(run, v, dataset=dataset, limit=max_label_errors),
    ]
    return (
        templates()
        .get_template("report.html")
        .render(
            title=f"memomentum report: {run.summary.get('dataset')}",
            lead=headline(run),
            run_dir=run.run_dir.resolve(),
            sections=SECTIONS,
            body=body,
        )
    )

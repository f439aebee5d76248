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
``config.json`` names. The charts need matplotlib (the ``plots`` extra). This package
writes the page; its parts:

* :mod:`.reading`: the run directory's files, and the examples as class indices;
* :mod:`.label_errors`: the likely label errors, their order and their images;
* :mod:`.figures`: the charts and images (matplotlib), as PNG data URIs;
* :mod:`.page`: the Jinja2 templates (``memomentum/templates``: ``report.html`` and one
  ``report/*.html`` per section, on ``base.html`` and ``style.css``, which the grid's table
  page shares) and how numbers and class names are written;
* :mod:`.sections`: what each section shows, and the headline.
"""

from __future__ import annotations

from pathlib import Path

from ...base.errors import InputError
from ...runner.files import REPORT
from .figures import figure_png, new_figure, require_matplotlib
from .page import CSS, SECTIONS, templates
from .reading import ExamplesTable, RunFiles, read_run, verdicts
from .sections import (
    classes_section,
    confusion_section,
    difficulty_section,
    headline,
    label_errors_section,
    progress_section,
    result_section,
    rounds_section,
)

DEFAULT_LABEL_ERRORS = 24

__all__ = [
    "CSS",
    "DEFAULT_LABEL_ERRORS",
    "ExamplesTable",
    "RunFiles",
    "figure_png",
    "label_errors_section",
    "new_figure",
    "read_run",
    "render_report",
    "templates",
    "verdicts",
    "write_report",
    "write_report_or_warn",
]


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
    require_matplotlib()
    page = render_report(run, dataset=dataset, max_label_errors=max_label_errors)
    from ...runner.outputs import write_text

    path = run.run_dir / REPORT
    try:
        write_text(path, page)
    except OSError as e:
        raise InputError(f"cannot write {path}: {e.strerror or e}") from None
    return path


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

"""The report page's Jinja2 templates (``memomentum/templates``: ``report.html`` and one
``report/*.html`` per section, on ``base.html`` and ``style.css``, which the grid's table page
shares), its sections' titles, and how the page writes numbers and class names.
"""

from __future__ import annotations

import functools
import math
from importlib import resources

import numpy as np

from .reading import RunFiles

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


def section(key: str, template: str = "report/section.html", **context):
    """A section of the page: its template rendered with its key and its title in :data:`SECTIONS`."""
    return render(template, key=key, title=dict(SECTIONS)[key], **context)


def percent_text(value) -> str:
    """A percentage as the page writes it (two decimals), or n/a when it is unknown."""
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.2f} %"


def count_text(value) -> str:
    """A count with thousands separators (anything else as it is)."""
    return f"{value:,}" if isinstance(value, (int, np.integer)) else str(value)


def class_name(run: RunFiles, label: int) -> str:
    """A label as its class's name (its number when the run has no names; empty for -1, unknown)."""
    if label < 0:
        return ""
    names = run.class_names
    return names[label] if names and label < len(names) else str(label)

"""The paper's kind of table from finished runs: for each setting, every method's test
accuracy and final confident set as mean ± std over its seeds (with n), and the paired
difference Me-Momentum - CE over the seeds both finished.

A *setting* is everything in a run's ``config.json`` that changes results, except the seed and
the method, and the number of CPU threads the run used. Only finished runs (a ``summary.json``) are averaged; unfinished ones are listed.
Written as Markdown, CSV, JSON and an HTML page (:func:`write_tables`); ``memomentum table GRID_DIR``
and the end of ``memomentum grid`` call it. The page (:func:`as_html`) is self-contained like the
run report (:mod:`memomentum.report`, whose style it shares) and charts the test accuracies when
matplotlib (the ``plots`` extra) is installed; the other three files never need matplotlib.
"""
from __future__ import annotations

import csv
import dataclasses
import html
import io
import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from .config import NON_RESULT_KEYS, RunConfig
from .errors import InputError
from .runner import files

# Settings keys that never separate rows: the run's own identity, or what does not change results.
_NOT_A_SETTING = NON_RESULT_KEYS | {"seed", "method"}
TABLE_FILES = ("table.md", "table.csv", "table.json", "table.html")
# the defaults of the settings that may be missing from config.json (added after the run was made)
_DEFAULTS = {f.name: f.default for f in dataclasses.fields(RunConfig) if f.default is not dataclasses.MISSING}


@dataclass
class Run:
    """One run directory: its settings (from config.json) and, when finished, its summary."""

    directory: Path
    config: dict
    summary: dict | None

    @property
    def setting(self) -> tuple:
        """What the run shares with the runs it is averaged with. The thread count is the
        one the run used (it sets the order of float sums, so it is part of the setting)."""
        # a key a run's version did not write yet (noise_seed) counts as its default
        config = {**_DEFAULTS, **self.config}
        items = {k: v for k, v in config.items() if k not in _NOT_A_SETTING}
        items["threads"] = (self.summary or {}).get("threads")
        return tuple(sorted((k, json.dumps(v)) for k, v in items.items()))


@dataclass
class Row:
    setting: dict
    methods: dict = field(default_factory=dict)  # method -> statistics
    paired: dict | None = None  # Me-Momentum - CE over the seeds both finished


def find_runs(directory: Path) -> list[Run]:
    """Every run directory at or below ``directory`` (one with a config.json)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise InputError(f"there is no folder {directory} to make a table from")
    runs = []
    for config in sorted(directory.rglob(files.CONFIG)):
        if any(part.startswith(".") for part in config.relative_to(directory).parts):
            continue  # e.g. a run set aside by --overwrite
        summary = config.with_name(files.SUMMARY)
        runs.append(Run(config.parent, _read(config), _read(summary) if summary.is_file() else None))
    if not runs:
        raise InputError(f"{directory} holds no run directories (no config.json below it)")
    return runs


def _read(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise InputError(f"cannot read {path}: {e}") from None


def mean_std(values: list[float | None]) -> dict:
    """Mean, standard deviation and count of the measured values (None: not measured, as the
    test accuracy of data without a test set, label precision without known true labels);
    mean None (shown "-", null in JSON, empty in CSV) when none is."""
    values = [v for v in values if v is not None]
    if not values:
        return {"mean": None, "std": None, "n": 0}
    return {"mean": round(statistics.fmean(values), 2),
            "std": round(statistics.stdev(values), 2) if len(values) > 1 else None, "n": len(values)}


def make_rows(runs: list[Run]) -> list[Row]:
    groups: dict[tuple, list[Run]] = {}
    for run in runs:
        if run.summary is not None:
            groups.setdefault(run.setting, []).append(run)
    rows = []
    for setting, members in sorted(groups.items(), key=lambda kv: str(kv[0])):
        row = Row(setting={k: json.loads(v) for k, v in setting})
        by_method: dict[str, dict[int, dict]] = {}
        for run in members:
            by_method.setdefault(run.config["method"], {})[run.config["seed"]] = run.summary
        for method, by_seed in sorted(by_method.items()):
            summaries = [by_seed[s] for s in sorted(by_seed)]
            row.methods[method] = {
                "seeds": sorted(by_seed),
                "test_accuracy": mean_std([s["test_accuracy"] for s in summaries]),
                "label_precision": mean_std([s.get("final_confident", {}).get("label_precision") for s in summaries]),
                "label_recall": mean_std([s.get("final_confident", {}).get("label_recall") for s in summaries]),
                "epochs": [s["epochs_run"] for s in summaries],
                "wall_time_s": [round(s["wall_time_s"], 1) for s in summaries],
            }
        mm, ce = by_method.get("memomentum", {}), by_method.get("ce", {})
        both = sorted(s for s in set(mm) & set(ce)
                      if mm[s]["test_accuracy"] is not None and ce[s]["test_accuracy"] is not None)
        if both:
            row.paired = mean_std([round(mm[s]["test_accuracy"] - ce[s]["test_accuracy"], 2) for s in both])
            row.paired["seeds"] = both
        rows.append(row)
    return rows


def _varying(rows: list[Row]) -> list[str]:
    """The settings keys that differ between rows (the rest is said once, above the table)."""
    keys = sorted({k for r in rows for k in r.setting})
    return [k for k in keys if len({json.dumps(r.setting.get(k)) for r in rows}) > 1]


def _shown(ms: dict) -> str:
    if ms["mean"] is None:  # not measured: no test set, or no known true labels
        return "-"
    return f"{ms['mean']:.2f}" + (f" ± {ms['std']:.2f}" if ms["std"] is not None else "") + f" (n={ms['n']})"


def markdown(rows: list[Row], unfinished: list[Run]) -> str:
    varying = _varying(rows) or ["dataset"]
    lines = ["| " + " | ".join(varying) + " | method | test accuracy | confident set: label precision / recall "
             "| epochs run | wall time (s) |", "|" + "---|" * (len(varying) + 5)]
    for row in rows:
        name = " | ".join(str(row.setting.get(k)) for k in varying)
        for method, m in row.methods.items():
            lines.append(f"| {name} | {method} | {_shown(m['test_accuracy'])} | {_shown(m['label_precision'])} / "
                         f"{_shown(m['label_recall'])} | {', '.join(map(str, m['epochs']))} | "
                         f"{', '.join(map(str, m['wall_time_s']))} |")
        if row.paired:
            lines.append(f"| {name} | Me-Momentum - CE (paired by seed) | {_shown(row.paired)} | | | |")
    if unfinished:
        lines += ["", f"Unfinished (not averaged): {', '.join(str(r.directory) for r in unfinished)}"]
    return "\n".join(lines) + "\n"


def as_csv(rows: list[Row]) -> str:
    out = io.StringIO()
    keys = sorted({k for r in rows for k in r.setting})
    writer = csv.writer(out)
    writer.writerow([*keys, "method", "seeds", "test_accuracy_mean", "test_accuracy_std", "n",
                     "label_precision_mean", "label_recall_mean", "epochs_run", "wall_time_s"])
    for row in rows:
        setting = [json.dumps(row.setting.get(k)) if isinstance(row.setting.get(k), (list, dict))
                   else row.setting.get(k) for k in keys]
        for method, m in row.methods.items():
            t = m["test_accuracy"]
            writer.writerow([*setting, method, " ".join(map(str, m["seeds"])), t["mean"], t["std"], t["n"],
                             m["label_precision"]["mean"], m["label_recall"]["mean"],
                             " ".join(map(str, m["epochs"])), " ".join(map(str, m["wall_time_s"]))])
        if row.paired:
            p = row.paired
            writer.writerow([*setting, "memomentum-ce", " ".join(map(str, p["seeds"])), p["mean"], p["std"], p["n"],
                             "", "", "", ""])
    return out.getvalue()


def write_tables(directory: Path) -> str:
    """Write table.md, table.csv, table.json and table.html into ``directory`` from the runs
    below it (each atomically); returns the Markdown."""
    from .runner.outputs import write_json, write_text
    runs = find_runs(directory)
    rows = make_rows(runs)
    unfinished = [r for r in runs if r.summary is None]
    text = markdown(rows, unfinished)
    write_text(directory / "table.md", text)
    write_text(directory / "table.csv", as_csv(rows))
    write_json(directory / "table.json", {"rows": [{"setting": r.setting, "methods": r.methods, "paired": r.paired}
                                                   for r in rows],
                                          "unfinished": [str(r.directory) for r in unfinished]})
    write_text(directory / "table.html", as_html(directory, rows, unfinished))
    return text


# -- the HTML page -----------------------------------------------------------------------------
_METHOD_NAMES = {"memomentum": "Me-Momentum", "ce": "CE"}
_PAIRED = "Me-Momentum − CE"
_PAGE_CSS = """
th.group { text-align: center; }
.first { border-left: 2px solid #9a9a9a; }
td.gap { color: #999; text-align: center; }
"""


def _esc(value) -> str:
    """HTML-escaped text (everything shown comes from the run directories)."""
    return html.escape(str(value), quote=True)


def _method_order(rows: list[Row]) -> list[str]:
    """Me-Momentum, then CE, then any other method by name."""
    found = {m for r in rows for m in r.methods}
    first = [m for m in ("memomentum", "ce") if m in found]
    return first + sorted(found - set(first))


def _method_name(method: str) -> str:
    return _METHOD_NAMES.get(method, method)


def _mathtext_safe(text: str) -> str:
    """Text for a chart: '$' kept literal (matplotlib reads $...$ as math)."""
    return text.replace("$", r"\$")


def _tick_value(value, limit: int = 24) -> str:
    """A setting's value on the chart's axis; a long one (a path) keeps its end."""
    text = str(value)
    return _mathtext_safe(text if len(text) <= limit else "…" + text[-(limit - 1):])


def accuracy_chart(rows: list[Row], keys: list[str], methods: list[str]) -> str:
    """Test accuracy per setting (x) and method (one series each, side by side): the mean over
    seeds as a point, one standard deviation as its error bar; a data: URI of the PNG. Needs
    matplotlib (ImportError without it)."""
    import matplotlib  # noqa: F401 - first, so that a missing matplotlib is an ImportError here
    from .report import new_figure, figure_png  # the run report's figure and PNG helpers (no torch)

    n = len(rows)
    if len(keys) == 1:  # the values on the ticks, the key under them
        labels = [_tick_value(row.setting.get(keys[0])) for row in rows]
    else:  # one line per key that varies
        labels = ["\n".join(f"{_mathtext_safe(k)}={_tick_value(row.setting.get(k), max(8, 24 - len(k)))}"
                             for k in keys) for row in rows]
    rotate = n > 10
    fig = new_figure(min(18.0, max(7.0, 2.0 + 1.7 * n)), 3.8 + 0.17 * len(keys) * (1.6 if rotate else 1.0))
    ax = fig.add_subplot()
    spread = min(0.6, 0.3 * (len(methods) - 1))  # the series side by side within a setting
    for i, method in enumerate(methods):
        offset = (i / (len(methods) - 1) - 0.5) * spread if len(methods) > 1 else 0.0
        xs, means, stds = [], [], []
        for x, row in enumerate(rows):
            t = row.methods.get(method, {}).get("test_accuracy")
            if t is not None and t["mean"] is not None:  # None: no test set, nothing to plot
                xs.append(x + offset)
                means.append(t["mean"])
                stds.append(t["std"] or 0.0)
        if xs:
            ax.errorbar(xs, means, yerr=stds, fmt="o", ms=6, capsize=4, elinewidth=1.4,
                        label=_mathtext_safe(_method_name(method)))
    if not ax.lines:
        ax.text(0.5, 0.5, "no test accuracy to plot: the runs' data have no test set", ha="center", va="center",
                transform=ax.transAxes, color="#666666")
    ax.set_xticks(range(n))
    ax.set_xticklabels(labels, rotation=40 if rotate else 0, ha="right" if rotate else "center",
                       rotation_mode="anchor", fontsize=8)
    ax.set_xlim(-0.6, n - 0.4)
    ax.set_xlabel(_mathtext_safe(keys[0]) if len(keys) == 1 else "setting")
    ax.set_ylabel("test accuracy (%)")
    ax.grid(axis="y", color="#e6e6e6")
    ax.set_axisbelow(True)
    if ax.lines:
        fig.legend(loc="upper center", ncol=max(1, len(methods)), fontsize=9, frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 0.93))  # the legend above the plot, where it hides no point
    return figure_png(fig)


def _results_table(rows: list[Row], keys: list[str], methods: list[str]) -> str:
    """One row per setting; per method a column group (test accuracy, label precision / recall,
    epochs, wall time), then the paired difference."""
    paired = any(r.paired for r in rows)
    top = "".join(f'<th class="t" rowspan="2">{_esc(k)}</th>' for k in keys)
    top += "".join(f'<th class="group first" colspan="4">{_esc(_method_name(m))}</th>' for m in methods)
    if paired:
        top += (f'<th class="group first" rowspan="2">{_esc(_PAIRED)}<br>'
                f'<span class="note">paired by seed: mean ± std (n)</span></th>')
    sub = "".join('<th class="first">test accuracy (%)<br><span class="note">mean ± std (n)</span></th>'
                  "<th>confident set: label precision / recall (%)</th><th>epochs run</th><th>wall time (s)</th>"
                  for _ in methods)
    body = []
    for row in rows:
        cells = "".join(f'<td class="t">{_esc(row.setting.get(k))}</td>' for k in keys)
        for method in methods:
            m = row.methods.get(method)
            if m is None:
                cells += '<td class="gap first" colspan="4">no finished run</td>'
                continue
            seeds = ", ".join(map(str, m["seeds"]))
            cells += (f'<td class="first" title="seeds {_esc(seeds)}">{_esc(_shown(m["test_accuracy"]))}</td>'
                      f'<td>{_esc(_shown(m["label_precision"]))} / {_esc(_shown(m["label_recall"]))}</td>'
                      f'<td>{_esc(", ".join(map(str, m["epochs"])))}</td>'
                      f'<td>{_esc(", ".join(map(str, m["wall_time_s"])))}</td>')
        if paired:
            if row.paired:
                seeds = ", ".join(map(str, row.paired["seeds"]))
                cells += f'<td class="first" title="seeds {_esc(seeds)}">{_esc(_shown(row.paired))}</td>'
            else:
                cells += '<td class="gap first">no seed with both</td>'
        body.append(f"<tr>{cells}</tr>")
    return f"<table><tr>{top}</tr><tr>{sub}</tr>{''.join(body)}</table>"


def _shared_settings(rows: list[Row], varying: list[str]) -> str:
    """The settings every row has in common, said once (two per table row)."""
    shared = [(k, v) for k, v in sorted(rows[0].setting.items()) if k not in varying] if rows else []
    if not shared:
        return ""
    pairs = [f'<td class="t">{_esc(k)}</td><td class="t">{_esc(v)}</td>' for k, v in shared]
    half = (len(pairs) + 1) // 2
    body = "".join(f"<tr>{pairs[i]}{pairs[half + i] if half + i < len(pairs) else '<td></td><td></td>'}</tr>"
                   for i in range(half))
    return ('<details open><summary>settings shared by every row</summary><table>'
            '<tr><th class="t">setting</th><th class="t">value</th><th class="t">setting</th><th class="t">value</th>'
            f"</tr>{body}</table></details>")


def _unfinished_section(directory: Path, unfinished: list[Run]) -> str:
    if not unfinished:
        return ('<section id="unfinished"><h2>Unfinished runs</h2><p class="note">none: every run below this '
                "folder has finished.</p></section>")
    items = []
    for run in unfinished:
        try:
            name = run.directory.relative_to(directory)
        except ValueError:
            name = run.directory
        state = ("paused at a checkpoint: run the same command again to go on"
                 if (run.directory / files.CHECKPOINT).exists() else f"not finished (no {files.SUMMARY})")
        items.append(f'<tr><td class="t">{_esc(name)}</td><td class="t">{_esc(run.config.get("method", ""))}</td>'
                     f'<td>{_esc(run.config.get("seed", ""))}</td><td class="t">{_esc(state)}</td></tr>')
    return ('<section id="unfinished"><h2>Unfinished runs</h2>'
            f'<p>{len(unfinished)} run{"s" if len(unfinished) > 1 else ""} without results: listed here, '
            "never averaged into the table above.</p>"
            '<table><tr><th class="t">run directory</th><th class="t">method</th><th>seed</th>'
            f'<th class="t">state</th></tr>{"".join(items)}</table></section>')


def as_html(directory: Path, rows: list[Row], unfinished: list[Run]) -> str:
    """The table as one self-contained HTML page (the run report's style; the chart embedded
    as a base64 PNG; no script, stylesheet or URL). Without matplotlib the page has no chart
    and says so in one line."""
    from .report import CSS  # the report's look; memomentum.report does not import torch

    directory = Path(directory)
    varying = _varying(rows) or ["dataset"]
    methods = _method_order(rows)
    title = f"memomentum table: {directory.resolve().name or directory.resolve()}"
    n_runs = sum(len(m["seeds"]) for r in rows for m in r.methods.values())
    if rows:
        lead = (f"{len(rows)} setting{'s' if len(rows) > 1 else ''}, {n_runs} finished run{'s' if n_runs > 1 else ''} "
                f"({', '.join(_method_name(m) for m in methods)}): test accuracy and the final confident set as "
                f"mean ± std over seeds (n: finished seeds).")
        if any(r.paired for r in rows):
            lead += f" {_PAIRED}: the difference of each seed both finished, then its mean ± std."
        table = _shared_settings(rows, varying) + _results_table(rows, varying, methods)
        try:
            chart = accuracy_chart(rows, varying, methods)
            figure = (f'<img class="chart" alt="test accuracy per setting and method, mean and std over seeds" '
                      f'src="{chart}"><p class="note">points: mean over the finished seeds; error bars: one standard '
                      f"deviation (none for a single seed).</p>")
        except ImportError:
            figure = ('<p class="note">No chart: drawing it needs matplotlib, which is not installed '
                      "(pip install memomentum[plots]); the table above has every number.</p>")
    else:
        lead = "No run below this folder has finished yet: nothing to average."
        table = figure = ""
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{_esc(title)}</title><style>{CSS}{_PAGE_CSS}</style></head>\n<body>"
            f'<h1>{_esc(title)}</h1><p class="lead">{_esc(lead)}</p>'
            f'<p class="note">grid directory: {_esc(directory.resolve())}; the same numbers are in table.md, '
            f"table.csv and table.json beside this page.</p>\n"
            f'<section id="table"><h2>Results per setting</h2>{table}</section>\n'
            f'<section id="chart"><h2>Test accuracy per setting</h2>{figure}</section>\n'
            f"{_unfinished_section(directory, unfinished)}\n</body></html>\n")

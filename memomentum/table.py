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
import hashlib
import html
import io
import json
import math
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .config import NON_RESULT_KEYS
from .errors import InputError
from .runner import files

# Settings keys that never separate rows: the run's own identity, or what does not change results.
_NOT_A_SETTING = NON_RESULT_KEYS | {"seed", "method"}
TABLE_FILES = ("table.md", "table.csv", "table.json", "table.html")


@dataclass
class Run:
    """One run directory: its settings (from config.json) and, when finished, its summary."""

    directory: Path
    config: dict
    summary: dict | None

    @property
    def setting(self) -> tuple:
        """What the run shares with the runs it is averaged with. The thread count is the
        one the run used (it sets the order of float sums, so it is part of the setting).
        The data are named by the files the run read, as absolute paths where the summary
        records them (runs made before it did: the paths as typed), and by :attr:`digest`."""
        items = {k: v for k, v in self.config.items() if k not in _NOT_A_SETTING}
        summary = self.summary or {}
        for key, path in (summary.get("data_paths") or {}).items():
            if key in items:
                items[key] = path
        items["threads"] = summary.get("threads")
        return tuple(sorted((k, json.dumps(v)) for k, v in items.items()))

    @property
    def digest(self) -> str | None:
        """The digest of the run's data (:func:`data_digest`), None where the summary records none."""
        fingerprint = (self.summary or {}).get("data")
        return data_digest(fingerprint, self.config) if isinstance(fingerprint, dict) and fingerprint else None


def data_digest(fingerprint: dict, config: dict) -> str:
    """12 hex digits naming a run's data (its fingerprint, :func:`memomentum.runner.rundir.data_fingerprint`).
    The noisy labels count only where they are the data's own (labels as given, human labels):
    synthetic noise is drawn from the seed, and the seeds of a setting share their data."""
    own_labels = config.get("noise_type") == "none" or bool(config.get("human_labels_path"))
    kept = {k: v for k, v in fingerprint.items() if k != "noisy_labels" or own_labels}
    return hashlib.sha256(json.dumps(kept, sort_keys=True).encode()).hexdigest()[:12]


@dataclass
class Row:
    setting: dict
    methods: dict = field(default_factory=dict)  # method -> statistics
    paired: dict | None = None  # Me-Momentum - CE over the seeds both finished


def find_runs(directory: Path) -> list[Run]:
    """Every run directory at or below ``directory`` (one with a config.json)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise InputError(f"{directory} is a file, not a folder of run directories" if directory.exists()
                         else f"there is no folder {directory} to make a table from")
    _note_summaries_without_config(directory)
    runs = []
    for config in sorted(directory.rglob(files.CONFIG)):
        if any(part.startswith(".") for part in config.relative_to(directory).parts):
            continue  # e.g. a run set aside by --overwrite
        summary = config.with_name(files.SUMMARY)
        runs.append(Run(config.parent, _read_config(config), _read_summary(summary) if summary.is_file() else None))
    if not runs:
        raise InputError(f"{directory} holds no run directories (no config.json below it)")
    return runs


def _note_summaries_without_config(directory: Path) -> None:
    """A finished run copied without its config.json has no settings to be grouped by: said,
    not left out silently."""
    lone = [s.parent for s in sorted(directory.rglob(files.SUMMARY))
            if not any(part.startswith(".") for part in s.relative_to(directory).parts)
            and not (s.parent / files.CONFIG).is_file()]
    if lone:
        print(f"memomentum: note: left out {len(lone)} folder{'s' if len(lone) > 1 else ''} with a {files.SUMMARY} but "
              f"no {files.CONFIG} (the table reads a run's settings from it): {', '.join(map(str, lone[:5]))}"
              + (", ..." if len(lone) > 5 else ""), file=sys.stderr)


def _read(path: Path):
    try:
        text = path.read_text(encoding="utf-8")
        content = json.loads(text) if text.strip() else None
    except (OSError, ValueError) as e:  # UnicodeDecodeError is a ValueError
        raise InputError(f"cannot read {path}: {getattr(e, 'strerror', None) or e}") from None
    if not text.strip():
        raise InputError(f"{path} is empty (a write that was interrupted?): run that run again, or move its "
                         f"folder out of the way")
    return content


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _read_config(path: Path) -> dict:
    """A run's config.json: an object with the run's method (text) and seed (a whole number)."""
    config = _read(path)
    if not isinstance(config, dict):
        raise InputError(f"{path} is not a run's configuration: it holds a JSON {_json_kind(config)}, not an object")
    for key, ok, what in (("method", lambda v: isinstance(v, str), "a method's name"),
                          ("seed", lambda v: isinstance(v, int) and not isinstance(v, bool), "a whole number")):
        if not ok(config.get(key)):
            raise InputError(f"{path} is not a run's configuration: its {key} is "
                             f"{'missing' if key not in config else repr(config[key])}, not {what}")
    return config


def _read_summary(path: Path) -> dict:
    """A finished run's summary.json, with the figures the table takes of the kind it takes
    them (a number, or null where not measured)."""
    summary = _read(path)
    if not isinstance(summary, dict):
        raise InputError(f"{path} is not a run's summary: it holds a JSON {_json_kind(summary)}, not an object")
    confident = summary.get("final_confident", {})
    checks = [("test_accuracy", summary, True), ("epochs_run", summary, False), ("wall_time_s", summary, False)]
    if not isinstance(confident, dict):
        raise InputError(f"{path} is not a run's summary: its final_confident is {confident!r}, not an object")
    checks += [("label_precision", confident, True), ("label_recall", confident, True)]
    for key, where, may_be_null in checks:
        if where is summary and key not in summary:
            raise InputError(f"{path} is not a run's summary: it has no {key}")
        value = where.get(key)
        if not (_is_number(value) or (value is None and may_be_null)):
            raise InputError(f"{path} is not a run's summary: its {key} is {value!r}, not a number"
                             + (" or null" if may_be_null else ""))
    return summary


def _json_kind(value) -> str:
    return {list: "list", str: "string", bool: "true/false", type(None): "null"}.get(type(value), "number")


def mean_std(values: list[float | None]) -> dict:
    """Mean, standard deviation and count of the measured values (None: not measured, as the
    test accuracy of data without a test set, label precision without known true labels);
    mean None (shown "-", null in JSON, empty in CSV) when none is."""
    values = [v for v in values if v is not None]
    if not values:
        return {"mean": None, "std": None, "n": 0}
    return {"mean": round(statistics.fmean(values), 2),
            "std": round(statistics.stdev(values), 2) if len(values) > 1 else None, "n": len(values)}


def _groups(runs: list[Run]) -> dict[tuple, list[Run]]:
    """The finished runs by setting, the setting's ``data`` the digest of their data. Runs made
    before summaries recorded their data join the runs of their setting where those read one
    data (nothing tells them apart: a grid finished after an upgrade stays one row), and form
    a row of their own beside runs of several data."""
    by_setting: dict[tuple, dict[str | None, list[Run]]] = {}
    for run in runs:
        if run.summary is not None:
            by_setting.setdefault(run.setting, {}).setdefault(run.digest, []).append(run)
    groups: dict[tuple, list[Run]] = {}
    for setting, by_digest in by_setting.items():
        recorded = [d for d in by_digest if d is not None]
        if len(recorded) == 1 and None in by_digest:
            by_digest = {recorded[0]: by_digest[recorded[0]] + by_digest[None]}
        for digest, members in by_digest.items():
            groups[setting if digest is None else tuple(sorted(setting + (("data", json.dumps(digest)),)))] = members
    return groups


def make_rows(runs: list[Run]) -> list[Row]:
    groups = _groups(runs)
    rows = []
    for setting, members in sorted(groups.items(), key=lambda kv: str(kv[0])):
        row = Row(setting={k: json.loads(v) for k, v in setting})
        by_method = _by_method_and_seed(members)
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


def _by_method_and_seed(members: list[Run]) -> dict[str, dict[int, dict]]:
    """The summaries of one setting's runs by method and seed. Two runs of the same setting,
    method and seed are refused: the paired difference takes one run per seed, and two results
    for one seed mean that something the settings do not show differs (or one run was copied)."""
    by_method: dict[str, dict[int, dict]] = {}
    where: dict[tuple[str, int], Path] = {}
    for run in members:
        key = (run.config["method"], run.config["seed"])
        if key in where:
            raise InputError(f"{where[key]} and {run.directory} are both seed {key[1]} of {key[0]} with the same "
                             f"settings and data; the table takes one run per seed: move one of them out of the "
                             f"folder, or into a folder whose name starts with '.'")
        where[key] = run.directory
        by_method.setdefault(key[0], {})[key[1]] = run.summary
    return by_method


def _varying(rows: list[Row]) -> list[str]:
    """The settings keys that differ between rows (the rest is said once, above the table)."""
    keys = sorted({k for r in rows for k in r.setting})
    return [k for k in keys if len({json.dumps(r.setting.get(k)) for r in rows}) > 1]


def setting_text(value) -> str:
    """A setting's value as shown: "-" where a run has no such setting (a key newer than the
    run, or a path not given)."""
    return "-" if value is None else str(value)


def _shown(ms: dict) -> str:
    if ms["mean"] is None:  # not measured: no test set, or no known true labels
        return "-"
    return f"{ms['mean']:.2f}" + (f" ± {ms['std']:.2f}" if ms["std"] is not None else "") + f" (n={ms['n']})"


def _md_cell(text: str) -> str:
    """Text inside a Markdown table cell: a '|' escaped and a line break a space (a path may
    hold either; unescaped, they would split the cell or the row)."""
    return text.replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def markdown(rows: list[Row], unfinished: list[Run]) -> str:
    varying = _varying(rows) or ["dataset"]
    lines = ["| " + " | ".join(map(_md_cell, varying)) + " | method | test accuracy | confident set: label precision / recall "
             "| epochs run | wall time (s) |", "|" + "---|" * (len(varying) + 5)]
    for row in rows:
        name = " | ".join(_md_cell(setting_text(row.setting.get(k))) for k in varying)
        for method, m in row.methods.items():
            lines.append(f"| {name} | {_md_cell(method)} | {_shown(m['test_accuracy'])} | {_shown(m['label_precision'])} / "
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
                     "label_precision_mean", "label_precision_std", "label_precision_n",
                     "label_recall_mean", "label_recall_std", "label_recall_n", "epochs_run", "wall_time_s"])
    for row in rows:
        setting = [json.dumps(row.setting.get(k)) if isinstance(row.setting.get(k), (list, dict))
                   else row.setting.get(k) for k in keys]
        for method, m in row.methods.items():
            t, p, r = m["test_accuracy"], m["label_precision"], m["label_recall"]
            writer.writerow([*setting, method, " ".join(map(str, m["seeds"])), t["mean"], t["std"], t["n"],
                             p["mean"], p["std"], p["n"], r["mean"], r["std"], r["n"],
                             " ".join(map(str, m["epochs"])), " ".join(map(str, m["wall_time_s"]))])
        if row.paired:
            pair = row.paired
            writer.writerow([*setting, "memomentum-ce", " ".join(map(str, pair["seeds"])), pair["mean"], pair["std"],
                             pair["n"], *[""] * 8])
    return out.getvalue()


def write_tables(directory: Path) -> str:
    """Write table.md, table.csv, table.json and table.html into ``directory`` from the runs
    below it (each atomically); returns the Markdown."""
    from .runner.outputs import write_json, write_text
    runs = find_runs(directory)
    rows = make_rows(runs)
    unfinished = [r for r in runs if r.summary is None]
    text = markdown(rows, unfinished)
    table = {"rows": [{"setting": r.setting, "methods": r.methods, "paired": r.paired} for r in rows],
             "unfinished": [str(r.directory) for r in unfinished]}
    for name, write, content in (("table.md", write_text, text), ("table.csv", write_text, as_csv(rows)),
                                 ("table.json", write_json, table),
                                 ("table.html", write_text, as_html(directory, rows, unfinished))):
        try:
            write(directory / name, content)
        except OSError as e:
            reason = "it is a folder" if (directory / name).is_dir() else e.strerror or str(e)
            raise InputError(f"cannot write {directory / name}: {reason}") from None
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
    text = setting_text(value)
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
        cells = "".join(f'<td class="t">{_esc(setting_text(row.setting.get(k)))}</td>' for k in keys)
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
    pairs = [f'<td class="t">{_esc(k)}</td><td class="t">{_esc(setting_text(v))}</td>' for k, v in shared]
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

"""The paper's kind of table from finished runs: for each setting, every method's test
accuracy and final confident set as mean ± std over its seeds (with n), and the paired
difference Me-Momentum - CE over the seeds both finished.

A *setting* is everything in a run's ``config.json`` that changes results, except the seed and
the method, and the number of CPU threads the run used. Only finished runs (a ``summary.json``) are averaged; unfinished ones are listed.
Written as Markdown, CSV, JSON and an HTML page (:func:`write_tables`); ``memomentum table GRID_DIR``
and the end of ``memomentum grid`` call it. The page (:func:`as_html`) is self-contained like the
run report (:mod:`memomentum.entrypoints.report`, whose style it shares) and charts the test accuracies when
matplotlib (the ``plots`` extra) is installed; the other three files never need matplotlib.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import math
import statistics
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..base.errors import InputError
from ..config import NON_RESULT_KEYS, RunConfig
from ..runner import files

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
        one the run used (it sets the order of float sums, so it is part of the setting).
        The data are named by the files the run read, as absolute paths where the summary
        records them (runs made before it did: the paths as typed), and by :attr:`digest`."""
        # a key a run's version did not write yet (noise_seed) counts as its default
        config = {**_DEFAULTS, **self.config}
        items = {k: v for k, v in config.items() if k not in _NOT_A_SETTING}
        summary = self.summary or {}
        for key, path in (summary.get("data_paths") or {}).items():
            if key in items:
                items[key] = path
        items["threads"] = summary.get("threads")
        return tuple(sorted((k, json.dumps(v)) for k, v in items.items()))

    @property
    def digest(self) -> str | None:
        """The digest of the run's data (:func:`data_digest`), None where the summary records none."""
        fingerprint = (self.summary or {}).get("data_fingerprint")
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
        raise InputError(
            f"{directory} is a file, not a folder of run directories"
            if directory.exists()
            else f"there is no folder {directory} to make a table from"
        )
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
    lone = [
        s.parent
        for s in sorted(directory.rglob(files.SUMMARY))
        if not any(part.startswith(".") for part in s.relative_to(directory).parts)
        and not (s.parent / files.CONFIG).is_file()
    ]
    if lone:
        print(
            f"memomentum: note: left out {len(lone)} folder{'s' if len(lone) > 1 else ''} with a {files.SUMMARY} but "
            f"no {files.CONFIG} (the table reads a run's settings from it): {', '.join(map(str, lone[:5]))}"
            + (", ..." if len(lone) > 5 else ""),
            file=sys.stderr,
        )


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _read_config(path: Path) -> dict:
    """A run's config.json: an object with the run's method (text) and seed (a whole number)."""
    config = files.read_json(path)
    if not isinstance(config, dict):
        raise InputError(f"{path} is not a run's configuration: it holds a JSON {_json_kind(config)}, not an object")
    for key, ok, what in (
        ("method", lambda v: isinstance(v, str), "a method's name"),
        ("seed", lambda v: isinstance(v, int) and not isinstance(v, bool), "a whole number"),
    ):
        if not ok(config.get(key)):
            raise InputError(
                f"{path} is not a run's configuration: its {key} is "
                f"{'missing' if key not in config else repr(config[key])}, not {what}"
            )
    return config


def _read_summary(path: Path) -> dict:
    """A finished run's summary.json, with the figures the table takes of the kind it takes
    them (a number, or null where not measured)."""
    summary = files.read_json(path)
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
            raise InputError(
                f"{path} is not a run's summary: its {key} is {value!r}, not a number"
                + (" or null" if may_be_null else "")
            )
    return summary


def _json_kind(value) -> str:
    return {list: "list", str: "string", bool: "true/false", type(None): "null"}.get(type(value), "number")


def mean_std(values: list[float | None]) -> dict:
    """Mean, standard deviation and count of the measured values (None: not measured, as the
    test accuracy of data without a test set, label precision without known true labels);
    mean None (shown "-", null in JSON, empty in CSV) when none is."""
    measured = [v for v in values if v is not None]
    if not measured:
        return {"mean": None, "std": None, "n": 0}
    return {
        "mean": round(statistics.fmean(measured), 2),
        "std": round(statistics.stdev(measured), 2) if len(measured) > 1 else None,
        "n": len(measured),
    }


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
        both = sorted(
            s for s in set(mm) & set(ce) if mm[s]["test_accuracy"] is not None and ce[s]["test_accuracy"] is not None
        )
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
            raise InputError(
                f"{where[key]} and {run.directory} are both seed {key[1]} of {key[0]} with the same "
                f"settings and data; the table takes one run per seed: move one of them out of the "
                f"folder, or into a folder whose name starts with '.'"
            )
        where[key] = run.directory
        if run.summary is not None:  # only runs with a summary are grouped
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
    lines = [
        "| "
        + " | ".join(map(_md_cell, varying))
        + " | method | test accuracy | confident set: label precision / recall "
        "| epochs run | wall time (s) |",
        "|" + "---|" * (len(varying) + 5),
    ]
    for row in rows:
        name = " | ".join(_md_cell(setting_text(row.setting.get(k))) for k in varying)
        for method, m in row.methods.items():
            lines.append(
                f"| {name} | {_md_cell(method)} | {_shown(m['test_accuracy'])} | {_shown(m['label_precision'])} / "
                f"{_shown(m['label_recall'])} | {', '.join(map(str, m['epochs']))} | "
                f"{', '.join(map(str, m['wall_time_s']))} |"
            )
        if row.paired:
            lines.append(f"| {name} | Me-Momentum - CE (paired by seed) | {_shown(row.paired)} | | | |")
    if unfinished:
        lines += ["", f"Unfinished (not averaged): {', '.join(str(r.directory) for r in unfinished)}"]
    return "\n".join(lines) + "\n"


def as_csv(rows: list[Row]) -> str:
    out = io.StringIO()
    keys = sorted({k for r in rows for k in r.setting})
    writer = csv.writer(out)
    writer.writerow(
        [
            *keys,
            "method",
            "seeds",
            "test_accuracy_mean",
            "test_accuracy_std",
            "n",
            "label_precision_mean",
            "label_precision_std",
            "label_precision_n",
            "label_recall_mean",
            "label_recall_std",
            "label_recall_n",
            "epochs_run",
            "wall_time_s",
        ]
    )
    for row in rows:
        setting = [
            json.dumps(row.setting.get(k)) if isinstance(row.setting.get(k), (list, dict)) else row.setting.get(k)
            for k in keys
        ]
        for method, m in row.methods.items():
            t, p, r = m["test_accuracy"], m["label_precision"], m["label_recall"]
            writer.writerow(
                [
                    *setting,
                    method,
                    " ".join(map(str, m["seeds"])),
                    t["mean"],
                    t["std"],
                    t["n"],
                    p["mean"],
                    p["std"],
                    p["n"],
                    r["mean"],
                    r["std"],
                    r["n"],
                    " ".join(map(str, m["epochs"])),
                    " ".join(map(str, m["wall_time_s"])),
                ]
            )
        if row.paired:
            pair = row.paired
            writer.writerow(
                [
                    *setting,
                    "memomentum-ce",
                    " ".join(map(str, pair["seeds"])),
                    pair["mean"],
                    pair["std"],
                    pair["n"],
                    *[""] * 8,
                ]
            )
    return out.getvalue()


def write_tables(directory: Path) -> str:
    """Write table.md, table.csv, table.json and table.html into ``directory`` from the runs
    below it (each atomically); returns the Markdown."""
    from ..runner.outputs import write_json, write_text

    runs = find_runs(directory)
    rows = make_rows(runs)
    unfinished = [r for r in runs if r.summary is None]
    text = markdown(rows, unfinished)
    table = {
        "rows": [{"setting": r.setting, "methods": r.methods, "paired": r.paired} for r in rows],
        "unfinished": [str(r.directory) for r in unfinished],
    }
    writes: tuple[tuple[str, Callable[[Path, Any], None], Any], ...] = (
        ("table.md", write_text, text),
        ("table.csv", write_text, as_csv(rows)),
        ("table.json", write_json, table),
        ("table.html", write_text, as_html(directory, rows, unfinished)),
    )
    for name, write, content in writes:
        try:
            write(directory / name, content)
        except OSError as e:
            reason = "it is a folder" if (directory / name).is_dir() else e.strerror or str(e)
            raise InputError(f"cannot write {directory / name}: {reason}") from None
    return text


# -- the HTML page -----------------------------------------------------------------------------
_METHOD_NAMES = {"memomentum": "Me-Momentum", "ce": "CE"}
_PAIRED = "Me-Momentum − CE"


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
    return _mathtext_safe(text if len(text) <= limit else "…" + text[-(limit - 1) :])


def accuracy_chart(rows: list[Row], keys: list[str], methods: list[str]) -> str:
    """Test accuracy per setting (x) and method (one series each, side by side): the mean over
    seeds as a point, one standard deviation as its error bar; a data: URI of the PNG. Needs
    matplotlib (ImportError without it)."""
    import matplotlib  # noqa: F401 - first, so that a missing matplotlib is an ImportError here

    from .report.figures import figure_png, new_figure  # the run report's figure and PNG helpers (no torch)

    n = len(rows)
    if len(keys) == 1:  # the values on the ticks, the key under them
        labels = [_tick_value(row.setting.get(keys[0])) for row in rows]
    else:  # one line per key that varies
        labels = [
            "\n".join(f"{_mathtext_safe(k)}={_tick_value(row.setting.get(k), max(8, 24 - len(k)))}" for k in keys)
            for row in rows
        ]
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
            ax.errorbar(
                xs,
                means,
                yerr=stds,
                fmt="o",
                ms=6,
                capsize=4,
                elinewidth=1.4,
                label=_mathtext_safe(_method_name(method)),
            )
    if not ax.lines:
        ax.text(
            0.5,
            0.5,
            "no test accuracy to plot: the runs' data have no test set",
            ha="center",
            va="center",
            transform=ax.transAxes,
            color="#666666",
        )
    ax.set_xticks(range(n))
    ax.set_xticklabels(
        labels, rotation=40 if rotate else 0, ha="right" if rotate else "center", rotation_mode="anchor", fontsize=8
    )
    ax.set_xlim(-0.6, n - 0.4)
    ax.set_xlabel(_mathtext_safe(keys[0]) if len(keys) == 1 else "setting")
    ax.set_ylabel("test accuracy (%)")
    ax.grid(axis="y", color="#e6e6e6")
    ax.set_axisbelow(True)
    if ax.lines:
        fig.legend(loc="upper center", ncol=max(1, len(methods)), fontsize=9, frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 0.93))  # the legend above the plot, where it hides no point
    return figure_png(fig)


def _results_rows(rows: list[Row], keys: list[str], methods: list[str]) -> list[dict]:
    """What each row of the page's table shows: the values of the settings that vary, per
    method its statistics as text (None: no finished run), then the paired difference."""

    def shown(m: dict | None) -> dict | None:
        if m is None:
            return None
        return {
            "seeds": ", ".join(map(str, m["seeds"])),
            "test_accuracy": _shown(m["test_accuracy"]),
            "label_precision": _shown(m["label_precision"]),
            "label_recall": _shown(m["label_recall"]),
            "epochs": ", ".join(map(str, m["epochs"])),
            "wall_time_s": ", ".join(map(str, m["wall_time_s"])),
        }

    return [
        {
            "setting": [setting_text(row.setting.get(k)) for k in keys],
            "methods": [shown(row.methods.get(m)) for m in methods],
            "paired": row.paired and {"seeds": ", ".join(map(str, row.paired["seeds"])), "shown": _shown(row.paired)},
        }
        for row in rows
    ]


def _shared_settings(rows: list[Row], varying: list[str]) -> list[list[tuple]]:
    """The settings every row has in common, said once: two (key, value) pairs per table row."""
    pairs = [(k, setting_text(v)) for k, v in sorted(rows[0].setting.items()) if k not in varying] if rows else []
    half = (len(pairs) + 1) // 2
    return [pairs[i : i + 1] + pairs[half + i : half + i + 1] for i in range(half)]


def _unfinished_runs(directory: Path, unfinished: list[Run]) -> list[dict]:
    listed = []
    for run in unfinished:
        try:
            name = run.directory.relative_to(directory)
        except ValueError:
            name = run.directory
        state = (
            "paused at a checkpoint: run the same command again to go on"
            if (run.directory / files.CHECKPOINT).exists()
            else f"not finished (no {files.SUMMARY})"
        )
        listed.append(
            {"name": name, "method": run.config.get("method", ""), "seed": run.config.get("seed", ""), "state": state}
        )
    return listed


def as_html(directory: Path, rows: list[Row], unfinished: list[Run]) -> str:
    """The table as one self-contained HTML page (templates/table.html, in the run report's
    style; the chart embedded as a base64 PNG; no script, stylesheet or URL). Without
    matplotlib the page has no chart and says so in one line."""
    from .report.page import templates  # the report's templates; memomentum.entrypoints.report does not import torch

    directory = Path(directory)
    varying = _varying(rows) or ["dataset"]
    methods = _method_order(rows)
    n_runs = sum(len(m["seeds"]) for r in rows for m in r.methods.values())
    paired = any(r.paired for r in rows)
    chart = None
    if rows:
        lead = (
            f"{len(rows)} setting{'s' if len(rows) > 1 else ''}, {n_runs} finished run{'s' if n_runs > 1 else ''} "
            f"({', '.join(_method_name(m) for m in methods)}): test accuracy and the final confident set as "
            f"mean ± std over seeds (n: finished seeds)."
        )
        if paired:
            lead += f" {_PAIRED}: the difference of each seed both finished, then its mean ± std."
        try:
            chart = accuracy_chart(rows, varying, methods)
        except ImportError:
            chart = None
    else:
        lead = "No run below this folder has finished yet: nothing to average."
    return (
        templates()
        .get_template("table.html")
        .render(
            title=f"memomentum table: {directory.resolve().name or directory.resolve()}",
            lead=lead,
            directory=directory.resolve(),
            keys=varying,
            methods=[{"name": _method_name(m)} for m in methods],
            paired=paired,
            paired_name=_PAIRED,
            rows=_results_rows(rows, varying, methods),
            shared=_shared_settings(rows, varying),
            chart=chart,
            unfinished=_unfinished_runs(directory, unfinished),
        )
    )

"""The paper's kind of table from finished runs: for each setting, every method's test
accuracy and final confident set as mean ± std over its seeds (with n), and the paired
difference Me-Momentum - CE over the seeds both finished.

A *setting* is everything in a run's ``config.json`` that changes results, except the seed and
the method, and the number of CPU threads the run used. Only finished runs (a ``summary.json``) are averaged; unfinished ones are listed.
Written as Markdown, CSV and JSON (:func:`write_tables`); ``memomentum table GRID_DIR`` and the
end of ``memomentum grid`` call it.
"""
from __future__ import annotations

import csv
import io
import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from .config import NON_RESULT_KEYS
from .errors import InputError

# Settings keys that never separate rows: the run's own identity, or what does not change results.
_NOT_A_SETTING = NON_RESULT_KEYS | {"seed", "method"}
TABLE_FILES = ("table.md", "table.csv", "table.json")


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
        items = {k: v for k, v in self.config.items() if k not in _NOT_A_SETTING}
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
    for config in sorted(directory.rglob("config.json")):
        if any(part.startswith(".") for part in config.relative_to(directory).parts):
            continue  # e.g. a run set aside by --overwrite
        summary = config.with_name("summary.json")
        runs.append(Run(config.parent, _read(config), _read(summary) if summary.is_file() else None))
    if not runs:
        raise InputError(f"{directory} holds no run directories (no config.json below it)")
    return runs


def _read(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise InputError(f"cannot read {path}: {e}") from None


def mean_std(values: list[float]) -> dict:
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
                "label_precision": mean_std([s["final_confident"]["label_precision"] for s in summaries
                                             if "label_precision" in s.get("final_confident", {})] or [float("nan")]),
                "label_recall": mean_std([s["final_confident"]["label_recall"] for s in summaries
                                          if "label_recall" in s.get("final_confident", {})] or [float("nan")]),
                "epochs": [s["epochs_run"] for s in summaries],
                "wall_time_s": [round(s["wall_time_s"], 1) for s in summaries],
            }
        mm, ce = by_method.get("memomentum", {}), by_method.get("ce", {})
        both = sorted(set(mm) & set(ce))
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
    if ms["mean"] != ms["mean"]:  # nan: not measured (no known true labels)
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
    """Write table.md, table.csv and table.json into ``directory`` from the runs below it;
    returns the Markdown."""
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
    return text

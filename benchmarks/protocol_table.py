"""Gather finished runs' summary.json files into mean ± std per setting and method, with the
paired difference Me-Momentum - CE per seed. Prints JSON (and a Markdown table with --markdown).

    python benchmarks/protocol_table.py benchmarks/results/fmnist-protocol --markdown
    python benchmarks/protocol_table.py runs/* --collect benchmarks/results/fmnist-protocol

A setting is everything that is not the seed or the method (dataset, noise, schedule, threads);
only finished runs (a summary.json) are counted, and each count n is given beside its mean.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path

SCHEDULE = ("model", "epochs", "max_outer_loop", "max_inner_loop")


def read_summaries(paths: list[str]) -> list[dict]:
    """Every summary found: a run directory's summary.json (its schedule read from the
    config.json beside it), or a copy that carries its schedule (see --collect)."""
    files: list[Path] = []
    for p in map(Path, paths):
        files += sorted(p.rglob("*summary.json")) if p.is_dir() else [p]
    out = []
    for f in files:
        s = json.loads(f.read_text())
        config = f.with_name("config.json")
        if "schedule" not in s and f.name == "summary.json" and config.is_file():
            c = json.loads(config.read_text())
            s["schedule"] = {k: c[k] for k in SCHEDULE}
        out.append(s)
    return out


def collect(run_dirs: list[str], into: Path) -> None:
    """Copy finished runs' summaries, each with its schedule, as ``<run name>.summary.json``."""
    into.mkdir(parents=True, exist_ok=True)
    for d in map(Path, run_dirs):
        if (d / "summary.json").is_file():
            (s,) = read_summaries([str(d / "summary.json")])
            (into / f"{d.name}.summary.json").write_text(json.dumps(s, indent=1) + "\n")


def setting_of(s: dict) -> tuple:
    schedule = s.get("schedule") or {}
    return (s["dataset"], s["noise_type"], s.get("noise_rate"),
            *(schedule.get(k, s.get(k)) for k in SCHEDULE), s.get("threads"))


def _mean_std(values: list[float]) -> dict:
    return {"mean": round(statistics.fmean(values), 2), "std": round(statistics.stdev(values), 2) if len(values) > 1
            else None, "n": len(values), "values": values}


def table(summaries: list[dict]) -> list[dict]:
    cells: dict[tuple, dict[str, dict[int, dict]]] = defaultdict(lambda: defaultdict(dict))
    for s in summaries:
        cells[setting_of(s)][s["method"]][s["seed"]] = s
    rows = []
    for setting, methods in sorted(cells.items(), key=lambda kv: str(kv[0])):
        row = {"setting": dict(zip(("dataset", "noise_type", "noise_rate", *SCHEDULE, "threads"), setting)),
               "methods": {}}
        for method, by_seed in sorted(methods.items()):
            runs = [by_seed[k] for k in sorted(by_seed)]
            row["methods"][method] = {
                "seeds": sorted(by_seed),
                "test_accuracy": _mean_std([r["test_accuracy"] for r in runs]),
                "label_precision": _mean_std([r["final_confident"]["label_precision"] for r in runs]),
                "label_recall": _mean_std([r["final_confident"]["label_recall"] for r in runs]),
                "epochs": [r["epochs_run"] for r in runs],
                "wall_time_s": [round(r["wall_time_s"], 1) for r in runs],
            }
        mm, ce = methods.get("memomentum", {}), methods.get("ce", {})
        paired = sorted(set(mm) & set(ce))
        if paired:
            row["memomentum_minus_ce"] = _mean_std([round(mm[k]["test_accuracy"] - ce[k]["test_accuracy"], 2)
                                                    for k in paired]) | {"seeds": paired}
        rows.append(row)
    return rows


def _fmt(ms: dict | None) -> str:
    if not ms:
        return "-"
    return f"{ms['mean']:.2f}" + (f" ± {ms['std']:.2f}" if ms["std"] is not None else "") + f" (n={ms['n']})"


def markdown(rows: list[dict]) -> str:
    out = ["| setting | method | test accuracy | confident set: label precision / recall | epochs | wall time (s) |",
           "|---|---|---|---|---|---|"]
    for row in rows:
        st = row["setting"]
        name = (f"{st['dataset']} {st['noise_type']} {st['noise_rate']}, {st['model']}, epochs {st['epochs']}, "
                f"outer {st['max_outer_loop']}, inner {st['max_inner_loop']}, {st['threads']} thread(s)")
        for method, m in row["methods"].items():
            out.append(f"| {name} | {method} | {_fmt(m['test_accuracy'])} | {_fmt(m['label_precision'])} / "
                       f"{_fmt(m['label_recall'])} | {', '.join(map(str, m['epochs']))} | "
                       f"{', '.join(map(str, m['wall_time_s']))} |")
        if "memomentum_minus_ce" in row:
            out.append(f"| {name} | Me-Momentum - CE, paired by seed | {_fmt(row['memomentum_minus_ce'])} | | | |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("paths", nargs="+", help="summary.json files or folders holding them")
    p.add_argument("--markdown", action="store_true", help="print a Markdown table after the JSON")
    p.add_argument("--collect", metavar="DIR", help="copy the given run directories' summaries (with their "
                   "schedules) into DIR instead of printing a table")
    args = p.parse_args(argv)
    if args.collect:
        collect(args.paths, Path(args.collect))
        return 0
    rows = table(read_summaries(args.paths))
    print(json.dumps(rows, indent=1))
    if args.markdown:
        print(markdown(rows), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What each section of the report shows, computed from the run's files and rendered
with the section's template (:mod:`.page`), and the headline above them.
"""

from __future__ import annotations

import json
import math

import numpy as np

from .figures import confusion_chart, difficulty_chart, image_png, progress_chart, rounds_chart
from .label_errors import likely_label_errors, load_images
from .page import class_name, count_text, percent_text, section
from .reading import ExamplesTable, RunFiles

MISSING_DIFFICULTY = "not tracked (run with --track-difficulty)"


def headline(run: RunFiles) -> str:
    """One sentence: what ran and what came out."""
    s = run.summary
    noise = s.get("noise_type")
    if noise == "none":
        noise_text = "labels as given"
    else:
        rate = "" if s.get("noise_rate") is None else f" {s['noise_rate']:g}"
        noise_text = f"{noise} noise{rate} (realised {percent_text(s.get('realised_noise_rate'))})"
    fc = s.get("final_confident") or {}
    text = (
        f"{s.get('method', 'memomentum')} on {s.get('dataset')} ({s.get('model')}), {noise_text}, "
        f"seed {s.get('seed')}: test accuracy {percent_text(s.get('test_accuracy'))}"
    )
    if "n_confident" in fc:
        text += f"; {fc['n_confident']:,} of {s.get('n_train', 0):,} training examples kept as confident"
        if "label_precision" in fc:
            text += (
                f" (label precision {percent_text(fc['label_precision'])}, recall {percent_text(fc['label_recall'])})"
            )
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
        ["test accuracy", percent_text(s.get("test_accuracy"))],
        [f"best validation accuracy ({val_kind} labels)", percent_text(s.get("best_val_accuracy")) + where],
    ]
    if "assembled_test_accuracy" in s:
        rows.append(["test accuracy of the per-class assembled model", percent_text(s["assembled_test_accuracy"])])
    rows.append(["realised label noise", percent_text(s.get("realised_noise_rate"))])
    if "noisy_label_precision" in s:
        rows.append(["correct given labels (training part)", percent_text(s["noisy_label_precision"])])
    if "review" in s:  # the data were exported by memomentum review
        r = s["review"]
        rows.append(["labels corrected / excluded by review", f"{r['corrected']:,} / {r['excluded']:,}"])
    if "n_confident" in fc:
        rows.append(["confident examples", f"{fc['n_confident']:,} of {s.get('n_train', 0):,}"])
    if "label_precision" in fc:
        rows.append(["label precision of the confident set", percent_text(fc["label_precision"])])
        rows.append(["label recall of the confident set", percent_text(fc["label_recall"])])
    rows += [
        ["training / validation examples", f"{s.get('n_train', 0):,} / {s.get('n_val', 0):,}"],
        ["epochs", count_text(s.get("epochs_run", ""))],
        [
            "wall time",
            f"{s.get('wall_time_s', 0):,.1f} s on {s.get('device', '?')}"
            + (f", {s['threads']} thread{'s' if s['threads'] != 1 else ''}" if "threads" in s else ""),
        ],
    ]
    return section(
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
        return section("progress", note="no history.csv in this run directory")
    chart = progress_chart(run.history, run.summary.get("best_at"))
    phases = {(int(h["outer"]), int(h["inner"])) for h in run.history}
    return section("progress", "report/progress.html", chart=chart, epochs=len(run.history), phases=len(phases))


def rounds_section(run: RunFiles) -> str:
    rounds = run.summary.get("rounds") or []
    if not rounds:
        return section(
            "rounds", note="this run had no inner rounds (the cross-entropy baseline, or a single phase per outer loop)"
        )
    measured = any("label_precision" in r for r in rounds)
    header = ["round", "outer loop", "confident examples"] + (["label precision", "label recall"] if measured else [])
    header.append("best validation accuracy")
    rows = []
    for r in rounds:
        row = [f"{r.get('outer')}.{r.get('inner')}", count_text(r.get("outer")), count_text(r.get("n_confident", ""))]
        if measured:
            row += [percent_text(r.get("label_precision")), percent_text(r.get("label_recall"))]
        rows.append(row + [percent_text(r.get("best_val_accuracy"))])
    return section("rounds", "report/rounds.html", header=header, rows=rows, chart=rounds_chart(rounds))


def difficulty_section(run: RunFiles) -> str:
    d = run.summary.get("difficulty")
    if not isinstance(d, dict) or not d.get("rounds"):
        return section("difficulty", note=MISSING_DIFFICULTY)
    counts = list(d.get("quintile_counts") or [])
    width = max([len(r.get("recall", [])) for r in d["rounds"]] + [len(counts)])
    quintiles = [{"count": counts[q] if q < len(counts) else None} for q in range(width)]
    rows = [(r.get("round"), [percent_text(v) for v in r.get("recall", [])]) for r in d["rounds"]]
    settled = d.get("quintile_settled_epochs")
    settled = [_epoch_range(e) for e in settled] if isinstance(settled, list) and len(settled) == width else None
    return section(
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
        return section("classes", note="no examples.csv in this run directory")
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
                "name": class_name(run, c),
                "given": n,
                "confident": k,
                "share": percent_text(share),
                "bar_px": 0 if math.isnan(share) else round(share * 0.8),
                "precision": percent_text(precision),
            }
        )
    return section("classes", "report/classes.html", classes=classes, with_precision=v.true is not None)


def confusion_matrix(v: ExamplesTable) -> np.ndarray:
    """Counts of (given label, predicted label) over the examples of T."""
    k = v.num_classes
    ok = (v.given >= 0) & (v.predicted >= 0)
    return np.bincount(v.given[ok] * k + v.predicted[ok], minlength=k * k).reshape(k, k)


def confusion_section(run: RunFiles, v: ExamplesTable | None) -> str:
    if v is None:
        return section("confusion", note="no examples.csv in this run directory")
    m = confusion_matrix(v)
    shown = {"agree": int(np.trace(m)), "total": int(m.sum())}
    if v.num_classes > 30:
        return section("confusion", "report/confusion.html", chart=confusion_chart(m), **shown)
    share = m / np.maximum(m.sum(axis=1, keepdims=True), 1)  # each cell's share of its row shades it
    matrix = [
        [{"count": int(m[g, p]), "alpha": float(share[g, p]), "diag": g == p} for p in range(m.shape[1])]
        for g in range(m.shape[0])
    ]
    return section(
        "confusion",
        "report/confusion.html",
        chart=None,
        matrix=matrix,
        names=[class_name(run, c) for c in range(v.num_classes)],
        **shown,
    )


def label_errors_section(run: RunFiles, v: ExamplesTable | None, *, dataset, limit: int) -> str:
    if v is None:
        return section("label-errors", note="no examples.csv in this run directory")
    rows, how = likely_label_errors(v, limit)
    if rows.size == 0:
        return section("label-errors", note="no example is suspected of a wrong label")
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
                class_name(run, v.given[r]),
                class_name(run, v.predicted[r]),
            ]
            row += [f"{scores[r]:.3f}"] if scores is not None else []
            row += [class_name(run, v.true[r])] if v.true is not None else []
            table.append(row)
        return section(
            "label-errors", "report/label_errors.html", figures=None, why=why, header=header, rows=table, **shown
        )
    figures = [_label_error_figure(run, v, r, image, score_name, scores) for r, image in zip(rows, images)]
    return section("label-errors", "report/label_errors.html", figures=figures, **shown)


def _label_error_figure(run: RunFiles, v: ExamplesTable, r: int, image, score_name: str, scores) -> dict:
    """What the grid shows of one example: its image, its labels and the score it was ranked by."""
    detail = f"#{v.index[r]}" + (f", {score_name} {scores[r]:.3f}" if scores is not None else "")
    if v.quality is not None and v.confidence is not None:
        detail += f", predicted with {v.confidence[r]:.2f}"
    true = class_name(run, v.true[r]) if v.true is not None and v.true[r] >= 0 else None
    return {
        "index": v.index[r],
        "src": image_png(image),
        "given": class_name(run, v.given[r]),
        "predicted": class_name(run, v.predicted[r]),
        "true": true,
        "detail": detail,
    }

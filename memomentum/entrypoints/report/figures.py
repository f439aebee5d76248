"""The report's charts and images (matplotlib, no pyplot), each as a PNG data URI that
the page embeds.
"""

from __future__ import annotations

import base64
import io
import math

import numpy as np

from ...base.errors import InputError

THUMB_SIDE = 128  # larger images are shown down-sampled to about this side


def require_matplotlib() -> None:
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
    step = max(1, max(a.shape[:2]) // THUMB_SIDE)
    a = a[::step, ::step]
    buf = io.BytesIO()
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim == 2:
        imsave(buf, a, format="png", cmap="gray", vmin=0, vmax=max(float(a.max()), 1.0))
    else:
        imsave(buf, np.ascontiguousarray(a[:, :, :3]), format="png")
    return _data_uri(buf.getvalue())

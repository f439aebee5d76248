"""The progress bar of a run: one tqdm bar counting epochs, its status line saying where
the run stands in the protocol."""
from __future__ import annotations

import sys

from ..config import RunConfig, resolved


class ProgressBar:
    """One tqdm bar counting epochs; its status line shows where the run is and how many
    training images per second it gets through, so that a slow machine shows at once."""

    def __init__(self, cfg: RunConfig):
        from tqdm.auto import tqdm
        self.cfg = cfg
        self.bar = tqdm(desc=f"{cfg.method} {cfg.dataset} ({self._bounds(cfg)})", unit="epoch", file=sys.stderr,
                        dynamic_ncols=True)

    @staticmethod
    def _bounds(cfg: RunConfig) -> str:
        """How far the protocol can go: a run's length is only known at its end (early
        stopping, rounds that stop without gain), so the bar names the bounds."""
        if cfg.method == "ce":
            return f"one phase of at most {_count(resolved(cfg.epochs), 'epoch')}"
        inner = resolved(cfg.max_inner_loop)
        rounds = inner - 1 if cfg.mode == "benchmark" else inner
        return (f"at most {_count(resolved(cfg.max_outer_loop), 'outer loop')} of a first phase and "
                f"{_count(rounds, 'round')}, {_count(resolved(cfg.epochs), 'epoch')} each")

    @staticmethod
    def _where(d: dict) -> str:
        return f"outer {d['outer']} " + ("first phase" if d["inner"] == 0 else f"round {d['inner']}")

    def steps_done(self, where: dict, done: int, total: int, images_per_s: float) -> None:
        self.bar.set_postfix_str(f"{self._where(where)} | epoch {where['epoch']}/{self.cfg.epochs} "
                                 f"{100 * done / max(total, 1):.0f}% | {images_per_s:,.0f} img/s")

    def epoch_done(self, row: dict, images_per_s: float, stopping: str | None = None) -> None:
        """After an epoch: where it was, its training set and validation accuracy, and where
        early stopping stands (``stopping``, after a first-phase epoch)."""
        self.bar.set_postfix_str(f"{self._where(row)} | train {row['n_train']} | val {row['val_accuracy']:.2f}% | "
                                 + (f"{stopping} | " if stopping else "") + f"{images_per_s:,.0f} img/s")
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()


def _count(n: int, thing: str) -> str:
    return f"{n} {thing}{'' if n == 1 else 's'}"


def progress_bar(cfg: RunConfig) -> ProgressBar | None:
    return ProgressBar(cfg) if cfg.progress else None

"""Hard examples, measured: which correctly labelled examples does the confident set keep?

The paper's claim is that Me-Momentum's rounds bring *hard* correctly labelled examples
into the confident set, where one extraction keeps mostly easy ones. With known true labels
(benchmark noise) and ``--track-difficulty``, this module measures it.

Difficulty of a training example: the first epoch of the first phase (outer loop 1, trained
on the whole training part T) from which the network keeps predicting the example's *true*
label at every epoch end until that phase ends. An example the network never settles on is
the hardest. Ties (many examples are learnt in the same epoch) are broken by the number of
first-phase epochs that ended with the true label predicted (fewer = harder), then by the
example's position. The correctly labelled examples of T (given label = true label) are
ranked by it and cut into five equal quintiles, Q1 easiest to Q5 hardest; per round, the
recall of the confident set in each quintile is the share of that quintile's examples the
set holds.

Cost: one prediction pass over T (under ``inference_mode``, in the engine's prediction
chunks, clean inputs) at the end of every first-phase epoch of outer loop 1, the same pass a
round's extraction makes: a fraction of an epoch's training time each. Counted in
``summary.json``'s ``time_s`` as ``difficulty``.
"""

from __future__ import annotations

import time

import numpy as np
import torch

QUINTILES = 5
DEFINITION = (
    "correctly labelled training examples (given label = true label) ranked by the first epoch of the "
    "first phase of outer loop 1 from which the network predicts the true label at every epoch end to "
    "the end of that phase (never = hardest; ties: fewer epochs with the true label predicted = harder, "
    "then by position), cut into 5 equal quintiles, Q1 easiest to Q5 hardest; recall = percentage of a "
    "quintile's examples in the round's confident set"
)


class DifficultyTracker:
    """The per-epoch hook (``Procedure(on_epoch_end=...)``) that records, for each example
    of T, when the first-phase network settles on its true label.

    Args:
        true_labels: the true labels of T on the engine's device (-1 where unknown).
    """

    def __init__(self, true_labels: torch.Tensor):
        n, device = true_labels.numel(), true_labels.device
        self.true = true_labels
        # first epoch of the current run of epochs that ended with the true label predicted (0: not now)
        self.settled_since = torch.zeros(n, dtype=torch.int32, device=device)
        self.epochs_correct = torch.zeros(n, dtype=torch.int32, device=device)
        self.epochs = 0

    def __call__(self, proc) -> None:
        """Called after every epoch, before the procedure decides what comes next: records
        the first-phase epochs of outer loop 1 only."""
        s = proc.state
        if s.stage != "first" or s.outer != 0 or s.epoch <= self.epochs:
            return  # not the tracked phase, or an epoch already counted
        t0 = time.perf_counter()
        pred, _ = proc.engine.predict(proc.model, proc.forward, proc.problem.train)
        self.update(pred == self.true, epoch=s.epoch)
        s.timings["difficulty"] = s.timings.get("difficulty", 0.0) + time.perf_counter() - t0

    def update(self, correct: torch.Tensor, *, epoch: int) -> None:
        """Record one epoch end (1-based ``epoch``): ``correct`` says where the network
        predicted the true label."""
        correct = correct.to(self.settled_since.device)
        self.settled_since = torch.where(
            correct,
            torch.where(self.settled_since > 0, self.settled_since, torch.full_like(self.settled_since, epoch)),
            torch.zeros_like(self.settled_since),
        )
        self.epochs_correct += correct.to(torch.int32)
        self.epochs = epoch

    def state_dict(self) -> dict:
        return {
            "settled_since": self.settled_since.cpu(),
            "epochs_correct": self.epochs_correct.cpu(),
            "epochs": self.epochs,
        }

    def load_state_dict(self, d: dict | None) -> None:
        if d is not None:
            device = self.settled_since.device
            self.settled_since = d["settled_since"].to(device)
            self.epochs_correct = d["epochs_correct"].to(device)
            self.epochs = d["epochs"]

    def report(self, *, given: np.ndarray, round_sets: dict[str, np.ndarray]) -> dict:
        """``summary.json``'s ``difficulty``: see :func:`difficulty_report`."""
        true = self.true.cpu().numpy()
        return difficulty_report(
            settled_since=self.settled_since.cpu().numpy(),
            epochs_correct=self.epochs_correct.cpu().numpy(),
            epochs=self.epochs,
            correctly_labelled=(true >= 0) & (np.asarray(given) == true),
            round_sets=round_sets,
        )


def difficulty_quintiles(
    *, settled_since: np.ndarray, epochs_correct: np.ndarray, correctly_labelled: np.ndarray
) -> list[np.ndarray]:
    """The correctly labelled examples' indices in five equal quintiles, easiest first.

    Args:
        settled_since: per example, the first epoch from which the true label was predicted
            to the end of the phase; 0 = never settled (hardest).
        epochs_correct: per example, the number of epochs that ended with the true label
            predicted (breaks ties: fewer = harder).
        correctly_labelled: boolean, the examples to rank.

    Returns:
        Five index arrays (sizes differ by at most one; the larger ones come first).
    """
    idx = np.flatnonzero(correctly_labelled)
    settled = settled_since[idx].astype(np.int64)
    settled = np.where(settled > 0, settled, np.iinfo(np.int64).max)  # never settled: last
    # np.lexsort sorts by the last key first; the position (idx) makes the order total
    order = np.lexsort((idx, -epochs_correct[idx].astype(np.int64), settled))
    return np.array_split(idx[order], QUINTILES)


def quintile_recall(quintiles: list[np.ndarray], confident: np.ndarray) -> list[float | None]:
    """Percentage of each quintile's examples in the confident set (None for an empty one)."""
    return [None if q.size == 0 else round(100 * float(confident[q].mean()), 2) for q in quintiles]


def difficulty_report(
    *,
    settled_since: np.ndarray,
    epochs_correct: np.ndarray,
    epochs: int,
    correctly_labelled: np.ndarray,
    round_sets: dict[str, np.ndarray],
) -> dict:
    """``{"definition", "quintile_counts", "rounds": [{"round", "recall"}], ...}``.

    ``round_sets`` maps each round's label (``"1.1"`` for outer loop 1, round 1, as
    reports show ``summary.json``'s rounds; ``"final"`` for the final confident set) to its
    boolean mask over T. Also gives ``epochs_tracked`` and, per quintile, the first and last
    settling epoch it holds (``None``: never settled).
    """
    quintiles = difficulty_quintiles(
        settled_since=settled_since, epochs_correct=epochs_correct, correctly_labelled=correctly_labelled
    )

    def epoch_range(q: np.ndarray) -> list:
        if q.size == 0:
            return [None, None]
        s = settled_since[q]
        return [int(s[0]) if s[0] > 0 else None, int(s[-1]) if s[-1] > 0 else None]

    return {
        "definition": DEFINITION,
        "quintile_counts": [int(q.size) for q in quintiles],
        "rounds": [{"round": label, "recall": quintile_recall(quintiles, mask)} for label, mask in round_sets.items()],
        "epochs_tracked": int(epochs),
        "quintile_settled_epochs": [epoch_range(q) for q in quintiles],
        "never_settled": int(np.sum(correctly_labelled & (settled_since == 0))),
    }

"""What a run records beside the procedure's own state, checkpointed with it: the confident
set of every round (written as ``rounds.npz``) and, with ``--track-difficulty``, when the
first phase learns each example (:mod:`memomentum.method.difficulty`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..base.errors import InputError
from .files import ROUNDS


def round_key(record: dict) -> str:
    """The name of a round's array in ``rounds.npz``: ``outer{o}_inner{i}`` as the record
    in ``summary.json``'s ``rounds`` numbers it."""
    return f"outer{record['outer']}_inner{record['inner']}"


def round_label(record: dict) -> str:
    """A round as reports show it: ``outer.inner``."""
    return f"{record['outer']}.{record['inner']}"


class RoundSets:
    """Keeps the confident set of every round as the procedure makes it.

    Call :meth:`observe` after every epoch (from the run's checkpoint callback): each time
    the procedure has added a record to ``state.rounds``, the training set it holds at that
    moment is that record's confident set (the benchmark mode appends the record when it
    extracts the set a round trains on, the clothing1m mode when a round's extraction ends).
    Kept as bit-packed masks (N / 8 bytes a round: 125 kB for a million examples), since
    they travel in every checkpoint (:meth:`state_dict`).
    """

    def __init__(self, n_train: int):
        self.n_train = n_train
        # ({"outer", "inner"}, np.packbits of the mask over T)
        self.sets: list[tuple[dict, np.ndarray]] = []

    def observe(self, state) -> None:
        for record in state.rounds[len(self.sets) :]:
            index = state.train_index
            if index.numel() != record["n_confident"]:  # the record and the set must describe the same round
                raise RuntimeError(
                    f"round {round_label(record)}: {index.numel()} examples held, "
                    f"the record says {record['n_confident']}"
                )
            mask = torch.zeros(self.n_train, dtype=torch.bool, device=index.device)
            mask[index] = True
            self.sets.append(({"outer": record["outer"], "inner": record["inner"]}, np.packbits(mask.cpu().numpy())))

    def masks(self, name=round_key) -> dict[str, np.ndarray]:
        """One boolean array over T per round, in round order, named by ``name(record)``."""
        return {name(record): np.unpackbits(packed, count=self.n_train).astype(bool) for record, packed in self.sets}

    def state_dict(self) -> dict:
        return {"n_train": self.n_train, "sets": list(self.sets)}

    def load_state_dict(self, d: dict) -> None:
        self.n_train, self.sets = d["n_train"], list(d["sets"])


def read_rounds(run_dir) -> dict[str, np.ndarray]:
    """The per-round confident sets of a finished run: ``{"outer1_inner1": mask, ...}``,
    each a boolean array over the rows of ``examples.csv`` (the training part T, in the
    order of ``index``)."""
    with np.load(Path(run_dir) / ROUNDS, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


class RunRecords:
    """What a run records beside the procedure's own state: the confident set of every round
    (:class:`RoundSets`, always) and, with ``track_difficulty``, a
    :class:`memomentum.method.difficulty.DifficultyTracker`. Both are checkpointed with the run.

    Use: :meth:`for_run` before training; pass :attr:`on_epoch_end` to the procedure, call
    :meth:`observe` after every epoch, save :meth:`state_dict` in the checkpoint.
    """

    def __init__(self, n_train: int, tracker=None):
        self.round_sets = RoundSets(n_train)
        self.tracker = tracker

    @classmethod
    def for_run(cls, cfg, problem) -> RunRecords:
        """Raises InputError for ``track_difficulty`` without known true labels."""
        tracker = None
        if cfg.track_difficulty:
            from ..method.difficulty import DifficultyTracker

            if problem.clean_train_labels is None:
                raise InputError(
                    "--track-difficulty needs the true labels of the training examples, and this run "
                    "takes its labels as given; add synthetic noise (--noise-type) or leave "
                    "--track-difficulty out"
                )
            tracker = DifficultyTracker(problem.clean_train_labels)
        return cls(len(problem.train), tracker)

    @property
    def on_epoch_end(self):
        return self.tracker

    def observe(self, proc) -> None:
        self.round_sets.observe(proc.state)

    def state_dict(self) -> dict:
        return {
            "round_sets": self.round_sets.state_dict(),
            "difficulty": None if self.tracker is None else self.tracker.state_dict(),
        }

    def load_state_dict(self, d: dict) -> None:
        self.round_sets.load_state_dict(d["round_sets"])
        if self.tracker is not None:
            self.tracker.load_state_dict(d["difficulty"])

    def difficulty(self, *, given: np.ndarray, final_confident: np.ndarray) -> dict | None:
        """``summary.json``'s ``difficulty`` (None without tracking): every round's confident
        set, labelled ``outer.inner``, then the final one, labelled ``final``."""
        if self.tracker is None:
            return None
        sets = self.round_sets.masks(round_label)
        sets["final"] = np.asarray(final_confident, dtype=bool)
        return self.tracker.report(given=given, round_sets=sets)

    def write_rounds(self, path: Path, *, index: np.ndarray) -> None:
        """``rounds.npz``: one boolean array per round, in the row order of ``examples.csv``
        (T sorted by ``index``, the position in the original data)."""
        from .outputs import write_npz

        order = np.argsort(index, kind="stable")
        write_npz(path, {key: mask[order] for key, mask in self.round_sets.masks().items()})

"""Me-Momentum's Clothing1M program (the reference ``Clothing.py``; docs/method.md, "The Clothing1M mode").

Per outer loop, a fresh (ImageNet-initialised) model and one MultiStepLR across the loop's
epochs; ``max_inner_loop`` rounds of ``epochs`` epochs each, the model and optimizer going on
from round to round; no early stopping:

    outer o: round 1 -> extraction -> round 2 -> extraction -> ... -> round R -> extraction -> outer o+1

After every epoch the model is scored on a *clean* validation set, per class c:
``score_c = 0.45 x recall_c + 0.55 x precision_c`` (percent, rounded to two decimals; a class
never predicted has precision 0). Per class, the weights of the epoch with the strictly best
score within the outer loop are kept; one copy per epoch that is still best for some class,
shared by the classes it is best for (the reference writes every epoch's weights, 90 x 94 MB).

After every round, extraction: for every class c, the examples whose noisy label is c are
predicted with class c's best weights (evaluation transform), and those predicted as c are
confident. Their union, always taken from the full noisy training set, replaces the training
set and carries into the next outer loop. A class without a positive score yet keeps its
examples of the current training set (the reference crashes there); the round record names
it. Training uses class-weighted cross-entropy,
``w_c = (mean_k n_train_k / n_train_c) x (n_val_c / mean_k n_val_k)``, with ``n_train`` counted
on the current training set and ``n_val`` on the clean validation labels, recomputed after
every extraction; a class without training examples gets weight 0 and a warning.

The result is the test accuracy at the epoch with the best plain clean-validation accuracy
over the whole run, and that epoch's model. :meth:`Clothing1MProcedure.assembled_predict`
also builds the per-class assembled predictor the reference never builds (each class's best
weights voting with its own softmax probability).

Reference quirks and whether they change results (``--reference-quirks`` changes nothing in
this mode): the class weights applied to the validation and test losses only change printed
losses (no result here depends on them); the extraction after the very last round is unused
by the reference (here it gives the final confident set); keys without labels are dropped
silently by the reference's data script (here they are an error: see data/clothing1m.py); a
class that never scores above 0 crashes the reference (here it keeps its examples).
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field

import torch

from ..config import resolved
from ..training.engine import accuracy, accuracy_of_counts, class_counts
from . import rules
from .procedure import HISTORY_COLUMNS, Procedure, RunState, clone_weights, not_none

SCORE_RECALL, SCORE_PRECISION = 0.45, 0.55


def per_class_scores(pred: torch.Tensor, labels: torch.Tensor, num_classes: int) -> list[float]:
    """``0.45 x recall + 0.55 x precision`` per class, in percent, rounded to two decimals.
    A class never predicted has precision 0; a class absent from ``labels`` recall 0."""
    return scores_of_counts(class_counts(pred, labels, num_classes))


def scores_of_counts(counts: torch.Tensor) -> list[float]:
    """:func:`per_class_scores` from :func:`memomentum.training.engine.class_counts` (which a
    distributed run sums over its processes)."""
    hits, support, predicted = (c.double() for c in counts)
    recall = torch.where(support > 0, 100 * hits / support.clamp(min=1), torch.zeros_like(hits))
    precision = torch.where(predicted > 0, 100 * hits / predicted.clamp(min=1), torch.zeros_like(hits))
    score = SCORE_RECALL * recall + SCORE_PRECISION * precision
    return [round(float(v), 2) for v in score.cpu()]


def class_weights(
    train_labels: torch.Tensor, val_labels: torch.Tensor, num_classes: int
) -> tuple[torch.Tensor, list[int]]:
    """``w_c = (mean_k n_train_k / n_train_c) x (n_val_c / mean_k n_val_k)`` as float32 on the
    labels' device, and the classes without training examples (weight 0)."""
    n_train = torch.bincount(train_labels, minlength=num_classes).double()
    n_val = torch.bincount(val_labels, minlength=num_classes).double()
    empty = n_train == 0
    w = (n_train.mean() / n_train.clamp(min=1)) * (n_val / n_val.mean().clamp(min=1e-12))
    w = torch.where(empty, torch.zeros_like(w), w)
    return w.float(), [int(c) for c in torch.nonzero(empty).flatten().cpu()]


@dataclass
class Clothing1MState(RunState):
    """The Clothing1M procedure's state: everything needed to continue a run exactly."""

    stage: str = "train"  # "train" | "done"
    inner: int = 1  # 1-based round number in the current outer loop
    phase_started: bool = False  # the outer loop's model and optimizer exist
    class_weights: torch.Tensor | None = None
    best_scores: list = field(default_factory=list)  # per class, within the outer loop
    best_at: list = field(default_factory=list)  # per class: {"outer", "inner", "epoch"} or None
    class_slot: list = field(default_factory=list)  # per class: key into ``slots`` or None
    slots: dict = field(default_factory=dict)  # slot -> weights (only slots some class uses)
    next_slot: int = 0
    # run_best_val is the plain clean-validation accuracy here


class Clothing1MProcedure(Procedure):
    """The Clothing1M program on a :class:`~memomentum.method.procedure.RunTensors` whose validation
    labels are clean. Same interface as :class:`~memomentum.method.procedure.Procedure`
    (checkpoints, pauses, progress)."""

    state_class = Clothing1MState

    def _clothing1m_state(self) -> Clothing1MState:
        assert isinstance(self.state, Clothing1MState)
        return self.state

    # -- the loop (run() is the base class's) ----------------------------------------------
    def _start_phase(self) -> None:  # a phase here is a whole outer loop
        self._start_outer()

    def _start_outer(self) -> None:
        s, k = self._clothing1m_state(), self.problem.num_classes
        if s.outer == 0:
            s.train_index = torch.arange(len(self.problem.train), device=self.engine.device)
            s.class_weights = self._weights(s.train_index)
        self._build_model()  # a fresh (pretrained) network from this outer loop's seed
        self._build_optimizer(inner=True)  # one MultiStepLR across the whole outer loop
        s.inner, s.epoch = 1, 0
        s.best_scores, s.best_at, s.class_slot, s.slots = [0.0] * k, [None] * k, [None] * k, {}

    def _run_epoch(self) -> None:
        s = self._clothing1m_state()
        images_per_s = self._train_epoch(class_weights=s.class_weights)
        if images_per_s is None:
            return
        lr = self._opt().param_groups[0]["lr"]
        val, scores = self._evaluate()
        not_none(self.scheduler).step()  # one MultiStepLR across the outer loop
        s.epoch += 1
        where = self.where()
        self._keep_best_per_class(scores, where)
        if rules.is_new_best(val, s.run_best_val):
            s.run_best_val, s.run_best_test = val, self._test()
            s.run_best_weights, s.run_best_where = clone_weights(self._net()), where
        row = {**self._history_row(val, lr), **{f"score_{c}": v for c, v in enumerate(scores)}}
        s.history.append(row)
        if self.progress is not None:
            self.progress.epoch_done(row, images_per_s)
        if s.epoch >= resolved(self.cfg.epochs):
            self._end_round()

    def _evaluate(self) -> tuple[float, list[float]]:
        """Plain accuracy and per-class scores on the clean validation set."""
        t0 = time.perf_counter()
        counts = self.engine.predict_counts(
            self._net(), self.forward, self.problem.val, self.problem.val_labels, self.problem.num_classes
        )
        plain = round(accuracy_of_counts(counts), 2)
        scores = scores_of_counts(counts)
        self.state.timings["evaluate"] += time.perf_counter() - t0
        return plain, scores

    def _keep_best_per_class(self, scores: list[float], where: dict) -> None:
        s = self._clothing1m_state()
        improved = [c for c, v in enumerate(scores) if rules.is_new_best(v, s.best_scores[c])]
        if not improved:
            return
        slot = s.next_slot
        s.next_slot += 1
        s.slots[slot] = clone_weights(self._net())
        for c in improved:
            s.best_scores[c], s.best_at[c], s.class_slot[c] = scores[c], dict(where), slot
        used = set(s.class_slot)
        for old in [k for k in s.slots if k not in used]:  # no class points there any more
            del s.slots[old]

    def _end_round(self) -> None:
        s = self._clothing1m_state()
        index, without = self.extract()
        s.train_index = index
        s.class_weights = self._weights(index)
        counts = torch.bincount(self.problem.train_labels[index], minlength=self.problem.num_classes)
        s.rounds.append(
            {
                "outer": s.outer + 1,
                "inner": s.inner,
                **self.confident_stats(index),
                "per_class": [int(n) for n in counts.cpu()],
                "class_weights": [round(float(w), 6) for w in s.class_weights.cpu()],
                "best_scores": list(s.best_scores),
                "best_at": [dict(w) if w else None for w in s.best_at],
                "kept_without_checkpoint": without,
            }
        )
        if s.inner < resolved(self.cfg.max_inner_loop):
            s.inner, s.epoch = s.inner + 1, 0
            return
        s.outer += 1
        s.inner, s.epoch, s.phase_started = 1, 0, False
        if s.outer >= resolved(self.cfg.max_outer_loop):
            s.stage = "done"
            self.model, self.optimizer, self.scheduler = None, None, None

    def _weights(self, index: torch.Tensor) -> torch.Tensor:
        w, empty = class_weights(self.problem.train_labels[index], self.problem.val_labels, self.problem.num_classes)
        for c in empty if self.engine.dist.is_main else ():  # one warning per run, not per process
            print(f"memomentum: warning: class {c} has no training example left; its loss weight is 0", file=sys.stderr)
        return w

    # -- results ------------------------------------------------------------------------
    def history_columns(self) -> list[str]:
        """The common columns and each class's validation score."""
        return HISTORY_COLUMNS + [f"score_{c}" for c in range(self.problem.num_classes)]

    def best_weights(self) -> dict | None:
        """The weights of the epoch with the best plain clean-validation accuracy."""
        return self.state.run_best_weights

    def confident_index(self, predicted: torch.Tensor) -> torch.Tensor:
        """The final confident set: the last per-class extraction's (``predicted`` is not
        used: the set comes from each class's own best weights, not from one network)."""
        return self.state.training_set()

    def summary_extra(self) -> dict:
        """The per-class assembled predictor's test accuracy (the reference never builds it:
        does it help?)."""
        if self.problem.test is None:
            return {}
        assembled = self.assembled_predict(self.problem.test)
        return {
            "assembled_test_accuracy": None
            if assembled is None
            else round(accuracy(assembled, not_none(self.problem.test_labels)), 2)
        }

    # -- extraction -----------------------------------------------------------------------
    def _slot_models(self):
        """Yield ``(classes, model)`` for every kept set of weights, one network reused."""
        s = self._clothing1m_state()
        with torch.random.fork_rng(devices=[]):  # a spare network: the one in training stays as it is
            network = self.engine.prepare(self.new_network())
        for slot, weights in s.slots.items():
            network.load_state_dict(weights)
            yield [c for c, k in enumerate(s.class_slot) if k == slot], network

    def extract(self) -> tuple[torch.Tensor, list[int]]:
        """The confident set (sorted indices into T) by per-class extraction from the full
        noisy training set, and the classes kept as they were for want of a checkpoint."""
        t0 = time.perf_counter()
        s, labels = self._clothing1m_state(), self.problem.train_labels
        keep = torch.zeros(labels.numel(), dtype=torch.bool, device=labels.device)
        for classes, network in self._slot_models():
            members = torch.nonzero(torch.isin(labels, torch.tensor(classes, device=labels.device))).flatten()
            if members.numel():
                pred, _ = self.engine.predict(network, network, self.problem.train, index=members)
                keep[members[pred == labels[members]]] = True
        without = [c for c, k in enumerate(s.class_slot) if k is None]
        if without:  # no positive score yet: the class keeps its current examples
            current = torch.zeros_like(keep)
            current[s.train_index] = True
            keep |= current & torch.isin(labels, torch.tensor(without, device=labels.device))
        self.state.timings["predict"] += time.perf_counter() - t0
        return torch.nonzero(keep).flatten(), without

    @torch.inference_mode()
    def assembled_predict(self, data) -> torch.Tensor | None:
        """The per-class assembled predictor: each class's best weights (of the last outer
        loop) give that class's softmax probability; the most probable class wins. None when
        no class has weights."""
        if not self._clothing1m_state().slots:
            return None
        votes: torch.Tensor | None = None
        for classes, network in self._slot_models():
            probs = self.engine.predict_proba(network, network, data, num_classes=self.problem.num_classes)
            if votes is None:
                votes = torch.full_like(probs, -1.0)
            votes[:, classes] = probs[:, classes]
        return not_none(votes).argmax(dim=1)  # at least one slot

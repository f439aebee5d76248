"""The Me-Momentum procedure (docs/method.md, "The procedure") and the cross-entropy baseline.

The procedure is a small state machine advanced one epoch at a time, so that its whole
state can be checkpointed after any epoch (or any step) and resumed exactly:

    first phase (outer o) --early stop--> inner round 1 --> inner round 2 --> ... --> outer o+1

In a distributed run (the engine's ``dist``) every process runs this same state machine on
the same numbers: the engine gathers predictions and sums validation counts so that every
decision (early stopping, confident sets) is taken identically everywhere, and a pause
asked of any process is agreed by all of them at the same step.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import TypeVar

import torch
from torch import nn

from ..base.errors import TrainingDiverged
from ..config import RunConfig, resolved
from ..training.distributed import PAUSE_AGREEMENT_STEPS
from ..training.engine import DataSource, Engine, accuracy_of_counts, balanced_accuracy_of_counts
from ..training.models import create_model
from ..training.pretrained import load_pretrained
from . import rules


@dataclass
class RunTensors:
    """The tensors one run works on, all on the engine's device.

    ``train_labels`` are the noisy labels of the training part T, ``val_labels`` the noisy
    labels of the validation part V; ``clean_train_labels`` is known only for benchmarks
    (for real noise such as Clothing1M's: where known, -1 elsewhere).
    """

    train: DataSource
    train_labels: torch.Tensor
    val: DataSource
    val_labels: torch.Tensor
    test: DataSource | None
    test_labels: torch.Tensor | None
    num_classes: int
    input_shape: tuple[int, ...]
    clean_train_labels: torch.Tensor | None = None


@dataclass
class RunState:
    """What every procedure's state holds: where the run is, the epoch in progress, the
    run's best model, the network and optimizer being trained, and the records."""

    stage: str = "first"
    outer: int = 0
    inner: int = 0
    epoch: int = 0  # epochs finished in the current phase
    phase_started: bool = False
    step_pos: int = 0  # position inside an interrupted epoch (0 = at an epoch boundary)
    order: torch.Tensor | None = None  # the interrupted epoch's example order
    loss_sum: float = 0.0  # summed loss of the interrupted epoch so far
    train_index: torch.Tensor | None = None  # S: indices into T of the current training set
    run_best_val: float = 0.0
    run_best_test: float | None = None
    run_best_where: dict | None = None
    run_best_weights: dict | None = None  # the reference's "best" checkpoint
    model: dict | None = None
    optimizer: dict | None = None
    scheduler: dict | None = None
    generator: torch.Tensor | None = None
    history: list = field(default_factory=list)
    rounds: list = field(default_factory=list)
    timings: dict = field(default_factory=lambda: {"train": 0.0, "predict": 0.0, "evaluate": 0.0})

    def training_set(self) -> torch.Tensor:
        """S (``train_index``), set when the first phase starts."""
        return not_none(self.train_index)


@dataclass
class State(RunState):
    """The benchmark procedure's state: everything needed to continue a run exactly."""

    stage: str = "first"  # "first" | "inner" | "done"
    inner: int = 0  # 1-based number of the current inner round; 0 in the first phase
    outer_best: float = 0.0  # b: best validation accuracy in this outer loop
    margin: float = 0.0  # m: the growing early-stopping margin
    last_round_best: float = 0.0  # b at the end of the previous inner round
    outer_best_weights: dict | None = None  # the reference's "latest" checkpoint


T = TypeVar("T")


def not_none(value: T | None) -> T:
    """A part of the state that the run has set by the time it is read."""
    assert value is not None, "read before the run set it"
    return value


# The columns of history.csv: one row per epoch (a procedure may add its own, see history_columns).
HISTORY_COLUMNS = ["outer", "inner", "epoch", "n_train", "train_loss", "val_accuracy", "lr"]


def clone_weights(model: nn.Module) -> dict:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _finite_weights(model: nn.Module) -> bool:
    """Whether every parameter is finite: one host sync (called once per epoch)."""
    with torch.no_grad():
        return bool(torch.stack([torch.isfinite(p).all() for p in model.parameters()]).all())


class Procedure:
    """Runs Me-Momentum (``config.method == "memomentum"``) or the cross-entropy baseline
    (``"ce"``: the first phase of the first outer loop only) on a :class:`RunTensors`.

    Args:
        config: a resolved :class:`RunConfig`.
        problem: the data on the device.
        engine: the :class:`Engine` to train with.
        on_checkpoint: called with ``self`` after every epoch (and when paused); the caller
            persists :meth:`state_dict`.
        should_pause: polled after every step; when it returns True the procedure stops at
            that step, calls ``on_checkpoint`` and returns with ``self.paused`` set. In a
            distributed run the processes agree every
            :data:`~memomentum.training.distributed.PAUSE_AGREEMENT_STEPS` steps and at the end of
            every epoch: when any of them was asked, all stop at the same step.
        progress: optional object told how training goes: ``steps_done(where, done, total,
            images_per_s)`` about once a second inside an epoch (``where``: outer, inner and
            epoch numbers as in the history) and ``epoch_done(row, images_per_s, stopping)``
            after each epoch (``row`` is the epoch's history row; ``stopping`` where early
            stopping stands after a first-phase epoch, else None).
        on_epoch_end: optional callable, called with ``self`` after every epoch of the
            benchmark mode, once the epoch is in the history and before the procedure
            decides what comes next (the network is still the one that ended the epoch);
            ``--track-difficulty`` records predictions there (:mod:`memomentum.method.difficulty`).
        network: optional ``(input_shape, num_classes) -> nn.Module`` building each outer
            loop's fresh network (under that loop's seed); default: ``config.model``.
    """

    state_class: type[RunState] = State

    def __init__(
        self,
        *,
        config: RunConfig,
        problem: RunTensors,
        engine: Engine,
        on_checkpoint=None,
        should_pause=None,
        progress=None,
        on_epoch_end=None,
        network=None,
    ):
        self.cfg = config
        self.problem = problem
        self.engine = engine
        self.on_checkpoint = on_checkpoint
        self.should_pause = should_pause
        self.progress = progress
        self.on_epoch_end = on_epoch_end
        self.network = network
        self.paused = False
        self.state: RunState = self.state_class()
        self.generator = torch.Generator(device=engine.device)
        self.generator.manual_seed(config.seed)
        self.model: nn.Module | None = None
        self.forward = None
        self.train_forward = None  # ``forward``, or in a distributed run the DDP-wrapped model
        self._pause_requested = self._asked_here = False
        self.optimizer: torch.optim.Optimizer | None = None
        self.scheduler: torch.optim.lr_scheduler.LRScheduler | None = None

    def _benchmark_state(self) -> State:
        """The state as this class's own methods use it (a subclass may have a state of its own)."""
        assert isinstance(self.state, State)
        return self.state

    # The network and its optimizer exist while a phase runs (_build_model, _build_optimizer).
    def _net(self) -> nn.Module:
        assert self.model is not None, "no network outside a phase"
        return self.model

    def _opt(self) -> torch.optim.Optimizer:
        assert self.optimizer is not None, "no optimizer outside a phase"
        return self.optimizer

    # -- persistence --------------------------------------------------------------------
    def state_dict(self) -> dict:
        s = self.state
        if self.model is not None:
            s.model = self.model.state_dict()
            s.optimizer = self._opt().state_dict()
            s.scheduler = self.scheduler.state_dict() if self.scheduler is not None else None
        s.generator = self.generator.get_state()
        return s.__dict__

    def load_state_dict(self, d: dict) -> None:
        self.state = self.state_class(**d)
        self.generator.set_state(not_none(self.state.generator))
        if self.state.phase_started and self.state.stage != "done":
            self._build_model()
            self._net().load_state_dict(not_none(self.state.model))
            self._build_optimizer(inner=self.state.stage != "first")  # a schedule in every stage but the first phase
            self._opt().load_state_dict(not_none(self.state.optimizer))
            if self.scheduler is not None and self.state.scheduler is not None:
                self.scheduler.load_state_dict(self.state.scheduler)
        elif self.state.stage == "inner" and self.state.model is not None:
            # saved between two phases: the next inner round starts from the current network
            # (normally replaced by the outer loop's best weights, see _start_inner_round)
            self._build_model()
            self._net().load_state_dict(self.state.model)

    # -- building blocks ----------------------------------------------------------------
    def new_network(self) -> nn.Module:
        """A freshly initialised network for this run, from the global RNG (which the callers
        seed or fork): the configured model, or the one the ``network`` function builds."""
        if self.network is None:
            return create_model(
                resolved(self.cfg.model), input_shape=self.problem.input_shape, num_classes=self.problem.num_classes
            )
        return self.network(self.problem.input_shape, self.problem.num_classes)

    def _build_model(self) -> None:
        # Each outer loop's fresh model comes from its own seed, so a resumed run rebuilds
        # exactly the same network without replaying the global RNG.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.cfg.seed * 1000 + self.state.outer)
            model = self.new_network()
        if self.cfg.pretrained not in (None, "none"):  # ImageNet weights, a fresh head from the seed
            load_pretrained(model, self.cfg.pretrained, model_name=resolved(self.cfg.model))
        self.model = self.engine.prepare(model)
        self.forward = self.engine.forward_fn(self.model)
        self.train_forward = self.engine.training_forward(self.model, self.forward)

    def _build_optimizer(self, *, inner: bool) -> None:
        cfg = self.cfg
        self.optimizer = self.engine.make_optimizer(
            self._net(), lr=resolved(cfg.lr), momentum=cfg.momentum, weight_decay=resolved(cfg.weight_decay)
        )
        self.scheduler = (
            torch.optim.lr_scheduler.MultiStepLR(
                self.optimizer, milestones=list(resolved(cfg.milestones)), gamma=cfg.gamma
            )
            if inner
            else None
        )

    def _quirk_generator(self):
        return self.generator if self.cfg.reference_quirks else None

    def predict_train(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Prediction and confidence for every example of T with the current model."""
        t0 = time.perf_counter()
        pred, conf = self.engine.predict(
            self._net(), self.forward, self.problem.train, generator=self._quirk_generator()
        )
        self.state.timings["predict"] += time.perf_counter() - t0
        return pred, conf

    def _validate(self) -> float:
        t0 = time.perf_counter()
        counts = self.engine.predict_counts(
            self._net(),
            self.forward,
            self.problem.val,
            self.problem.val_labels,
            self.problem.num_classes,
            generator=self._quirk_generator(),
        )
        acc = balanced_accuracy_of_counts(counts)
        self.state.timings["evaluate"] += time.perf_counter() - t0
        return acc

    def _test(self) -> float | None:
        if self.problem.test is None:
            return None
        t0 = time.perf_counter()
        counts = self.engine.predict_counts(
            self._net(), self.forward, self.problem.test, not_none(self.problem.test_labels), self.problem.num_classes
        )
        acc = round(accuracy_of_counts(counts), 2)
        self.state.timings["evaluate"] += time.perf_counter() - t0
        return acc

    def confident_stats(self, index: torch.Tensor) -> dict:
        """Size, label precision and label recall (percent) of a confident set."""
        out: dict[str, float] = {"n_confident": int(index.numel())}
        clean = self.problem.clean_train_labels
        if clean is not None:
            known = clean >= 0  # real noise (Clothing1M): true labels only for some examples
            correct = (self.problem.train_labels == clean) & known
            hits = int(correct[index].sum())
            out["label_precision"] = round(100 * hits / max(int(known[index].sum()), 1), 2)
            out["label_recall"] = round(100 * hits / max(int(correct.sum()), 1), 2)
            if not bool(known.all()):
                out["n_known_labels"] = int(known[index].sum())
        return out

    # -- phases ---------------------------------------------------------------------------
    def _start_first_phase(self) -> None:
        s = self._benchmark_state()
        if s.outer == 0:
            s.train_index = torch.arange(len(self.problem.train), device=self.engine.device)
        # later outer loops train on the confident set the previous outer loop left in S
        self._build_model()
        self._build_optimizer(inner=False)
        s.outer_best, s.margin, s.last_round_best = 0.0, 0.0, 0.0
        s.outer_best_weights = None

    def _start_phase(self) -> None:
        self._start_first_phase() if self.state.stage == "first" else self._start_inner_round()

    def _start_inner_round(self) -> None:
        s = self._benchmark_state()
        if s.outer_best_weights is not None:  # None only if validation never rose above 0
            self._net().load_state_dict(s.outer_best_weights)
        self._build_optimizer(inner=True)
        pred, _ = self.predict_train()
        s.train_index = self.confident_index(pred)
        s.rounds.append({"outer": s.outer + 1, "inner": s.inner, **self.confident_stats(s.train_index)})

    def _record_run_best(self, val: float) -> None:
        s = self.state
        if rules.is_new_best(val, s.run_best_val):
            s.run_best_val = val
            s.run_best_test = self._test()
            s.run_best_weights = clone_weights(self._net())
            s.run_best_where = self.where()

    def _end_of_epoch(self, val: float) -> None:
        s, cfg = self._benchmark_state(), self.cfg
        if s.stage == "first":
            if rules.first_phase_improved(val, s.outer_best, s.margin):
                s.outer_best, s.margin = val, 0.0
                s.outer_best_weights = clone_weights(self._net())
                if not cfg.reference_quirks or cfg.method == "ce":
                    self._record_run_best(val)
            else:
                s.margin += cfg.margin_step
            if s.outer_best_weights is None:  # validation accuracy still 0: keep the latest network
                s.outer_best_weights = clone_weights(self._net())
            if rules.first_phase_ends(s.margin, cfg.margin_limit, s.epoch, resolved(cfg.epochs)):
                if rules.goes_on_to_rounds(cfg.method, resolved(cfg.max_inner_loop)):
                    self._enter_inner(1)
                else:
                    self._next_outer()
        else:
            if rules.is_new_best(val, s.outer_best):
                s.outer_best = val
                s.outer_best_weights = clone_weights(self._net())
                self._record_run_best(val)
            if s.epoch >= resolved(cfg.epochs):
                s.rounds[-1]["best_val_accuracy"] = s.outer_best
                if rules.another_round(s.outer_best, s.last_round_best, s.inner, resolved(cfg.max_inner_loop)):
                    s.last_round_best = s.outer_best
                    self._enter_inner(s.inner + 1)
                else:
                    self._next_outer()

    def _enter_inner(self, round_number: int) -> None:
        s = self.state
        s.stage, s.inner, s.epoch, s.phase_started = "inner", round_number, 0, False

    def _next_outer(self) -> None:
        s = self.state
        s.outer += 1
        s.inner, s.epoch, s.phase_started = 0, 0, False
        done = rules.run_is_done(self.cfg.method, s.outer, resolved(self.cfg.max_outer_loop))
        s.stage = "done" if done else "first"
        if done:
            self.model, self.optimizer, self.scheduler = None, None, None

    # -- the loop -------------------------------------------------------------------------
    def run(self) -> RunState:
        """Advance until the run is finished or paused; returns the state."""
        s = self.state
        self.paused = self._pause_requested = self._asked_here = False
        while s.stage != "done":
            if not s.phase_started:
                self._start_phase()
                s.phase_started = True
            self._run_epoch()
            if self.engine.dist.parallel and not self._pause_requested:  # asked in the epoch's last steps?
                self._pause_requested = self.engine.dist.any(self._asked_here, self.engine.device)
            if self.on_checkpoint is not None:
                self.on_checkpoint(self)
            if self._pause_requested and s.stage != "done":
                self.paused = True
                break
        return s

    def _pause_check(self, agree: bool = True) -> bool:
        """Whether to stop after this step. Sticky: once asked to pause, stay paused even if
        the caller's flag is one-shot. In a distributed run a request counts once the
        processes have agreed on it (``agree``: at this step they all compare notes)."""
        if not self._asked_here and self.should_pause is not None:
            self._asked_here = bool(self.should_pause())
        if not self.engine.dist.parallel:
            self._pause_requested = self._asked_here
        elif agree and not self._pause_requested:
            self._pause_requested = self.engine.dist.any(self._asked_here, self.engine.device)
        return self._pause_requested

    def _diverged(self) -> TrainingDiverged:
        s = self.state
        phase = "the first phase" if s.stage == "first" else f"inner round {s.inner}"
        lr = self._opt().param_groups[0]["lr"]
        what = (
            f"the loss became {s.loss_sum}" if not math.isfinite(s.loss_sum) else "the weights became NaN or infinite"
        )
        return TrainingDiverged(
            f"training diverged: {what} in epoch {s.epoch + 1} of {phase} of outer loop "
            f"{s.outer + 1} with learning rate {lr:g}; no results were written, start again with a lower --lr"
        )

    def _after_step_hook(self, start: int, total: int, t0: float):
        """The engine's per-step callback: the pause check, plus about once a second the
        progress inside the epoch (host clock only: no device sync)."""
        steps = 0

        def agree_now() -> bool:  # the same steps on every process: the count restarts with the call
            nonlocal steps
            steps += 1
            return steps % PAUSE_AGREEMENT_STEPS == 0

        if self.progress is None:
            return lambda: self._pause_check(agree_now())
        s = self.state
        where = {"outer": s.outer + 1, "inner": s.inner, "epoch": s.epoch + 1}
        batch, done, last = self.engine.batch_size, start, t0

        def after_step() -> bool:
            nonlocal done, last
            done = min(done + batch, total)
            now = time.perf_counter()
            if now - last >= 1.0:
                last = now
                self.progress.steps_done(where, done, total, (done - start) / (now - t0))
            return self._pause_check(agree_now())

        return after_step

    def _train_epoch(self, class_weights: torch.Tensor | None = None) -> float | None:
        """Train one epoch, or continue an interrupted one. Returns the images per second, or
        None when a pause was requested inside the epoch (``step_pos`` > 0 then says where)."""
        s, problem = self.state, self.problem
        if s.step_pos == 0:
            s.order = self.engine.epoch_order(s.training_set(), self.generator)
            s.loss_sum = 0.0
        order = not_none(s.order)  # drawn above, or the interrupted epoch's
        t0 = time.perf_counter()
        dist = self.engine.dist
        # distributed: each process sums its own share from 0 and the shares are added below
        loss_sum, pos = self.engine.train_steps(
            self._net(),
            self.train_forward,
            self.optimizer,
            problem.train,
            problem.train_labels,
            order,
            start=s.step_pos,
            loss_sum=torch.tensor(0.0 if dist.parallel else s.loss_sum, device=self.engine.device),
            generator=self.generator,
            should_pause=self._after_step_hook(s.step_pos, order.numel(), t0),
            class_weights=class_weights,
        )
        # one host sync per epoch
        s.loss_sum = s.loss_sum + dist.sum_floats(loss_sum) if dist.parallel else float(loss_sum)
        if not math.isfinite(s.loss_sum) or not _finite_weights(self._net()):  # the last step may blow up unseen
            raise self._diverged()
        seconds = time.perf_counter() - t0
        s.timings["train"] += seconds
        images_per_s = (pos - s.step_pos) / max(seconds, 1e-9)
        if pos < self.engine.epoch_stop(order.numel()):
            s.step_pos = pos
            return None
        s.step_pos, s.order = 0, None
        return images_per_s

    def _run_epoch(self) -> None:
        """Train one epoch (or its rest), validate, and advance the state machine; stops
        early inside the epoch when a pause is requested."""
        s = self.state
        images_per_s = self._train_epoch()
        if images_per_s is None:
            return
        lr = self._opt().param_groups[0]["lr"]
        val = self._validate()
        if self.scheduler is not None:
            self.scheduler.step()
        s.epoch += 1
        row = self._history_row(val, lr)
        s.history.append(row)
        if self.on_epoch_end is not None:
            self.on_epoch_end(self)
        self._end_of_epoch(val)
        if self.progress is not None:
            self.progress.epoch_done(row, images_per_s, self._stopping(row))

    def _stopping(self, row: dict) -> str | None:
        """Where early stopping stands after a first-phase epoch (``row``), for the progress
        bar: the margin grown since the phase's best epoch against its limit, or that the
        phase has ended; None after an epoch of a round (rounds run their whole bound)."""
        if row["inner"] != 0:
            return None
        s = self._benchmark_state()
        if s.stage == "first" and s.outer + 1 == row["outer"]:
            return f"margin {s.margin:.1f}/{self.cfg.margin_limit:g}"
        return "first phase ended"

    # -- the epoch's record ----------------------------------------------------------------
    def where(self) -> dict:
        """Where the run stands, 1-based as the history and the summary number it."""
        s = self.state
        return {"outer": s.outer + 1, "inner": s.inner, "epoch": s.epoch}

    def _history_row(self, val: float, lr: float) -> dict:
        """The finished epoch's row of ``history.csv`` (its columns: :meth:`history_columns`)."""
        s = self.state
        # the mean loss over the epoch's steps (the last short batch is trained too)
        mean_loss = s.loss_sum / max(self.engine.epoch_stop(s.training_set().numel()), 1)
        return {
            **self.where(),
            "n_train": int(s.training_set().numel()),
            "train_loss": round(mean_loss, 5),
            "val_accuracy": val,
            "lr": lr,
        }

    def history_columns(self) -> list[str]:
        """The columns of this procedure's history rows."""
        return list(HISTORY_COLUMNS)

    # -- results --------------------------------------------------------------------------
    def best_weights(self) -> dict | None:
        """The run's best weights (by validation accuracy), or before any gain the outer
        loop's latest; None before the first epoch."""
        s = self._benchmark_state()
        return s.run_best_weights if s.run_best_weights is not None else s.outer_best_weights

    def best_model(self) -> nn.Module:
        """The run's best model (:meth:`best_weights`), on the engine's device."""
        weights = self.best_weights()
        if weights is None:
            raise RuntimeError("the run has no checkpointed model yet")
        with torch.random.fork_rng(devices=[]):
            model = self.new_network()
        model = self.engine.prepare(model)
        model.load_state_dict(weights)
        return model

    def confident_index(self, predicted: torch.Tensor) -> torch.Tensor:
        """The confident set (indices into T) for a network's ``predicted`` classes of T:
        where the prediction equals the given label (each round's, and the final one)."""
        agree = rules.agrees_with_label(predicted, self.problem.train_labels)
        return torch.nonzero(agree).flatten()

    def summary_extra(self) -> dict:
        """What this procedure adds to ``summary.json`` beyond the common keys."""
        return {}

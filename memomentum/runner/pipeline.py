"""One run, as named steps:

    check the directory -> prepare the data -> resolve the settings -> threads and engine
    -> tensors on the device -> check the network -> train (checkpointed, pausable)
    -> final predictions -> summary -> result files

Each process of a torchrun run goes through the same steps; rank 0 alone writes the run
directory (docs/distributed.md).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from ..base.errors import InputError, TrainingDiverged
from ..config import RunConfig, resolved
from ..data import Dataset
from ..data.registry import run_name
from ..method.clothing1m import Clothing1MProcedure
from ..method.procedure import Procedure
from ..training import distributed
from ..training.engine import Engine
from ..training.pretrained import check_weights_file
from ..training.sources import StreamedSource
from ..training.threads import ThreadPolicy, bind_openmp_threads, choose_threads
from . import outputs
from .files import CHECKPOINT, CONFIG, HISTORY, RESULT_FILES
from .prepare import RunData, check_network, place_data, prepare_data, resolve_pretrained
from .progress import progress_bar
from .records import RunRecords
from .results import FinalPredictions, final_predictions, summarise, write_results
from .rundir import (
    LiveHistory,
    check_run_dir,
    config_differences,
    data_changes,
    data_fingerprint,
    discard_run,
    edited_config_note,
    forget_previous,
    open_run_dir,
    write_failed,
)
from .signals import KILL_AT_ENV, Interrupted, KillHook, pause_on_signals


@dataclass
class RunResult:
    """What a finished run gives back ([`memomentum.run`][memomentum.entrypoints.api.run]).

    Attributes
    ----------
    summary : dict
        What ``summary.json`` holds: the test accuracy, the rounds, the final confident set,
        timings (docs/outputs.md).
    run_dir : pathlib.Path or None
        The run directory; None when nothing was written.
    procedure : Procedure
        The procedure: its state and best model.
    data : RunData
        The data as noise and split left them.
    final : FinalPredictions
        The best model's predictions on the training part, and the final confident set.
    """

    summary: dict
    run_dir: Path | None  # None when nothing was written
    procedure: Procedure  # its state and best model
    data: RunData  # the data as noise and split left it
    final: FinalPredictions  # the best model on the training part, and the final confident set


def default_run_dir(cfg: RunConfig) -> Path:
    return Path("runs") / f"{run_name(cfg.dataset)}-{cfg.noise_name()}-seed{cfg.seed}-{cfg.method}"


def run_pipeline(
    requested: RunConfig,
    dist: distributed.Distributed,
    device: torch.device,
    t_start: float,
    *,
    resume: bool,
    overwrite: bool,
    write: bool,
    dataset: Dataset | None,
    network=None,
    on_finished=None,
) -> RunResult:
    """:func:`memomentum.entrypoints.api.run` inside the run's process group (``dist``; none for a plain
    run). ``requested`` is the configuration as given, ``cfg`` the one resolved for the data;
    ``on_finished(run_dir, dataset)`` is called once the results are written."""
    run_dir = Path(requested.out) if requested.out else default_run_dir(requested)
    saved = _saved_run(run_dir, requested, resume=resume, overwrite=overwrite) if write else None
    if requested.pretrained not in (None, "none"):  # before packing images, which can take an hour
        check_weights_file(requested.pretrained)
    if requested.cuda_graph and dist.parallel:  # refused before the data are prepared, as the engine would
        raise InputError(
            f"--cuda-graph records the step of a single process; leave it out under torchrun "
            f"({dist.world_size} processes)"
        )
    prep = prepare_data(requested, dataset)
    fingerprint = data_fingerprint(prep.dataset, prep.noisy_labels)
    _refuse_changed_data(run_dir, saved, fingerprint)
    cfg = _resolve(requested, prep)
    thread_policy = _apply_threads(cfg, dist, saved)
    # torch.compile only where it pays: measured slower on the CPU (and it needs a C++
    # compiler there), so --compile is a GPU option; the CPU has no graphs to record.
    cuda = device.type == "cuda"
    engine = Engine(
        device=device,
        augment=prep.dataset.augment,
        batch_size=resolved(cfg.batch_size),
        predict_chunk=cfg.predict_chunk,
        compile=cfg.compile and cuda,
        cuda_graph=cfg.cuda_graph and cuda,
        dist=dist,
    )
    problem = place_data(prep, engine, stream=cfg.stream, workers=cfg.workers)
    check_network(cfg, problem, engine, network)
    records = RunRecords.for_run(cfg, problem)  # the rounds' confident sets, --track-difficulty

    # From here on SIGINT/SIGTERM pause the run (after the current step) instead of killing it;
    # without a run directory to checkpoint into they keep their usual meaning.
    # The run directory is created (or cleared), locked against a second writer and checked
    # again under its lock (runner.rundir); the lock goes when this block ends, however.
    writes = write and dist.is_main  # rank 0 alone writes the run directory
    if write:
        dist.barrier()  # every process has checked the directory before rank 0 changes it
    held: contextlib.AbstractContextManager[bool] = (
        open_run_dir(run_dir, resume=resume, overwrite=overwrite) if writes else contextlib.nullcontext(False)
    )
    pausing: contextlib.AbstractContextManager[list[int]] = pause_on_signals() if write else contextlib.nullcontext([])
    with pausing as received, held as created:
        keeper = RunKeeper(
            run_dir,
            write=write,
            writes=writes,
            created=created,
            dist=dist,
            records=records,
            received=received,
            extra={
                "config": requested.to_dict(),
                "resolved": cfg.to_dict(),
                "threads": thread_policy.threads,
                "data": fingerprint,
            },
            elapsed_before=saved.get("elapsed", 0.0) if saved else 0.0,
            t_start=t_start,
        )
        keeper.write_config(saved["resolved"] if saved else cfg.to_dict())
        with _one_core_per_thread(thread_policy, engine, problem) as binding:
            proc = _train(cfg, problem, engine, keeper, saved, network, resume=resume)
            if proc.paused:  # a process that got no signal pauses because another one did
                raise Interrupted(received[0] if received else signal.SIGTERM, run_dir)
            final = final_predictions(proc)  # one prediction pass serves the summary, examples.csv and the caller
        thread_policy = dataclasses.replace(thread_policy, binding=binding)
        summary = _summary(cfg, prep, proc, final, device, thread_policy, keeper.elapsed(), records, dist)
        # what names the data: `memomentum table` groups runs by it (not the paths as typed) and
        # `memomentum consensus` compares it to call two runs' data the same
        summary.update(data_fingerprint=fingerprint, data_paths=cfg.resolved_paths())
        if writes:
            keeper.write_results(cfg, prep, proc, final, summary)
            forget_previous(run_dir)  # the results are complete: the run --overwrite replaced goes
            if on_finished is not None:
                on_finished(run_dir, prep.dataset)
    return RunResult(summary=summary, run_dir=run_dir if write else None, procedure=proc, data=prep, final=final)


# -- the steps before training -------------------------------------------------------------


def _saved_run(run_dir: Path, requested: RunConfig, *, resume: bool, overwrite: bool) -> dict | None:
    """Check the run directory; on resume, the checkpoint, whose settings must match."""
    check_run_dir(run_dir, resume=resume, overwrite=overwrite)
    if not resume:
        return None
    saved = outputs.read_checkpoint(run_dir)
    differ = config_differences(saved["config"], requested)
    if differ:
        raise InputError(f"cannot resume {run_dir}: these settings differ from the saved run: {', '.join(differ)}")
    note = edited_config_note(run_dir, saved)
    if note is not None:
        print(f"memomentum: note: {note}", file=sys.stderr)
    return saved


def _refuse_changed_data(run_dir: Path, saved: dict | None, fingerprint: dict) -> None:
    changed = data_changes(saved.get("data") if saved else None, fingerprint)
    if changed:
        raise InputError(
            f"cannot resume {run_dir}: its data changed since the run started ({', '.join(changed)}); "
            f"resume with the data it started with, or start a new run"
        )


def _resolve(requested: RunConfig, prep: RunData) -> RunConfig:
    """The settings with the dataset's defaults filled in, checked against the data."""
    cfg = requested.resolved(prep.dataset.default_model)
    cfg = dataclasses.replace(cfg, pretrained=resolve_pretrained(cfg, prep.dataset))
    n_train = prep.train_index.size
    if n_train < resolved(cfg.batch_size):
        raise InputError(
            f"the training part has {n_train} examples (--val-fraction {cfg.val_fraction:g} holds out "
            f"{prep.val_labels.size}), fewer than one batch of {cfg.batch_size}; lower --batch-size "
            f"or --val-fraction"
        )
    return cfg


def _apply_threads(cfg: RunConfig, dist: distributed.Distributed, saved: dict | None) -> ThreadPolicy:
    """The thread count fixes the numerics, so it never depends on the load (training.threads)."""
    policy = distributed.share_cores(choose_threads(cfg.threads, model=cfg.model), dist).apply()
    if saved is not None and saved.get("threads", policy.threads) != policy.threads:
        print(
            f"memomentum: warning: this run was started with {saved['threads']} CPU threads and continues with "
            f"{policy.threads}; the thread count sets the order of float sums, so the results may differ "
            f"in the last bits from an uninterrupted run (--threads {saved['threads']} keeps them)",
            file=sys.stderr,
        )
    return policy


# -- training --------------------------------------------------------------------------------


def _one_core_per_thread(policy: ThreadPolicy, engine: Engine, problem):
    """While a CPU run trains, each OpenMP thread on a core of its own (training.threads):
    only the speed changes, not the numbers."""
    if engine.device.type != "cpu":
        return contextlib.nullcontext(f"not bound: training on {engine.device.type}")
    return bind_openmp_threads(policy.threads, streamed=isinstance(problem.train, StreamedSource))


def _train(
    cfg: RunConfig, problem, engine: Engine, keeper: RunKeeper, saved: dict | None, network, *, resume: bool
) -> Procedure:
    """Build the procedure (from the checkpoint on resume) and run it until it finishes or pauses."""
    bar = progress_bar(cfg) if engine.dist.is_main else None
    procedure = Clothing1MProcedure if cfg.mode == "clothing1m" else Procedure
    proc = procedure(
        config=cfg,
        problem=problem,
        engine=engine,
        on_checkpoint=keeper.after_epoch,
        should_pause=keeper.should_pause,
        progress=bar,
        on_epoch_end=keeper.records.on_epoch_end,
        network=network,
    )
    keeper.history.columns = proc.history_columns()
    if saved is not None:
        proc.load_state_dict(saved["procedure"])
        keeper.records.load_state_dict(saved["records"])
    else:
        keeper.save(proc)  # from now on the directory can be resumed, whatever happens
    keeper.start_history(proc)
    try:
        proc.run()
    except TrainingDiverged as e:
        if keeper.discard_on_divergence(resume):  # a resumed run keeps its last checkpoint
            raise TrainingDiverged(
                f"{e}; the run that --overwrite was to replace is back in {keeper.run_dir}"
            ) from None
        raise
    finally:
        if bar:
            bar.close()
    return proc


def _summary(
    cfg: RunConfig,
    prep: RunData,
    proc: Procedure,
    final: FinalPredictions,
    device: torch.device,
    thread_policy: ThreadPolicy,
    wall: float,
    records: RunRecords,
    dist: distributed.Distributed,
) -> dict:
    summary = summarise(cfg, prep, proc, final, device, thread_policy, wall)
    summary.update(dist.describe())
    if records.tracker is not None:
        summary["difficulty"] = records.difficulty(
            given=prep.noisy_labels[prep.train_index], final_confident=final.confident_mask()
        )
    return summary


class RunKeeper:
    """Keeps the run directory in step with the procedure: the checkpoint and ``history.csv``
    after every epoch (rank 0 writes, every process waits for it), the pause requests, and
    the test hook's kill points (:class:`~.signals.KillHook`)."""

    def __init__(
        self,
        run_dir: Path,
        *,
        write: bool,
        writes: bool,
        created: bool,
        dist,
        records: RunRecords,
        received: list,
        extra: dict,
        elapsed_before: float,
        t_start: float,
    ):
        self.run_dir, self.write, self.writes, self.created, self.dist = run_dir, write, writes, created, dist
        self.records, self.received, self.extra = records, received, extra
        self.elapsed_before, self.t_start = elapsed_before, t_start
        self.kill = KillHook(os.environ.get(KILL_AT_ENV, ""))
        self.history = LiveHistory(run_dir / HISTORY, [])

    def elapsed(self) -> float:
        return self.elapsed_before + time.perf_counter() - self.t_start

    def _failed(self, e: OSError) -> InputError:
        return write_failed(e, self.run_dir, self.created)

    def write_config(self, resolved: dict) -> None:
        """config.json, also on resume (from the checkpoint): it always describes the run it holds."""
        if self.writes:
            try:
                outputs.write_json(self.run_dir / CONFIG, resolved)
            except OSError as e:
                raise self._failed(e) from None

    def save(self, proc: Procedure) -> None:
        if self.writes:
            try:
                outputs.write_torch(
                    self.run_dir / CHECKPOINT,
                    {
                        **self.extra,
                        "procedure": proc.state_dict(),
                        "records": self.records.state_dict(),
                        "elapsed": self.elapsed(),
                    },
                    midway=self.kill.at("checkpoint-write"),
                )
                self.history.extend(proc.state.history)  # history.csv follows the checkpoint, epoch by epoch
            except OSError as e:
                raise self._failed(e) from None
        if self.write:
            self.dist.barrier()  # rank 0's checkpoint is on disk before any process goes on (or stops)

    def start_history(self, proc: Procedure) -> None:
        """history.csv with the rows the checkpoint holds, none lost or doubled."""
        if self.writes:
            try:
                self.history.start(proc.state.history)
            except OSError as e:
                raise self._failed(e) from None

    def after_epoch(self, proc: Procedure) -> None:  # after every epoch, and when paused
        self.records.observe(proc)
        self.kill("epoch")
        self.save(proc)
        if not proc.state.phase_started:
            self.kill("round")

    def should_pause(self) -> bool:
        self.kill("step")
        return bool(self.received)

    def discard_on_divergence(self, resume: bool) -> bool:
        """After a divergence: the directory of a new run goes (the run --overwrite was to
        replace comes back: True); a resumed run keeps its last checkpoint."""
        return self.writes and not resume and discard_run(self.run_dir, self.created)

    def write_results(
        self, cfg: RunConfig, prep: RunData, proc: Procedure, final: FinalPredictions, summary: dict
    ) -> None:
        try:
            write_results(self.run_dir, cfg, prep, proc, final, summary, self.records)
        except OSError as e:
            for name in RESULT_FILES:  # all or nothing: the checkpoint stays for --resume
                (self.run_dir / name).unlink(missing_ok=True)
            raise self._failed(e) from None

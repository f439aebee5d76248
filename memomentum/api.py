"""The Python API: one call runs the whole pipeline.

    data -> noise -> split -> procedure (engine + models) -> outputs

>>> from memomentum import RunConfig, run
>>> result = run(RunConfig(dataset="digits", out="runs/demo"))
>>> result.summary["test_accuracy"]
"""
from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import os
import shlex
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .training import distributed
from .runner import outputs
from .config import RunConfig, is_image_folder_name, is_table_file
from .data import Dataset, check_human_labels, load_dataset, read_human_labels
from .training.engine import Engine, accuracy, choose_device
from .training.sources import StreamedSource, default_workers, to_device_data
from .training.models import IMAGENET_MIN_SIDE, create_model
from .training.pretrained import KNOWN_FILES, check_weights_file, find_pretrained, load_pretrained, missing_weights_message
from .errors import InputError, TrainingDiverged
from .data.noise import make_noisy_labels
from .method.clothing1m import Clothing1MProcedure
from .method.procedure import Problem, Procedure
from .data.split import split_for_validation
from .training.threads import ThreadPolicy, choose_threads
from .runner.rundir import (HISTORY, RESULT_FILES, LiveHistory, check_run_dir, config_differences, data_changes,
                     data_fingerprint, discard_run, forget_previous, history_columns, open_run_dir,
                     write_failed)
from .method.verdicts import ROUNDS_FILE, RunRecords, verdict_columns


class Interrupted(Exception):
    """The run was stopped by a signal after writing a checkpoint."""

    def __init__(self, signum: int, run_dir: Path):
        self.signum = signum
        self.run_dir = run_dir
        super().__init__(f"interrupted by {signal.Signals(signum).name}; checkpoint saved in {run_dir}")


@dataclass
class Prepared:
    """The data of one run after noise and split, still as numpy arrays."""

    dataset: Dataset
    noisy_labels: np.ndarray  # for the whole training set
    realised_rate: float
    train_index: np.ndarray
    val_index: np.ndarray | None  # None: the dataset's own clean validation set (Clothing1M)
    # the noise is synthetic, so the labels it was added to are the truth it is measured
    # against (for the user's own data too); False for labels used as given and human labels
    synthetic_noise: bool = False
    val_labels: np.ndarray | None = None  # what validation scores against: noisy, or clean in the clothing1m mode


@dataclass
class RunResult:
    summary: dict
    run_dir: Path | None
    procedure: Procedure


def default_run_dir(cfg: RunConfig) -> Path:
    if cfg.dataset.endswith(".npz") or is_table_file(cfg.dataset):
        name = Path(cfg.dataset).stem
    elif is_image_folder_name(cfg.dataset):
        name = Path(cfg.dataset).expanduser().resolve().name
    else:
        name = cfg.dataset
    return Path("runs") / f"{name}-{cfg.noise_name()}-seed{cfg.seed}-{cfg.method}"


def prepare(cfg: RunConfig, dataset: Dataset | None = None) -> Prepared:
    """Load the data (unless given), make the noisy labels, and split into training and
    validation parts. Image files are packed into their store here on first use."""
    ds = dataset if dataset is not None else load_dataset(
        cfg.dataset, data_dir=cfg.data_dir, cache_dir=cfg.cache_dir, image_size=cfg.image_size,
        store_format=cfg.store_format, train_set=cfg.train_set, workers=cfg.workers, progress=cfg.progress,
        label_column=cfg.label_column)
    if cfg.human_labels_path:
        human = read_human_labels(cfg.human_labels_path, key=cfg.human_labels_key)
        check_human_labels(human, path=cfg.human_labels_path, y_train=ds.y_train, num_classes=ds.num_classes,
                           dataset_name=ds.name)
        noisy = human.labels
        rate = float(np.mean(noisy != ds.y_train))
    else:
        transition = read_labels_matrix(cfg.transition_path) if cfg.noise_type == "transition" else None
        features = _instance_features(ds) if cfg.noise_type == "instance" else None
        noisy_result = make_noisy_labels(ds.y_train, noise_type=cfg.noise_type, noise_rate=cfg.noise_rate,
                                         seed=cfg.seed, num_classes=ds.num_classes, features=features,
                                         transition=transition)
        noisy, rate = noisy_result.labels, noisy_result.realised_rate
    noisy = np.asarray(noisy, dtype=np.int64)
    synthetic = not cfg.human_labels_path and cfg.noise_type != "none"
    if cfg.mode == "clothing1m" and ds.x_val is not None:  # Clothing1M: all noisy images train
        return Prepared(ds, noisy, rate, np.arange(ds.y_train.size), None, synthetic, np.asarray(ds.y_val))
    if cfg.mode == "clothing1m" and not (ds.labels_are_clean or synthetic):
        raise InputError(f"the clothing1m mode validates on clean labels, and {ds.name} has no clean validation "
                         f"set and no known true labels; add synthetic noise (--noise-type) or use the benchmark mode")
    train_index, val_index = split_for_validation(ds.y_train.size, seed=cfg.seed, val_fraction=cfg.val_fraction)
    if train_index.size < 1 or val_index.size < 1:
        raise InputError(f"the dataset has only {ds.y_train.size} examples: too few to split into training and validation parts")
    # the clothing1m mode holds the validation part out with its true labels
    val_labels = ds.y_train[val_index] if cfg.mode == "clothing1m" else noisy[val_index]
    return Prepared(ds, noisy, rate, train_index, val_index, synthetic, np.asarray(val_labels, dtype=np.int64))


def _instance_features(ds: Dataset) -> np.ndarray:
    """The raw inputs instance-dependent noise projects: all of them, in memory."""
    if isinstance(ds.x_train, np.ndarray):
        return ds.x_train
    need = ds.x_train.nbytes
    if need > resident_budget(torch.device("cpu")):
        raise InputError(f"instance-dependent noise reads every training image at once ({need / 2**30:.1f} GiB "
                         f"decoded), more than this machine holds; choose --noise-type symmetric or pairflip")
    return ds.x_train.to_array()


def resident_budget(device: torch.device) -> int:
    """Bytes of normalised float32 data a run may keep resident on ``device``: 40 % of a
    GPU's memory (the rest is for the model and its activations), a quarter of the RAM."""
    if device.type == "cuda":
        return int(0.4 * torch.cuda.get_device_properties(device).total_memory)
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 4
    except (ValueError, OSError, AttributeError):
        return 4 << 30


def choose_stream(ds: Dataset, device: torch.device, stream: bool | None) -> bool:
    """Whether the data are streamed from disk (True) or held resident on ``device``:
    ``stream`` when given, else streamed exactly when the normalised images would not fit
    in :func:`resident_budget`."""
    if stream is not None:
        if stream and not ds.is_image:
            raise InputError(f"--stream reads images from disk in batches, but {ds.name} is a feature table; "
                             f"leave --stream out")
        return stream
    if not ds.is_image:
        return False
    values = sum(int(np.prod(x.shape)) for x in (ds.x_train, ds.x_test, ds.x_val) if x is not None)
    return 4 * values > resident_budget(device)


def read_labels_matrix(path: str) -> np.ndarray:
    """A K x K transition matrix from .npy or .csv."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"transition matrix file not found: {path}")
    try:
        m = np.load(p, allow_pickle=False) if p.suffix == ".npy" else np.loadtxt(p, delimiter=",", ndmin=2)
    except Exception as e:
        raise InputError(f"cannot read the transition matrix {path}: {e}") from None
    return np.asarray(m, dtype=np.float64)


def build_problem(prep: Prepared, engine: Engine, *, stream: bool | None = None,
                  workers: int | None = None) -> Problem:
    """Put the prepared data where the engine reads it: resident tensors on its device, or
    streamed sources over the packed store (:func:`choose_stream`)."""
    ds, dev = prep.dataset, engine.device
    kw = dict(mean=ds.mean, std=ds.std, device=dev, channels_last=engine.channels_last, padding=ds.padding)
    if choose_stream(ds, dev, stream):
        # the machine's cores are shared by its processes in a distributed run
        workers = max(1, default_workers() // engine.dist.local_world_size) if workers is None else workers
        source = lambda x, rows=None: StreamedSource(x, rows=rows, workers=workers, **kw)  # noqa: E731
    else:
        # x[:] reads a packed store whole (one batch read, not image by image)
        source = lambda x, rows=None: to_device_data(x[:] if rows is None else x[rows], **kw)  # noqa: E731
    train = source(ds.x_train, prep.train_index)
    lab = lambda a: torch.as_tensor(np.asarray(a, dtype=np.int64), device=dev)  # noqa: E731
    true = true_train_labels(prep)
    known = lab(true) if true is not None else None
    return Problem(
        train=train, train_labels=lab(prep.noisy_labels[prep.train_index]),
        val=source(ds.x_val) if prep.val_index is None else source(ds.x_train, prep.val_index),
        val_labels=lab(prep.val_labels),
        test=source(ds.x_test) if ds.x_test is not None else None,
        test_labels=lab(ds.y_test) if ds.y_test is not None else None,
        num_classes=ds.num_classes, input_shape=train.example_shape, clean_train_labels=known,
    )


@contextlib.contextmanager
def _pause_on_signals():
    """Turn SIGINT/SIGTERM into a polite request: the procedure finishes its current step,
    checkpoints, and returns. A second signal of the same kind stops at once."""
    received: list[int] = []

    def handler(signum, frame):
        # Ctrl-C under torchrun: SIGINT from the terminal, then SIGTERM from torchrun's agent;
        # only a repeat of the same signal means "stop now"
        if signum in received:
            raise KeyboardInterrupt
        received.append(signum)

    old = {}
    try:
        for sig in (signal.SIGINT, signal.SIGTERM):
            old[sig] = signal.signal(sig, handler)
    except ValueError:  # not the main thread: no signal handling
        pass
    try:
        yield received
    finally:
        for sig, h in old.items():
            signal.signal(sig, h)


# -- test hook ---------------------------------------------------------------------------
# MEMOMENTUM_TEST_KILL_AT=POINT:N makes the process SIGKILL itself at the N-th (1-based)
# occurrence of POINT in this process, so that tests can check that a run killed at any
# point resumes exactly (tests/test_resume.py). POINT is one of
#   step              right after a training step
#   epoch             after an epoch has finished, before its checkpoint is written
#   round             at a phase boundary (first phase -> inner round, round -> round,
#                     last round -> next outer loop or the end), after the checkpoint
#   checkpoint-write  inside a checkpoint write: half of the temporary file written,
#                     not yet renamed over checkpoint.pt
# Not for users. This is the only place that reads the variable.
KILL_AT_ENV = "MEMOMENTUM_TEST_KILL_AT"
KILL_POINTS = ("step", "epoch", "round", "checkpoint-write")


class _KillHook:
    def __init__(self, spec: str):
        self.point, self.n, self.count = None, 0, 0
        if spec:
            point, _, n = spec.rpartition(":")
            if point not in KILL_POINTS or not n.isdigit() or int(n) < 1:
                raise ValueError(f"{KILL_AT_ENV}={spec!r}: expected POINT:N with POINT in {', '.join(KILL_POINTS)}")
            self.point, self.n = point, int(n)

    def __call__(self, point: str) -> None:
        if point == self.point:
            self.count += 1
            if self.count == self.n:
                os.kill(os.getpid(), signal.SIGKILL)

    def at(self, point: str):
        """A callable for one point, or None when the hook is not aimed at it."""
        return (lambda: self(point)) if point == self.point else None


def run(config: RunConfig, *, resume: bool = False, overwrite: bool = False, write: bool = True,
        dataset: Dataset | None = None) -> RunResult:
    """Run Me-Momentum (or the cross-entropy baseline) end to end.

    Args:
        config: the run's configuration; ``None`` fields take the dataset's defaults.
        resume: continue the unfinished run in ``config.out`` (its saved configuration is
            used; result-changing keys in ``config`` must match it).
        overwrite: replace a finished or unfinished run in ``config.out``.
        write: write the run directory (False keeps everything in memory).
        dataset: data already in memory (see :func:`memomentum.data.dataset_from_arrays`);
            ``config.dataset`` then only names it in reports.

    Returns:
        :class:`RunResult` with the summary dictionary, the run directory and the
        procedure (for its state and best model).

    Raises:
        InputError: for any bad input, before anything is written.
        Interrupted: after SIGINT/SIGTERM, once a checkpoint has been written.
        memomentum.training.distributed.PeerLost: under torchrun, when another process of the run
            died or stopped answering (the last checkpoint stays for ``--resume``).

    Under ``torchrun`` each process calls this function: the processes share the training
    and prediction work (docs/distributed.md) and rank 0 alone writes the run directory.
    """
    t_start = time.perf_counter()
    config.validate()
    with distributed.process_group(choose_device(config.device)) as (dist, device):
        return _run(config, dist, device, t_start, resume=resume, overwrite=overwrite, write=write, dataset=dataset)


def _run(config: RunConfig, dist: distributed.Distributed, device: torch.device, t_start: float, *, resume: bool,
         overwrite: bool, write: bool, dataset: Dataset | None) -> RunResult:
    """:func:`run` inside the run's process group (``dist``; none for a plain run)."""
    writes = write and dist.is_main  # rank 0 alone writes the run directory
    run_dir = Path(config.out) if config.out else default_run_dir(config)
    saved = None
    if write:
        check_run_dir(run_dir, resume=resume, overwrite=overwrite)
        if resume:
            saved = outputs.read_checkpoint(run_dir)
            differ = config_differences(saved["config"], config)
            if differ:
                raise InputError(f"cannot resume {run_dir}: these settings differ from the saved run: {', '.join(differ)}")
    if config.pretrained not in (None, "none"):  # before packing images, which can take an hour
        check_weights_file(config.pretrained)
    prep = prepare(config, dataset)
    fingerprint = data_fingerprint(prep.dataset, prep.noisy_labels)
    changed = data_changes(saved.get("data") if saved else None, fingerprint)
    if changed:
        raise InputError(f"cannot resume {run_dir}: its data changed since the run started ({', '.join(changed)}); "
                         f"resume with the data it started with, or start a new run")
    cfg = config.resolved(prep.dataset.default_model)
    cfg.validate()
    cfg = dataclasses.replace(cfg, pretrained=resolve_pretrained(cfg, prep.dataset))
    n_train = prep.train_index.size
    if n_train < cfg.batch_size:
        raise InputError(f"the training part has {n_train} examples (--val-fraction {cfg.val_fraction:g} holds out "
                         f"{prep.val_labels.size}), fewer than one batch of {cfg.batch_size}; lower --batch-size "
                         f"or --val-fraction")

    # The thread count fixes the numerics, so it never depends on the load (memomentum.training.threads).
    thread_policy = distributed.share_cores(choose_threads(cfg.threads, model=cfg.model), dist).apply()
    if saved is not None and saved.get("threads", thread_policy.threads) != thread_policy.threads:
        print(f"memomentum: warning: this run was started with {saved['threads']} CPU threads and continues with "
              f"{thread_policy.threads}; the thread count sets the order of float sums, so the results may differ "
              f"in the last bits from an uninterrupted run (--threads {saved['threads']} keeps them)", file=sys.stderr)
    # torch.compile only where it pays: measured slower on the CPU (and it needs a C++
    # compiler there), so --compile is a GPU option.
    engine = Engine(device=device, augment=prep.dataset.augment, batch_size=cfg.batch_size,
                    predict_chunk=cfg.predict_chunk, compile=cfg.compile and device.type == "cuda", dist=dist)
    problem = build_problem(prep, engine, stream=cfg.stream, workers=cfg.workers)
    _check_model(cfg, problem)
    records = RunRecords.for_run(cfg, problem)  # the rounds' confident sets, --track-difficulty
    kill = _KillHook(os.environ.get(KILL_AT_ENV, ""))  # test hook, see above

    # From here on SIGINT/SIGTERM pause the run (after the current step) instead of killing it;
    # without a run directory to checkpoint into they keep their usual meaning.
    # The run directory is created (or cleared), locked against a second writer and checked
    # again under its lock (memomentum.runner.rundir); the lock goes when this block ends, however.
    if write:
        dist.barrier()  # every process has checked the directory before rank 0 changes it
    held = open_run_dir(run_dir, resume=resume, overwrite=overwrite) if writes else contextlib.nullcontext(False)
    with _pause_on_signals() if write else contextlib.nullcontext([]) as received, held as created:
        if writes:  # also on resume, from the checkpoint: config.json always describes the run it holds
            try:
                outputs.write_json(run_dir / outputs.CONFIG, saved["resolved"] if saved else cfg.to_dict())
            except OSError as e:
                raise write_failed(e, run_dir, created) from None

        bar = _progress_bar(cfg) if dist.is_main else None
        state_extra = {"config": config.to_dict(), "resolved": cfg.to_dict(), "threads": thread_policy.threads,
                       "data": fingerprint}
        previous_elapsed = saved.get("elapsed", 0.0) if saved else 0.0
        elapsed = lambda: previous_elapsed + time.perf_counter() - t_start  # noqa: E731
        midway = kill.at("checkpoint-write")
        history = LiveHistory(run_dir / HISTORY, history_columns(cfg, problem.num_classes))

        def save(proc: Procedure) -> None:
            if writes:
                try:
                    outputs.write_torch(run_dir / outputs.CHECKPOINT, {**state_extra, "procedure": proc.state_dict(),
                                                                          "records": records.state_dict(),
                                                                          "elapsed": elapsed()}, midway=midway)
                    history.extend(proc.state.history)  # history.csv follows the checkpoint, epoch by epoch
                except OSError as e:
                    raise write_failed(e, run_dir, created) from None
            if write:
                dist.barrier()  # rank 0's checkpoint is on disk before any process goes on (or stops)

        def start_history(proc: Procedure) -> None:  # the rows the checkpoint holds, none lost or doubled
            try:
                history.start(proc.state.history)
            except OSError as e:
                raise write_failed(e, run_dir, created) from None

        def checkpoint(proc: Procedure) -> None:  # after every epoch, and when paused
            records.observe(proc)
            kill("epoch")
            save(proc)
            if not proc.state.phase_started:
                kill("round")

        def should_pause() -> bool:
            kill("step")
            return bool(received)

        procedure = Clothing1MProcedure if cfg.mode == "clothing1m" else Procedure
        proc = procedure(config=cfg, problem=problem, engine=engine, on_checkpoint=checkpoint,
                         should_pause=should_pause, progress=bar, on_epoch_end=records.on_epoch_end)
        if saved is not None:
            proc.load_state_dict(saved["procedure"])
            records.load_state_dict(saved.get("records"), state=proc.state)
        else:
            save(proc)  # from now on the directory can be resumed, whatever happens
        if writes:
            start_history(proc)
        try:
            proc.run()
        except TrainingDiverged as e:
            if writes and not resume and discard_run(run_dir, created):  # a resumed run keeps its last checkpoint
                raise TrainingDiverged(f"{e}; the run that --overwrite was to replace is back in {run_dir}") from None
            raise
        finally:
            if bar:
                bar.close()
        if proc.paused:  # a process that got no signal pauses because another one did
            raise Interrupted(received[0] if received else signal.SIGTERM, run_dir)

        final = final_predictions(proc)  # one prediction pass serves the summary and examples.csv
        summary = _summary(cfg, prep, proc, final, device, thread_policy, elapsed())
        summary.update(dist.describe())
        if records.tracker is not None:
            summary["difficulty"] = records.difficulty(given=prep.noisy_labels[prep.train_index],
                                                       final_confident=final_confident_mask(proc, final))
        if writes:
            try:
                _write_results(run_dir, cfg, prep, problem, proc, final, summary, records)
            except OSError as e:
                for name in RESULT_FILES:  # all or nothing: the checkpoint stays for --resume
                    (run_dir / name).unlink(missing_ok=True)
                raise write_failed(e, run_dir, created) from None
            forget_previous(run_dir)  # the results are complete: the run --overwrite replaced goes
            _write_report_or_warn(run_dir, prep.dataset)
    return RunResult(summary=summary, run_dir=run_dir if write else None, procedure=proc)


def _write_report_or_warn(run_dir: Path, dataset: Dataset) -> None:
    """``report.html`` when matplotlib is installed. The results are complete by now, so a
    report that cannot be rendered is a warning, never a failed run."""
    if importlib.util.find_spec("matplotlib") is None:
        return
    try:
        from .report import write_report
        write_report(run_dir, dataset=dataset)
    except Exception as e:  # noqa: BLE001 - whatever went wrong, the run itself succeeded
        print(f"memomentum: warning: the run finished, but its report could not be written ({type(e).__name__}: {e}); "
              f"try again with: memomentum report {shlex.quote(str(run_dir))}", file=sys.stderr)


def _check_model(cfg: RunConfig, problem: Problem) -> None:
    """Build the network once (with its pretrained weights), so that a model that does not
    fit the data or a bad weights file is refused before anything is written."""
    with torch.random.fork_rng(devices=[]):
        model = create_model(cfg.model, input_shape=problem.input_shape, num_classes=problem.num_classes)
    if cfg.pretrained not in (None, "none"):
        load_pretrained(model, cfg.pretrained, model_name=cfg.model)


def resolve_pretrained(cfg: RunConfig, ds: Dataset) -> str:
    """The weights file a run starts from, or ``"none"``.

    ``--pretrained PATH`` and ``--pretrained none`` are taken as given. Otherwise image-file
    datasets look for torchvision's file in torch's hub cache (never downloading):
    Clothing1M refuses to start without it (its protocol fine-tunes ImageNet weights), an
    image folder trains from scratch and says so. Other datasets train from scratch.
    """
    if cfg.pretrained is not None:
        return cfg.pretrained
    imagenet_shaped = cfg.model == "resnet50" or (ds.is_image and min(ds.x_train.shape[1:3]) >= IMAGENET_MIN_SIDE)
    if ds.source is None or cfg.model not in KNOWN_FILES or not imagenet_shaped:
        return "none"
    found = find_pretrained(cfg.model)
    if found is not None:
        return str(found)
    if ds.name == "clothing1m":
        raise InputError(missing_weights_message(cfg.model))
    print(f"memomentum: note: training {cfg.model} from scratch: no ImageNet weights found "
          f"({missing_weights_message(cfg.model)})", file=sys.stderr)
    return "none"


def _summary(cfg: RunConfig, prep: Prepared, proc: Procedure, final, device, thread_policy: ThreadPolicy,
             wall: float) -> dict:
    s = proc.state
    noisy_train = prep.noisy_labels[prep.train_index]
    final_index = final_confident_index(proc, final)
    summary = {
        "dataset": cfg.dataset, "method": cfg.method, "mode": cfg.mode, "model": cfg.model,
        "noise_type": "human" if cfg.human_labels_path else cfg.noise_type,
        "noise_rate": None if cfg.human_labels_path else cfg.noise_rate, "realised_noise_rate": round(100 * prep.realised_rate, 2),
        "seed": cfg.seed, "reference_quirks": cfg.reference_quirks,
        "test_accuracy": s.run_best_test, "best_val_accuracy": s.run_best_val, "best_at": s.run_best_where,
        "n_train": int(prep.train_index.size), "n_val": int(prep.val_labels.size),
        "epochs_run": len(s.history), "wall_time_s": round(wall, 2),
        "time_s": {k: round(v, 2) for k, v in s.timings.items()},
        "device": str(device), **thread_policy.to_dict(),
        "rounds": s.rounds,
        "final_confident": proc.confident_stats(final_index),
    }
    if isinstance(proc, Clothing1MProcedure) and proc.problem.test is not None:
        # the per-class assembled predictor, which the reference never builds: does it help?
        assembled = proc.assembled_predict(proc.problem.test)
        summary["assembled_test_accuracy"] = (None if assembled is None else
                                              round(accuracy(assembled, proc.problem.test_labels), 2))
    true = true_train_labels(prep)
    if true is not None:
        known = true >= 0
        summary["noisy_label_precision"] = round(100 * float(np.mean(noisy_train[known] == true[known])), 2)
        if not known.all():
            summary["n_known_labels"] = int(known.sum())
    return summary


def true_train_labels(prep: Prepared) -> np.ndarray | None:
    """The true labels of the training part T where known (-1 elsewhere), or None."""
    ds = prep.dataset
    if ds.labels_are_clean or prep.synthetic_noise:
        return ds.y_train[prep.train_index]
    if ds.known_train_labels is not None:
        return ds.known_train_labels[prep.train_index]
    return None


def final_confident_index(proc: Procedure, final) -> torch.Tensor:
    """The final confident set (indices into T): the examples the best model agrees with, or
    in the clothing1m mode the last per-class extraction."""
    if isinstance(proc, Clothing1MProcedure):
        return proc.state.train_index
    pred = final[0]
    return torch.nonzero(pred == proc.problem.train_labels).flatten()


def final_confident_mask(proc: Procedure, final) -> np.ndarray:
    """:func:`final_confident_index` as a boolean array over T."""
    mask = np.zeros(proc.problem.train_labels.numel(), dtype=bool)
    mask[final_confident_index(proc, final).cpu().numpy()] = True
    return mask


def final_predictions(proc: Procedure) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The best model's prediction, its confidence and the softmax probabilities (N, K)
    for every example of T, from one prediction pass."""
    model = proc.best_model()
    probs = proc.engine.predict_proba(model, model, proc.problem.train, num_classes=proc.problem.num_classes)
    conf, pred = probs.max(dim=1)
    return pred, conf, probs


def _write_results(run_dir: Path, cfg: RunConfig, prep: Prepared, problem: Problem, proc: Procedure, final,
                   summary: dict, records: RunRecords) -> None:
    s = proc.state
    pred, _, probs = final
    # history.csv is complete already: it grew with the checkpoint, epoch by epoch (rundir.LiveHistory)
    names = prep.dataset.class_names
    verdict = verdict_columns(given=prep.noisy_labels[prep.train_index], predicted=pred.cpu().numpy(),
                              probabilities=probs.cpu().numpy(), confident=final_confident_mask(proc, final),
                              class_names=names)
    outputs.write_examples(run_dir / "examples.csv", index=prep.train_index, verdict=verdict,
                           true=true_train_labels(prep), files=prep.dataset.train_files,
                           rows=prep.dataset.train_rows, class_names=names)
    records.write_rounds(run_dir / ROUNDS_FILE, index=prep.train_index)
    if prep.dataset.class_names is not None:
        outputs.write_json(run_dir / "classes.json", list(prep.dataset.class_names))
    weights = s.run_best_weights if s.run_best_weights is not None else s.outer_best_weights
    outputs.write_torch(run_dir / "model.pt", {"model": cfg.model, "num_classes": problem.num_classes,
                                               "input_shape": list(problem.input_shape),
                                               "mean": list(prep.dataset.mean), "std": list(prep.dataset.std),
                                               "state_dict": {k: v.cpu() for k, v in weights.items()}})
    outputs.write_json(run_dir / outputs.SUMMARY, summary)  # last: marks the run finished
    (run_dir / outputs.CHECKPOINT).unlink(missing_ok=True)


class _Bar:
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
            return f"one phase of at most {cfg.epochs} epochs"
        rounds = cfg.max_inner_loop - 1 if cfg.mode == "benchmark" else cfg.max_inner_loop
        return (f"at most {cfg.max_outer_loop} outer loops of a first phase and {rounds} rounds, "
                f"{cfg.epochs} epochs each")

    @staticmethod
    def _where(d: dict) -> str:
        return f"outer {d['outer']} " + ("first phase" if d["inner"] == 0 else f"round {d['inner']}")

    def steps_done(self, where: dict, done: int, total: int, images_per_s: float) -> None:
        self.bar.set_postfix_str(f"{self._where(where)} | epoch {where['epoch']}/{self.cfg.epochs} "
                                 f"{100 * done / max(total, 1):.0f}% | {images_per_s:,.0f} img/s")

    def epoch_done(self, row: dict, images_per_s: float) -> None:
        self.bar.set_postfix_str(f"{self._where(row)} | train {row['n_train']} | val {row['val_accuracy']:.2f}% | "
                                 f"{images_per_s:,.0f} img/s")
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()


def _progress_bar(cfg: RunConfig):
    return _Bar(cfg) if cfg.progress else None

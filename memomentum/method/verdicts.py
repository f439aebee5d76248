"""Per-example verdicts in the terms users of cleanlab know: ``is_label_issue``,
``label_quality``, ``given_label``, ``predicted_label``; the confident set of every round,
kept for later inspection (``rounds.npz``); and :func:`find_label_issues`.

How ``label_quality`` is made
-----------------------------
From two things the run already has: the final confident set (Me-Momentum's verdict) and
``p``, the final network's softmax probability of the *given* label (cleanlab calls this
score "self-confidence"). Confident examples get ``0.5 + p / 2`` (in [0.5, 1]), the others
``p / 2`` (in [0, 0.5]). Why not ``p`` alone: the verdict and the ranking then never
disagree. The ``n`` label issues are exactly the ``n`` lowest-ranked examples (up to ties at
0.5), so a user who reads the ranked list from the bottom meets every flagged example before
any confident one; and in the clothing1m mode the confident set comes from the per-class
extraction, not from the single best network, and ``p`` alone could rank an example the
method kept below one it rejected. Within each group the order is cleanlab's
self-confidence, which is monotone in ``label_quality``: ``p = 2 * label_quality - 1`` for
confident examples and ``p = 2 * label_quality`` for the others.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..errors import InputError

RANKINGS = (None, "label_quality")


def label_quality(*, confident: np.ndarray, given_probability: np.ndarray) -> np.ndarray:
    """The label quality score in [0, 1] (higher = more likely correct; see the module's
    docstring): ``0.5 + p / 2`` for confident examples, ``p / 2`` for the others.

    Args:
        confident: boolean (N,), the final confident set.
        given_probability: (N,), the final network's softmax probability of each given label.
    """
    p = np.clip(np.asarray(given_probability, dtype=np.float64), 0.0, 1.0)
    return np.where(np.asarray(confident, dtype=bool), 0.5 + p / 2, p / 2)


def verdict_columns(*, given: np.ndarray, predicted: np.ndarray, probabilities: np.ndarray,
                    confident: np.ndarray, class_names=None) -> dict[str, np.ndarray]:
    """The verdict for each example, as columns of equal length N.

    Args:
        given: the given (possibly noisy) labels, class numbers 0..K-1, shape (N,).
        predicted: the final network's predicted class numbers, shape (N,).
        probabilities: the final network's softmax probabilities, shape (N, K).
        confident: boolean (N,), the final confident set: the examples Me-Momentum trusts.
        class_names: the user's names of the classes in class-number order, or None to
            show the class numbers.

    Returns:
        A dict with ``given_label`` and ``predicted_label`` (the user's class names when
        given, else the class numbers), ``confidence`` (the probability of the predicted
        class), ``is_label_issue`` (boolean: not in the final confident set) and
        ``label_quality`` (see :func:`label_quality`).
    """
    given = np.asarray(given, dtype=np.int64)
    predicted = np.asarray(predicted, dtype=np.int64)
    probabilities = np.asarray(probabilities)
    confident = np.asarray(confident, dtype=bool)
    n = given.size
    if predicted.shape != (n,) or confident.shape != (n,) or probabilities.ndim != 2 or probabilities.shape[0] != n:
        raise ValueError(f"verdict_columns needs N labels, predictions and confident flags and (N, K) probabilities; "
                         f"got {given.shape}, {predicted.shape}, {confident.shape} and {probabilities.shape}")
    rows = np.arange(n)
    names = None if class_names is None else np.asarray(list(class_names), dtype=object)
    show = (lambda c: c) if names is None else (lambda c: names[c])  # noqa: E731
    return {
        "given_label": show(given),
        "predicted_label": show(predicted),
        "confidence": probabilities[rows, predicted].astype(np.float64),
        "is_label_issue": ~confident,
        "label_quality": label_quality(confident=confident, given_probability=probabilities[rows, given]),
    }


def ranked_issues(is_label_issue: np.ndarray, quality: np.ndarray) -> np.ndarray:
    """Indices of the label issues, most likely label error (lowest quality) first; ties
    keep the examples' order."""
    issues = np.flatnonzero(is_label_issue)
    return issues[np.argsort(quality[issues], kind="stable")]


# -- the confident set of every round -------------------------------------------------------
ROUNDS_FILE = "rounds.npz"


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
        # ({"outer", "inner"}, np.packbits of the mask over T; None: recorded by an older version)
        self.sets: list[tuple[dict, np.ndarray | None]] = []

    def observe(self, state) -> None:
        for record in state.rounds[len(self.sets):]:
            index = state.train_index
            if index.numel() != record["n_confident"]:  # the record and the set must describe the same round
                raise RuntimeError(f"round {round_label(record)}: {index.numel()} examples held, "
                                   f"the record says {record['n_confident']}")
            mask = torch.zeros(self.n_train, dtype=torch.bool, device=index.device)
            mask[index] = True
            self.sets.append(({"outer": record["outer"], "inner": record["inner"]}, np.packbits(mask.cpu().numpy())))

    def masks(self, name=round_key) -> dict[str, np.ndarray]:
        """One boolean array over T per round, in round order, named by ``name(record)``
        (rounds recorded before a resume from an older version's checkpoint are missing)."""
        return {name(record): np.unpackbits(packed, count=self.n_train).astype(bool)
                for record, packed in self.sets if packed is not None}

    def state_dict(self) -> dict:
        return {"n_train": self.n_train, "sets": list(self.sets)}

    def load_state_dict(self, d: dict | None, *, state=None) -> None:
        """Restore; ``d`` None (a checkpoint without round sets) leaves the rounds ``state``
        already holds unrecorded."""
        if d is not None:
            self.n_train, self.sets = d["n_train"], list(d["sets"])
        elif state is not None:
            self.sets = [({"outer": r["outer"], "inner": r["inner"]}, None) for r in state.rounds]


def read_rounds(run_dir) -> dict[str, np.ndarray]:
    """The per-round confident sets of a finished run: ``{"outer1_inner1": mask, ...}``,
    each a boolean array over the rows of ``examples.csv`` (the training part T, in the
    order of ``index``)."""
    with np.load(Path(run_dir) / ROUNDS_FILE, allow_pickle=False) as f:
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
    def for_run(cls, cfg, problem) -> "RunRecords":
        """Raises InputError for ``track_difficulty`` without known true labels."""
        tracker = None
        if cfg.track_difficulty:
            from .difficulty import DifficultyTracker
            if problem.clean_train_labels is None:
                raise InputError("--track-difficulty needs the true labels of the training examples, and this run "
                                 "takes its labels as given; add synthetic noise (--noise-type) or leave "
                                 "--track-difficulty out")
            tracker = DifficultyTracker(problem.clean_train_labels)
        return cls(len(problem.train), tracker)

    @property
    def on_epoch_end(self):
        return self.tracker

    def observe(self, proc) -> None:
        self.round_sets.observe(proc.state)

    def state_dict(self) -> dict:
        return {"round_sets": self.round_sets.state_dict(),
                "difficulty": None if self.tracker is None else self.tracker.state_dict()}

    def load_state_dict(self, d: dict | None, *, state=None) -> None:
        """Restore from a checkpoint; ``state`` (the procedure's) covers checkpoints that
        hold no records."""
        self.round_sets.load_state_dict(None if d is None else d["round_sets"], state=state)
        if d is not None and self.tracker is not None:
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
        from ..runner.outputs import write_npz
        order = np.argsort(index, kind="stable")
        write_npz(path, {key: mask[order] for key, mask in self.round_sets.masks().items()})


# -- find_label_issues ------------------------------------------------------------------------
# RunConfig fields that choose data, add noise or write a run directory: meaningless for
# labels and features handed over in memory, so refused rather than silently ignored.
NOT_FOR_GIVEN_LABELS = ("dataset", "data_dir", "noise_type", "noise_rate", "transition_path", "human_labels_path",
                        "human_labels_key", "out", "label_column", "image_size", "cache_dir", "store_format",
                        "train_set", "pretrained")


def find_label_issues(labels, *, features, return_indices_ranked_by: str | None = None, config=None,
                      **run_options):
    """Find the examples whose given label is likely wrong, with Me-Momentum.

    Trains a Me-Momentum run (through :func:`memomentum.api.run`, nothing written to disk) on
    ``features`` with ``labels`` taken as given, and returns cleanlab's kind of answer: a
    boolean mask over the examples, or the indices of the issues ranked by label quality.

    Unlike ``cleanlab.filter.find_label_issues`` this takes no ``pred_probs``: Me-Momentum
    finds the issues by training its own network, so it needs the examples themselves.
    The run splits the examples as every run does: the training part T (90 % by default)
    gets Me-Momentum's verdict (not in the final confident set = issue); the held-out
    validation part V, which the networks never train on, gets the same rule the benchmark
    mode applies to T at the end: an issue where the best network disagrees with the given
    label. Every example thus gets a verdict from the same final network.

    Args:
        labels: integer class labels 0..K-1, shape (N,), each class present.
        features: numeric features (N, D) or uint8 images (N, H, W[, C]), in the order of
            ``labels``.
        return_indices_ranked_by: ``None`` returns the boolean mask (True = label issue);
            ``"label_quality"`` returns the indices of the issues, the lowest label quality
            (most likely error) first.
        config: a :class:`memomentum.RunConfig` for full control over the run (its
            ``dataset``, ``noise_type`` and ``out`` are ignored: the labels are taken as
            given and nothing is written); default: the package's defaults for the data.
        **run_options: :class:`memomentum.RunConfig` fields to set on top of ``config``,
            e.g. ``model="lenet", epochs=20, seed=1, progress=False``.

    Returns:
        ``np.ndarray``: boolean (N,), or int64 indices into ``labels``.

    Raises:
        InputError: for bad labels, features or options.

    Example:
        >>> issues = find_label_issues(y_noisy, features=X, epochs=30)
        >>> ranked = find_label_issues(y_noisy, features=X, return_indices_ranked_by="label_quality")
    """
    if return_indices_ranked_by not in RANKINGS:  # checked before any training
        raise InputError(f"return_indices_ranked_by must be None or 'label_quality', got {return_indices_ranked_by!r}")
    verdict = label_verdicts(labels, features=features, config=config, **run_options)
    if return_indices_ranked_by is None:
        return verdict["is_label_issue"]
    return ranked_issues(verdict["is_label_issue"], verdict["label_quality"])


def label_verdicts(labels, *, features, config=None, **run_options) -> dict[str, np.ndarray]:
    """:func:`verdict_columns` for every example of ``features`` (see :func:`find_label_issues`,
    which takes the same arguments), plus ``in_training_part`` (True for T, False for V)."""
    import dataclasses

    from ..api import run
    from ..config import RunConfig
    from ..data import dataset_from_arrays
    from ..data.split import train_val_split

    if config is not None and not isinstance(config, RunConfig):
        raise InputError(f"config must be a memomentum.RunConfig or None, got {type(config).__name__}")
    names = {f.name for f in dataclasses.fields(RunConfig)}
    unknown = sorted(set(run_options) - names)
    if unknown:
        raise InputError(f"unknown run option {unknown[0]!r}; the options are RunConfig's fields "
                         f"(e.g. model, epochs, seed)")
    ignored = sorted(set(run_options) & set(NOT_FOR_GIVEN_LABELS))
    if ignored:
        raise InputError(f"the run option {ignored[0]!r} does not apply here: the labels and features are taken as "
                         f"given (no noise is added, nothing is read from or written to disk)")
    ds = dataset_from_arrays(features, labels, name="arrays", where="the examples given to find_label_issues")
    base = config if config is not None else RunConfig(progress=False)
    cfg = dataclasses.replace(base, **{**run_options, "dataset": "arrays", "noise_type": "none", "noise_rate": None,
                                                "out": None})
    if cfg.mode != "benchmark":
        raise InputError("find_label_issues runs the benchmark mode (noisy validation split); leave mode unset")
    result = run(cfg, write=False, dataset=ds)
    train_index, val_index = train_val_split(ds.y_train.size, seed=cfg.seed, train_fraction=1 - cfg.val_fraction)
    return verdicts_of_run(result.procedure, given=ds.y_train, train_index=train_index, val_index=val_index)


def verdicts_of_run(proc, *, given: np.ndarray, train_index: np.ndarray, val_index: np.ndarray) -> dict[str, np.ndarray]:
    """:func:`verdict_columns` over all the examples of a finished benchmark-mode run (held
    in memory): the training part T by the final confident set, the validation part V by
    the same rule (the best network agrees with the given label). ``given`` holds the given
    labels of all N examples, ``train_index`` / ``val_index`` the run's split; adds
    ``in_training_part``."""
    model = proc.best_model()
    engine = proc.engine
    n = len(given)
    probs = np.empty((n, proc.problem.num_classes), dtype=np.float32)
    probs[train_index] = engine.predict_proba(model, model, proc.problem.train).cpu().numpy()
    probs[val_index] = engine.predict_proba(model, model, proc.problem.val).cpu().numpy()
    predicted = probs.argmax(1)
    given = np.asarray(given, dtype=np.int64)
    # the benchmark mode's final confident set: the best network agrees with the given label
    # (on T as the run itself reports it, and by the same rule on V)
    verdict = verdict_columns(given=given, predicted=predicted, probabilities=probs, confident=predicted == given)
    in_train = np.zeros(n, dtype=bool)
    in_train[train_index] = True
    verdict["in_training_part"] = in_train
    return verdict

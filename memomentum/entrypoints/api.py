"""The Python API: one call runs the whole pipeline,

    data -> noise -> split -> procedure (engine + models) -> outputs

and :func:`find_label_issues` / :func:`label_verdicts` answer cleanlab's question with it.

>>> from memomentum import RunConfig, run
>>> result = run(RunConfig(dataset="digits", out="runs/demo"))
>>> result.summary["test_accuracy"]
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np

from ..base.errors import InputError
from ..config import RunConfig
from ..data import Dataset, dataset_from_arrays
from ..method.verdicts import RANKINGS, ranked_issues, verdict_columns
from ..runner.pipeline import RunResult, default_run_dir, run_pipeline
from ..runner.signals import Interrupted
from ..training import distributed
from ..training.engine import choose_device
from .report import write_report_or_warn

__all__ = ["Interrupted", "RunResult", "default_run_dir", "find_label_issues", "label_verdicts", "run"]


def run(
    config: RunConfig,
    *,
    resume: bool = False,
    overwrite: bool = False,
    write: bool = True,
    dataset: Dataset | None = None,
    network=None,
) -> RunResult:
    """Run Me-Momentum (or the cross-entropy baseline) end to end.

    Parameters
    ----------
    config : RunConfig
        The run's configuration; ``None`` fields take the dataset's defaults.
    resume : bool, default False
        Continue the unfinished run in ``config.out`` (its saved configuration is used;
        result-changing keys in ``config`` must match it).
    overwrite : bool, default False
        Replace a finished or unfinished run in ``config.out``.
    write : bool, default True
        Write the run directory; False keeps everything in memory.
    dataset : memomentum.data.Dataset or None, default None
        Data already in memory (see `memomentum.data.dataset_from_arrays`);
        ``config.dataset`` then only names it in reports.
    network : callable or None, default None
        A function ``(input_shape, num_classes) -> torch.nn.Module`` that builds a fresh
        network (called under each outer loop's seed), in place of ``config.model`` (which
        still names it in the outputs).

    Returns
    -------
    RunResult
        The summary dictionary (``result.summary``, as in ``summary.json``), the run
        directory, the procedure (its state and best model), the data as split, and the best
        model's predictions on the training part with the final confident set.

    Raises
    ------
    InputError
        For any bad input, before anything is written.
    Interrupted
        After SIGINT/SIGTERM, once a checkpoint has been written.
    memomentum.training.distributed.PeerLost
        Under torchrun, when another process of the run died or stopped answering (the last
        checkpoint stays for ``--resume``).

    Notes
    -----
    Under ``torchrun`` each process calls this function: the processes share the training
    and prediction work (docs/distributed.md) and rank 0 alone writes the run directory.

    Examples
    --------
    >>> from memomentum import RunConfig, run
    >>> result = run(RunConfig(dataset="fashion-mnist", noise_type="instance", noise_rate=0.4, out="runs/x"))
    >>> result.summary["test_accuracy"]
    """
    t_start = time.perf_counter()
    with distributed.process_group(choose_device(config.device)) as (dist, device):
        return run_pipeline(
            config,
            dist,
            device,
            t_start,
            resume=resume,
            overwrite=overwrite,
            write=write,
            dataset=dataset,
            network=network,
            on_finished=write_report_or_warn,
        )


# -- find_label_issues ------------------------------------------------------------------------
# RunConfig fields that choose data, add noise or write a run directory: meaningless for
# labels and features handed over in memory, so refused rather than silently ignored.
NOT_FOR_GIVEN_LABELS = (
    "dataset",
    "data_dir",
    "noise_type",
    "noise_rate",
    "noise_seed",
    "transition_path",
    "human_labels_path",
    "human_labels_key",
    "out",
    "label_column",
    "image_size",
    "cache_dir",
    "store_format",
    "train_set",
    "pretrained",
    "workers",
    "stream",
)


def find_label_issues(labels, *, features, return_indices_ranked_by: str | None = None, config=None, **run_options):
    """Find the examples whose given label is likely wrong, with Me-Momentum.

    Trains a Me-Momentum run (through [`run`][memomentum.entrypoints.api.run], nothing written to disk) on
    ``features`` with ``labels`` taken as given, and returns cleanlab's kind of answer: a
    boolean mask over the examples, or the indices of the issues ranked by label quality.

    Unlike ``cleanlab.filter.find_label_issues`` this takes no ``pred_probs``: Me-Momentum
    finds the issues by training its own network, so it needs the examples themselves.
    The run splits the examples as every run does: the training part T (90 % by default)
    gets Me-Momentum's verdict (not in the final confident set = issue); the held-out
    validation part V, which the networks never train on, gets the same rule the benchmark
    mode applies to T at the end: an issue where the best network disagrees with the given
    label. Every example thus gets a verdict from the same final network.

    Parameters
    ----------
    labels : array_like of int, shape (N,)
        Integer class labels 0..K-1, each class present.
    features : array_like, shape (N, D) or (N, H, W[, C])
        Numeric features, or uint8 images, in the order of ``labels``.
    return_indices_ranked_by : {None, "label_quality"}, default None
        ``None`` returns the boolean mask (True = label issue); ``"label_quality"`` returns
        the indices of the issues, the lowest label quality (most likely error) first (ties:
        the most confident prediction first).
    config : RunConfig or None, default None
        For full control over the run (its ``dataset``, ``noise_type`` and ``out`` are
        ignored: the labels are taken as given and nothing is written); default: the
        package's defaults for the data.
    **run_options
        [`RunConfig`][memomentum.config.RunConfig] fields to set on top of ``config``, e.g.
        ``model="lenet", epochs=20, seed=1, progress=False``.

    Returns
    -------
    numpy.ndarray
        bool, shape (N,): the mask of label issues; or, with
        ``return_indices_ranked_by="label_quality"``, int64, shape (number of issues,):
        indices into ``labels``, most likely error first.

    Raises
    ------
    InputError
        For bad labels, features or options.

    Examples
    --------
    >>> issues = find_label_issues(y_noisy, features=X, epochs=30)
    >>> ranked = find_label_issues(y_noisy, features=X, return_indices_ranked_by="label_quality")
    """
    if return_indices_ranked_by not in RANKINGS:  # checked before any training
        raise InputError(f"return_indices_ranked_by must be None or 'label_quality', got {return_indices_ranked_by!r}")
    verdict = label_verdicts(labels, features=features, config=config, **run_options)
    if return_indices_ranked_by is None:
        return verdict["is_label_issue"]
    return ranked_issues(verdict["is_label_issue"], verdict["label_quality"], verdict["confidence"])


def label_verdicts(labels, *, features, config=None, **run_options) -> dict[str, np.ndarray]:
    """:func:`~memomentum.method.verdicts.verdict_columns` for every example of ``features``
    (see :func:`find_label_issues`, which takes the same arguments), plus
    ``in_training_part`` (True for T, False for V)."""
    settings = _given_labels_config(config, run_options)
    ds = dataset_from_arrays(features, labels, name="arrays", where="the input of find_label_issues")
    if settings.mode != "benchmark":
        raise InputError("find_label_issues runs the benchmark mode (noisy validation split); leave mode unset")
    return verdicts_of_run(run(settings, write=False, dataset=ds))


def _given_labels_config(config, run_options: dict) -> RunConfig:
    """The run's configuration for labels taken as given: no noise, nothing written."""
    if config is not None and not isinstance(config, RunConfig):
        raise InputError(f"config must be a memomentum.RunConfig or None, got {type(config).__name__}")
    names = {f.name for f in dataclasses.fields(RunConfig)}
    unknown = sorted(set(run_options) - names)
    if unknown:
        raise InputError(
            f"unknown run option {unknown[0]!r}; the options are RunConfig's fields (e.g. model, epochs, seed)"
        )
    ignored = sorted(set(run_options) & set(NOT_FOR_GIVEN_LABELS))
    if ignored:
        raise InputError(
            f"the run option {ignored[0]!r} does not apply here: the labels and features are taken as "
            f"given (no noise is added, nothing is read from or written to disk)"
        )
    base = config if config is not None else RunConfig(progress=False)
    return dataclasses.replace(
        base,
        **{
            **run_options,
            "dataset": "arrays",
            "noise_type": "none",
            "noise_rate": None,
            "noise_seed": None,
            "out": None,
        },
    )


def verdicts_of_run(result: RunResult) -> dict[str, np.ndarray]:
    """:func:`~memomentum.method.verdicts.verdict_columns` over all the examples of a
    finished benchmark-mode run held in memory: the training part T by the final confident
    set (the run's own predictions), the validation part V by the same rule (the best
    network agrees with the given label; one prediction pass over V). Adds
    ``in_training_part``."""
    proc, data = result.procedure, result.data
    given = np.asarray(data.noisy_labels, dtype=np.int64)
    n = given.size
    model = proc.best_model()
    probs = np.empty((n, proc.problem.num_classes), dtype=np.float32)
    probs[data.train_index] = result.final.probabilities.cpu().numpy()
    probs[data.val_index] = proc.engine.predict_proba(model, model, proc.problem.val).cpu().numpy()
    predicted = probs.argmax(1)
    verdict = verdict_columns(given=given, predicted=predicted, probabilities=probs, confident=predicted == given)
    in_train = np.zeros(n, dtype=bool)
    in_train[data.train_index] = True
    verdict["in_training_part"] = in_train
    return verdict

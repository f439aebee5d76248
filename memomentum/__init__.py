"""memomentum: Me-Momentum (Bai & Liu, ICCV 2021) for learning with noisy labels.

``import memomentum`` does not load torch: a command's help, ``memomentum.config`` and the
report stay fast, and the OpenMP wait policy is chosen before libgomp loads (see
:mod:`memomentum.training.threads`). ``run``, ``find_label_issues`` and ``load`` are therefore
thin wrappers that import their module when called, with the real functions' signatures
(tests/test_layout.py checks that they are equal); ``MeMomentumClassifier`` is loaded on first
access.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

# First, before anything imports torch: importing memomentum.training.threads sets how idle OpenMP
# threads wait (see that module).
from .training import threads

# isort: split

from .base.errors import InputError, TrainingDiverged
from .config import RunConfig
from .data.registry import list_datasets

if TYPE_CHECKING:  # annotations only: importing these loads torch
    from .data import Dataset
    from .entrypoints.estimator import MeMomentumClassifier
    from .entrypoints.predictor import Predictor
    from .runner.pipeline import RunResult

__version__ = "0.1.0"


def run(
    config: RunConfig,
    *,
    resume: bool = False,
    overwrite: bool = False,
    write: bool = True,
    dataset: Dataset | None = None,
    network=None,
) -> RunResult:
    """Run Me-Momentum (or the cross-entropy baseline) end to end: :func:`memomentum.entrypoints.api.run`,
    whose docstring describes every parameter (``help(memomentum.entrypoints.api.run)``, which loads torch).
    This wrapper first chooses how idle OpenMP threads wait for the run, while torch is not
    loaded yet; tests/test_layout.py checks that its signature is the real one."""
    threads.prefer_bound_spin(config.threads, config.device)
    from .entrypoints.api import run as _run

    return _run(config, resume=resume, overwrite=overwrite, write=write, dataset=dataset, network=network)


def find_label_issues(
    labels,
    *,
    features,
    return_indices_ranked_by: str | None = None,
    config=None,
    **run_options,
):
    """Find the examples whose given label is likely wrong, with Me-Momentum:
    :func:`memomentum.entrypoints.api.find_label_issues`, whose docstring describes every parameter."""
    from .entrypoints.api import find_label_issues as _find

    return _find(
        labels, features=features, return_indices_ranked_by=return_indices_ranked_by, config=config, **run_options
    )


def load(run_dir, *, device: str | None = None) -> Predictor:
    """The best model of the finished run in ``run_dir``, ready to predict:
    :func:`memomentum.entrypoints.predictor.load`, whose docstring describes every parameter."""
    from .entrypoints.predictor import load as _load

    return _load(run_dir, device=device)


__all__ = [
    "InputError",
    "MeMomentumClassifier",
    "RunConfig",
    "TrainingDiverged",
    "__version__",
    "find_label_issues",
    "list_datasets",
    "load",
    "run",
]


def __getattr__(name: str):
    # the scikit-learn estimator is loaded on first use: it imports torch and scikit-learn
    if name == "MeMomentumClassifier":
        from .entrypoints.estimator import MeMomentumClassifier

        return MeMomentumClassifier
    raise AttributeError(f"module 'memomentum' has no attribute {name!r}")

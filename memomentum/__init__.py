"""memomentum: Me-Momentum (Bai & Liu, ICCV 2021) for learning with noisy labels.

``import memomentum`` does not load torch (a command's help, ``memomentum.config`` and the
report stay fast, and the thread wait policy is set before libgomp loads: see
:mod:`memomentum.training.threads`). ``find_label_issues``, ``load`` and
``MeMomentumClassifier`` are therefore the real objects loaded on first access (PEP 562
``__getattr__`` below); ``run`` is a wrapper because it must choose the wait policy from the
run's configuration before torch loads. Their signatures are the real ones.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# First, before anything imports torch: importing memomentum.training.threads sets how idle OpenMP
# threads wait (see that module).
from .training import threads

# isort: split

from .config import RunConfig
from .errors import InputError, TrainingDiverged

if TYPE_CHECKING:  # for type checkers and editors; at run time __getattr__ loads them
    from .api import find_label_issues
    from .data import Dataset
    from .estimator import MeMomentumClassifier
    from .predictor import load
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
    """Run Me-Momentum (or the cross-entropy baseline) end to end: :func:`memomentum.api.run`,
    whose docstring describes every parameter (``help(memomentum.api.run)``, which loads torch).
    This wrapper first chooses how idle OpenMP threads wait for the run, while torch is not
    loaded yet; tests/test_layout.py checks that its signature is the real one."""
    threads.prefer_bound_spin(config.threads, config.device)
    from .api import run as _run

    return _run(config, resume=resume, overwrite=overwrite, write=write, dataset=dataset, network=network)


# the public names that import torch, and the module that defines each
_LOADED_ON_FIRST_USE = {
    "find_label_issues": "api",
    "load": "predictor",
    "MeMomentumClassifier": "estimator",
}

__all__ = [
    "InputError",
    "MeMomentumClassifier",
    "RunConfig",
    "TrainingDiverged",
    "__version__",
    "find_label_issues",
    "load",
    "run",
]


def __getattr__(name: str) -> Any:
    if name in _LOADED_ON_FIRST_USE:
        return getattr(importlib.import_module(f".{_LOADED_ON_FIRST_USE[name]}", __name__), name)
    raise AttributeError(f"module 'memomentum' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

"""memomentum: Me-Momentum (Bai & Liu, ICCV 2021) for learning with noisy labels."""

# First, before anything imports torch: importing memomentum.training.threads sets how idle OpenMP
# threads wait (see that module).
from .training import threads

# isort: split

from .config import RunConfig
from .errors import InputError, TrainingDiverged

__version__ = "0.1.0"


def run(config: RunConfig, **kwargs):
    """Run the whole pipeline; see :func:`memomentum.api.run`."""
    threads.prefer_bound_spin(config.threads, config.device)  # while torch is not loaded yet
    from .api import run as _run

    return _run(config, **kwargs)


def find_label_issues(labels, **kwargs):
    """Which given labels are likely wrong; see :func:`memomentum.api.find_label_issues`.
    (Imported on first use: ``import memomentum`` must not load torch, see above.)"""
    from .api import find_label_issues as _find

    return _find(labels, **kwargs)


def load(run_dir, **kwargs):
    """A finished run's best model, predicting as the run predicts; see :func:`memomentum.predictor.load`.
    (Imported on first use, as above.)"""
    from .predictor import load as _load

    return _load(run_dir, **kwargs)


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


def __getattr__(name: str):
    # the scikit-learn estimator is loaded on first use: it imports torch and scikit-learn
    if name == "MeMomentumClassifier":
        from .estimator import MeMomentumClassifier

        return MeMomentumClassifier
    raise AttributeError(f"module 'memomentum' has no attribute {name!r}")

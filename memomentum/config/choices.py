"""The choices, defaults and schedules a run's settings are checked against and filled from: the
methods, modes, devices and formats; the reference's schedules (main.py's and Clothing.py's); the noise
defaults; which settings name files and which do not change a run's results. The command line's help
reads them here (memomentum.cli restates none)."""

from __future__ import annotations

from typing import Any

from ..data.registry import is_image_folder_name, is_image_release_name, is_table_file
from ..training.names import MODELS

METHODS = ("memomentum", "ce")
MODES = ("benchmark", "clothing1m")
STORE_FORMATS = ("jpeg", "raw")
TRAIN_SETS = ("noisy", "clean")
DEVICES = ("auto", "cpu", "cuda")

# The reference's schedules: main.py's (the benchmark mode) and Clothing.py's.
REFERENCE_SCHEDULE: dict[str, Any] = dict(
    epochs=100, batch_size=128, lr=0.01, weight_decay=1e-4, max_outer_loop=3, max_inner_loop=20, milestones=(40, 80)
)
CLOTHING1M_SCHEDULE: dict[str, Any] = dict(
    epochs=5, batch_size=32, lr=0.005, weight_decay=1e-3, max_outer_loop=3, max_inner_loop=6, milestones=(10, 20)
)

# Noise types that take a rate, and the rate they get when none is given.
RATED_NOISE_TYPES = ("symmetric", "pairflip", "instance", "asymmetric")
DEFAULT_NOISE_RATE = 0.4

# The settings that may name a file or a folder (RunConfig.resolved_paths).
PATH_KEYS = ("dataset", "data_dir", "transition_path", "human_labels_path")


def names_a_path(dataset: str) -> bool:
    """Whether ``dataset`` is a path (a ``.npz`` file, a table, an existing folder) rather
    than a benchmark's name, a release's name or in-memory ``arrays``."""
    return (
        dataset.strip().endswith(".npz")
        or is_table_file(dataset)
        or (is_image_folder_name(dataset) and not is_image_release_name(dataset))
    )


# Keys that do not change a run's results: they may differ when resuming.
NON_RESULT_KEYS = frozenset(
    {
        "out",
        "progress",
        "device",
        "threads",
        "predict_chunk",
        "cuda_graph",
        "data_dir",
        "cache_dir",
        "stream",
        "workers",
    }
)

# The synthetic noise of a benchmark set given none (the user's own data: "none", RunConfig.__post_init__),
# for RunConfig and the command line's help alike.
DEFAULT_NOISE_TYPE = "instance"
# The networks' names, for RunConfig's check and the command line's help (torch stays unloaded).
MODEL_NAMES = MODELS

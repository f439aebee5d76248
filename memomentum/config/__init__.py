"""The run's configuration: :class:`RunConfig` (``run_config.py``), one typed, frozen object checked
when it is made and passed down everywhere, and the choices, defaults and reference schedules it is
checked against and filled from (``choices.py``)."""

from .choices import (
    CLOTHING1M_SCHEDULE,
    DEFAULT_NOISE_RATE,
    DEFAULT_NOISE_TYPE,
    DEVICES,
    METHODS,
    MODEL_NAMES,
    MODES,
    NON_RESULT_KEYS,
    PATH_KEYS,
    RATED_NOISE_TYPES,
    REFERENCE_SCHEDULE,
    STORE_FORMATS,
    TRAIN_SETS,
    names_a_path,
)
from .run_config import RunConfig, resolved

__all__ = [
    "CLOTHING1M_SCHEDULE",
    "DEFAULT_NOISE_RATE",
    "DEFAULT_NOISE_TYPE",
    "DEVICES",
    "METHODS",
    "MODEL_NAMES",
    "MODES",
    "NON_RESULT_KEYS",
    "PATH_KEYS",
    "RATED_NOISE_TYPES",
    "REFERENCE_SCHEDULE",
    "STORE_FORMATS",
    "TRAIN_SETS",
    "RunConfig",
    "names_a_path",
    "resolved",
]

"""What a dataset name stands for: the one place that classifies the ``--dataset`` value.

A name is Clothing1M (any spelling of ``clothing1m``), one of the other real-noise image
releases (:data:`REAL_NOISE_DATASETS`: ANIMAL-10N, Food-101N, mini-WebVision, in the
spellings of :data:`REAL_NOISE_SPELLINGS`), a table (a path ending in one of
:data:`TABLE_SUFFIXES`), the user's ``.npz`` file, in-memory ``arrays``, an existing
image folder, or a benchmark name. The configuration, the loaders and the naming of run
directories all ask here, so they can never disagree about which source a name means.

This module imports nothing from the package and nothing heavy (no numpy, no torch), so
that :mod:`memomentum.config` can import it without an import circle.
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "REAL_NOISE_DATASETS",
    "REAL_NOISE_SPELLINGS",
    "TABLE_SUFFIXES",
    "dataset_key",
    "is_clothing1m_name",
    "is_image_folder_name",
    "is_image_release_name",
    "is_table_file",
    "is_table_folder",
    "is_users_own_data",
    "real_noise_name",
    "run_name",
]

# A table's file name endings: CSV, also compressed as pandas reads it, and parquet.
TABLE_SUFFIXES = (".csv", ".csv.gz", ".csv.bz2", ".csv.xz", ".csv.zip", ".csv.zst", ".parquet")

# The real-noise image releases read from their official layouts besides Clothing1M, by
# canonical name: ANIMAL-10N (memomentum.data.animal10n), Food-101N (.food101n) and
# mini-WebVision, the first 50 classes of WebVision 1.0's Google images (.webvision).
REAL_NOISE_DATASETS = ("animal10n", "food101n", "webvision")
# Each name as a user may type it, compared after :func:`_folded` (lower case, without
# "-", "_", "." and spaces): "ANIMAL-10N", "animal_10n", "Food-101N", "mini-WebVision", ...
REAL_NOISE_SPELLINGS = {
    "animal10n": "animal10n",
    "food101n": "food101n",
    "webvision": "webvision",
    "miniwebvision": "webvision",
    "webvisionmini": "webvision",
    "webvision50": "webvision",
}


def _folded(name: str) -> str:
    return name.strip().lower().replace("-", "").replace("_", "").replace(".", "").replace(" ", "")


def is_clothing1m_name(name) -> bool:
    """Whether ``dataset`` names Clothing1M (any case, with or without "-" or "_")."""
    return isinstance(name, str) and name.strip().lower().replace("-", "").replace("_", "") == "clothing1m"


def real_noise_name(name) -> str | None:
    """The canonical name (one of :data:`REAL_NOISE_DATASETS`) of a real-noise release
    that ``dataset`` spells (``animal-10n``, ``Food-101N``, ``mini-webvision``, ...), or
    None. Clothing1M is :func:`is_clothing1m_name`'s."""
    return REAL_NOISE_SPELLINGS.get(_folded(name)) if isinstance(name, str) else None


def is_image_release_name(name) -> bool:
    """Whether ``dataset`` names an image release read from its official layout under
    ``--data-dir``: Clothing1M or one of :data:`REAL_NOISE_DATASETS`."""
    return is_clothing1m_name(name) or real_noise_name(name) is not None


def dataset_key(name) -> str:
    """The name under which the settings of ``dataset`` are kept (``config.DATASET_DEFAULTS``):
    ``clothing1m`` and the canonical names of the real-noise releases for any of their
    spellings, else the name itself."""
    if is_clothing1m_name(name):
        return "clothing1m"
    return real_noise_name(name) or name


def is_table_file(name) -> bool:
    """Whether ``dataset`` names a table (a path ending in one of :data:`TABLE_SUFFIXES`,
    see :mod:`memomentum.data.tables`)."""
    return isinstance(name, str) and name.strip().lower().endswith(TABLE_SUFFIXES)


def is_table_folder(name) -> bool:
    """Whether ``dataset`` names a folder holding a table in parts: what Hugging Face's
    ``save_to_disk`` writes (``state.json`` or ``dataset_dict.json``) or parquet shards
    (``*.parquet``, directly or in ``data/``); :mod:`memomentum.data.image_tables` reads the
    ones with an image column. Only looks at file names."""
    if not is_image_folder_name(name):
        return False
    path = Path(name.strip()).expanduser()
    return (
        (path / "state.json").is_file()
        or (path / "dataset_dict.json").is_file()
        or any(path.glob("*.parquet"))
        or any(path.glob("data/*.parquet"))
    )


def is_image_folder_name(name) -> bool:
    """Whether ``dataset`` names an existing directory (an image folder, see
    :mod:`memomentum.data.folders`)."""
    return isinstance(name, str) and bool(name.strip()) and Path(name).expanduser().is_dir()


def is_users_own_data(name) -> bool:
    """Whether ``dataset`` is the user's own data (a ``.npz`` file, in-memory ``arrays``, a
    table, an image folder, or a real-noise release: Clothing1M, ANIMAL-10N, Food-101N,
    mini-WebVision) rather than a benchmark set. Own data keeps its labels as given by
    default: its labels are already noisy, so no noise is added."""
    return (
        str(name).endswith(".npz")
        or name == "arrays"
        or is_table_file(name)
        or is_image_folder_name(name)
        or is_image_release_name(name)
    )


def run_name(dataset: str) -> str:
    """The short name of ``dataset`` that names a run directory: a ``.npz`` file's or a
    table's file stem, an existing image folder's resolved folder name (resolved, so that
    ``.`` or ``pets/..`` name the folder itself), else the name itself (a benchmark name)."""
    if dataset.endswith(".npz") or is_table_file(dataset):
        return Path(dataset).stem
    if is_image_folder_name(dataset):
        return Path(dataset).expanduser().resolve().name
    return dataset

"""What a dataset name stands for: the one place that classifies the ``--dataset`` value.

A name is Clothing1M (any spelling of ``clothing1m``), a table (a path ending in one of
:data:`TABLE_SUFFIXES`), the user's ``.npz`` file, in-memory ``arrays``, an existing
image folder, or a benchmark name. The configuration, the loaders and the naming of run
directories all ask here, so they can never disagree about which source a name means.

This module imports nothing from the package and nothing heavy (no numpy, no torch), so
that :mod:`memomentum.config` can import it without an import circle.
"""
from __future__ import annotations

from pathlib import Path

__all__ = ["TABLE_SUFFIXES", "is_clothing1m_name", "is_image_folder_name", "is_table_file", "is_users_own_data",
           "run_name"]

# A table's file name endings: CSV, also compressed as pandas reads it, and parquet.
TABLE_SUFFIXES = (".csv", ".csv.gz", ".csv.bz2", ".csv.xz", ".csv.zip", ".csv.zst", ".parquet")


def is_clothing1m_name(name) -> bool:
    """Whether ``dataset`` names Clothing1M (any case, with or without "-" or "_")."""
    return isinstance(name, str) and name.strip().lower().replace("-", "").replace("_", "") == "clothing1m"


def is_table_file(name) -> bool:
    """Whether ``dataset`` names a table (a path ending in one of :data:`TABLE_SUFFIXES`,
    see :mod:`memomentum.data.tables`)."""
    return isinstance(name, str) and name.strip().lower().endswith(TABLE_SUFFIXES)


def is_image_folder_name(name) -> bool:
    """Whether ``dataset`` names an existing directory (an image folder, see
    :mod:`memomentum.data.folders`)."""
    return isinstance(name, str) and bool(name.strip()) and Path(name).expanduser().is_dir()


def is_users_own_data(name) -> bool:
    """Whether ``dataset`` is the user's own data (a ``.npz`` file, in-memory ``arrays``, a
    table, an image folder, or Clothing1M) rather than a benchmark set. Own data keeps its
    labels as given by default: its labels are already noisy, so no noise is added."""
    return (str(name).endswith(".npz") or name == "arrays" or is_table_file(name)
            or is_image_folder_name(name) or is_clothing1m_name(name))


def run_name(dataset: str) -> str:
    """The short name of ``dataset`` that names a run directory: a ``.npz`` file's or a
    table's file stem, an existing image folder's resolved folder name (resolved, so that
    ``.`` or ``pets/..`` name the folder itself), else the name itself (a benchmark name)."""
    if dataset.endswith(".npz") or is_table_file(dataset):
        return Path(dataset).stem
    if is_image_folder_name(dataset):
        return Path(dataset).expanduser().resolve().name
    return dataset

"""Datasets: every source the package reads, one module each.

* :mod:`.registry`: the table of named datasets (one :class:`DatasetSpec` each: names,
  files, reader, default network and schedule, classes) and what any other ``--dataset``
  value stands for; everything below asks it;
* :mod:`.benchmarks`: the benchmarks' readers: the embedded ``digits``, MNIST /
  Fashion-MNIST idx files, the CIFAR pickles (unpickled safely by :mod:`.pickles`);
* :mod:`.arrays`: the user's own arrays (a ``.npz`` file, or arrays in memory);
* :mod:`.human_labels`: the CIFAR-10N / CIFAR-100N human label files;
* :mod:`.clothing1m`: Clothing1M's official release (annotation files and JPEGs);
* :mod:`.animal10n`, :mod:`.food101n`, :mod:`.webvision`: the real-noise sets after Clothing1M
  (ANIMAL-10N, Food-101N, mini-WebVision), from their official layouts;
* :mod:`.folders`: a folder of images with one sub-folder per class;
* :mod:`.tables`: a ``.csv`` or ``.parquet`` table with a label column (pandas, the ``tables`` extra);
  :mod:`.image_tables`: a table whose column holds images.
* :mod:`.labels`: labels as the table readers take them (classes in sorted order), and new data's
  labels matched to a run's classes.

:func:`load_dataset` (in :mod:`.loading`) is the entry point; every loader returns a :class:`Dataset`.

The names below are loaded on first use, so that :mod:`.registry` (which the configuration
imports, and with it ``import memomentum``) costs nothing more than itself.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

# public name -> the module that defines it
_WHERE = {
    "DATASETS": "registry",
    "DEFAULT_IMAGE_SIZE": "registry",
    "SPECS": "registry",
    "DatasetSpec": "registry",
    "find_spec": "registry",
    "list_datasets": "registry",
    "dataset_from_arrays": "arrays",
    "load_array_dataset": "arrays",
    "HumanLabels": "human_labels",
    "check_human_labels": "human_labels",
    "load_human_labels": "human_labels",
    "read_human_labels": "human_labels",
    "IMAGENET_MEAN": "dataset",
    "IMAGENET_STD": "dataset",
    "Dataset": "dataset",
    "ImageFiles": "dataset",
    "ImageList": "dataset",
    "load_dataset": "loading",
    "load_image_files": "loading",
    "pack_image_files": "loading",
    "load_table": "tables",
}
__all__ = [
    "DATASETS",
    "DEFAULT_IMAGE_SIZE",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "SPECS",
    "Dataset",
    "DatasetSpec",
    "HumanLabels",
    "ImageFiles",
    "ImageList",
    "check_human_labels",
    "dataset_from_arrays",
    "find_spec",
    "list_datasets",
    "load_array_dataset",
    "load_dataset",
    "load_human_labels",
    "load_image_files",
    "load_table",
    "pack_image_files",
    "read_human_labels",
]

if TYPE_CHECKING:  # the type checker reads the names that are loaded on first use from where they are defined
    from .arrays import dataset_from_arrays, load_array_dataset
    from .dataset import IMAGENET_MEAN, IMAGENET_STD, Dataset, ImageFiles, ImageList
    from .human_labels import HumanLabels, check_human_labels, load_human_labels, read_human_labels
    from .loading import load_dataset, load_image_files, pack_image_files
    from .registry import DATASETS, DEFAULT_IMAGE_SIZE, SPECS, DatasetSpec, find_spec, list_datasets
    from .tables import load_table


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""Datasets: every source the package reads, one module each.

* :mod:`.arrays`: data that fits in memory as numpy arrays: the embedded ``digits``,
  MNIST / Fashion-MNIST idx files, the CIFAR pickles, the user's ``.npz`` files, and the
  CIFAR-10N / CIFAR-100N human label files;
* :mod:`.clothing1m`: Clothing1M's official release (annotation files and JPEGs);
* :mod:`.folders`: a folder of images with one sub-folder per class;
* :mod:`.store`: packs image files once into a compact store that training streams from.

Every loader returns a :class:`Dataset`.
"""
from .arrays import DATASETS, dataset_from_arrays, load_dataset, load_human_labels
from .dataset import Dataset, ImageFiles, ImageList

__all__ = ["DATASETS", "Dataset", "ImageFiles", "ImageList", "dataset_from_arrays", "load_dataset",
           "load_human_labels"]

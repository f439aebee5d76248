"""New data as a finished run's model reads it: what the readers of :mod:`.features` and
:mod:`.images` give, and what they share."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...base.checks import first_few
from ...data.labels import encode_given_labels
from ...store.unpacked import UnpackedImages
from .run import FinishedRun

__all__ = ["Inputs", "encode_labels", "names"]


@dataclass
class Inputs:
    """New data as the network will read it: features or images in memory (``x``) or image
    files read batch by batch (``files``), the examples' ids and their given labels."""

    x: np.ndarray | None
    files: UnpackedImages | None
    id_column: str
    ids: object
    given: np.ndarray | None
    source: str


def names(names, shown: int = 10) -> str:
    """The first ``shown`` of ``names`` and how many more, as messages list them."""
    return first_few([str(n) for n in names], shown)


def encode_labels(run: FinishedRun, values: np.ndarray, missing: np.ndarray, where: str) -> np.ndarray:
    """Given labels as the run's class numbers (-1 where ``missing``), by the table reader's rule."""
    return encode_given_labels(values, missing, run.class_names, run.num_classes, where)

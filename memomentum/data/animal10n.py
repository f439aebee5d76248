"""ANIMAL-10N (Song, Kim and Lee, ICML 2019, "SELFIE") from its official release: lists the
image files and their labels; :mod:`.store` packs the pixels.

The release's layout (``raw_image.zip`` inside ``raw_image_ver.zip``), with ``ROOT`` the
directory given::

    ROOT/training/<label>_<index>.jpg      50,000 images, 64 x 64, noisy labels
    ROOT/testing/<label>_<index>.jpg        5,000 images

An image's label is its file name's prefix before the first ``_``: 0..9, the classes of
:data:`ANIMAL10N_CLASSES` in that order (five pairs of look-alike animals). The labels are
real noise (human labellers, about 8 % wrong, estimated by the authors) and are used as
given: no image has a known true label, so label precision is not measured.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

from ..base.errors import InputError
from .clothing1m import plural_s, quote_some
from .dataset import ImageFiles, ImageList, release_folder
from .registry import ANIMAL10N

# The release's facts are its registry entry's: the classes in label order, the folders, the image side.
ANIMAL10N_CLASSES = ANIMAL10N.class_names
NUM_CLASSES = ANIMAL10N.num_classes
TRAIN_DIR, TEST_DIR = ANIMAL10N.file("train"), ANIMAL10N.file("test")
IMAGE_SIZE = ANIMAL10N.image_size  # the release's images are 64 x 64: packed as they are
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")  # the release's are .jpg; compared case-insensitively
_LABELS = {str(i): i for i in range(NUM_CLASSES)}


def read_animal10n(root: str | os.PathLike, *, image_size: int = IMAGE_SIZE) -> ImageFiles:
    """List ANIMAL-10N's images and labels from the official release.

    Hidden files are ignored; other files that are not images (by extension) and folders
    inside ``training/`` or ``testing/`` are skipped with a note on stderr that names them.

    Args:
        root: the folder holding ``training/`` and ``testing/``.
        image_size: recorded in the result as the side images are resized to when packed
            (default 64, the release's own size).

    Returns:
        :class:`ImageFiles` named ``"animal10n"``: ``train`` the 50,000 training images
        with their (noisy) labels, ``test`` the 5,000 test images, ``val`` None,
        ``class_names`` :data:`ANIMAL10N_CLASSES`, ``known_train_labels`` None. Paths are
        absolute, sorted by file name.

    Raises:
        InputError: ``root``, ``training/`` or ``testing/`` missing; an image whose name
            does not start with a label 0..9 and ``_`` (the count and the first names);
            a folder without any image.
    """
    root = release_folder(
        root,
        image_size,
        missing=(
            f"ANIMAL-10N directory {{root}} does not exist or is not a directory; give the folder holding "
            f"{TRAIN_DIR}/ and {TEST_DIR}/ (unpacked from the release's raw_image.zip) with --data-dir"
        ),
    )
    notes: list[str] = []
    train = _read_split(root, TRAIN_DIR, notes)
    test = _read_split(root, TEST_DIR, notes)
    for note in notes:
        print(f"memomentum: note: {note}", file=sys.stderr)
    return ImageFiles(
        name=ANIMAL10N.name,
        root=root,
        train=train,
        val=None,
        test=test,
        class_names=ANIMAL10N_CLASSES,
        known_train_labels=None,
        image_size=image_size,
    )


def label_of(name: str) -> int | None:
    """The label of an ANIMAL-10N image file name (``"3_01234.jpg"`` -> 3), or None when
    the name does not start with a label 0..9 and ``_``."""
    head, sep, _ = name.partition("_")
    return _LABELS.get(head) if sep else None


def _read_split(root: Path, split: str, notes: list[str]) -> ImageList:
    """The images of ``root/split`` and their labels, sorted by file name."""
    folder = root / split
    if not folder.is_dir():
        what = "is a file, not a folder" if folder.exists() else "not found"
        raise InputError(
            f"ANIMAL-10N folder {folder} {what}: --data-dir must be the folder holding {TRAIN_DIR}/ "
            f"and {TEST_DIR}/ (unpacked from the release's raw_image.zip)"
        )
    try:
        with os.scandir(folder) as it:
            entries = sorted((e.name, e.is_dir()) for e in it if not e.name.startswith("."))
    except OSError as e:
        raise InputError(f"could not list {folder}: {e.strerror or e}") from e
    names = [n for n, is_dir in entries if not is_dir and n.lower().endswith(IMAGE_EXTENSIONS)]
    skipped = [
        n + ("/" if is_dir else "") for n, is_dir in entries if is_dir or not n.lower().endswith(IMAGE_EXTENSIONS)
    ]
    labels = [label_of(n) for n in names]
    bad = [n for n, label in zip(names, labels) if label is None]
    if bad:
        raise InputError(
            f"{len(bad):,} image name{plural_s(len(bad))} in {folder} {'does' if len(bad) == 1 else 'do'} not "
            f"start with a label 0..{NUM_CLASSES - 1} and '_' (ANIMAL-10N names its images "
            f"<label>_<index>.jpg): {quote_some(bad)}"
        )
    if not names:
        raise InputError(f"{folder} holds no ANIMAL-10N image (<label>_<index>.jpg)")
    if skipped:
        one = len(skipped) == 1
        notes.append(
            f"skipped {len(skipped)} entr{'y' if one else 'ies'} of {folder} that {'is not a' if one else 'are not'} "
            f".jpg, .jpeg or .png image{plural_s(len(skipped))}: {quote_some(skipped)}"
        )
    prefix = str(folder) + os.sep
    return ImageList([prefix + n for n in names], np.array(labels, dtype=np.int64))

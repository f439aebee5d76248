"""mini-WebVision (Jiang et al., ICML 2018, "MentorNet"; the DivideMix protocol): the Google
images of WebVision 1.0's first 50 classes, from the official release, tested on
WebVision's validation images of those classes; :mod:`.store` packs the pixels.

The layout, with ``ROOT`` the directory given::

    ROOT/info/train_filelist_google.txt    "google/<query>/<name>.jpg LABEL" (LABEL 0..999)
    ROOT/info/val_filelist.txt             "<name>.jpg LABEL" (50,000 lines)
    ROOT/info/synsets.txt                  optional: "<wnid> <name>, <name>, ..." in label order
    ROOT/google/...                        the training images (google_resized_256.tar)
    ROOT/val_images_256/<name>.jpg         the validation images (val_images_256.tar)

Only lines with a label below :data:`NUM_CLASSES` (50) are kept: about 66,000 training
and 2,500 validation images. The labels are the search queries' classes (web noise) and
are used as given; no training image has a known true label. Class names are the first
name of each of the first 50 lines of ``synsets.txt`` (``tench``), or the label numbers
when the release lacks the file.

ImageNet's validation images of the same 50 classes, the second test set of the papers,
are read by the Python reader only (``imagenet_val_dir``): then they are the test set
instead of WebVision's (a run has one test set).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..base.errors import InputError
from .clothing1m import Offenders, check_listed_files_exist, plural_s, quote_some, refuse_repeated, text_lines
from .dataset import ImageFiles, ImageList, release_folder
from .registry import WEBVISION

# The release's facts are its registry entry's: its classes (the first 50 of WebVision's 1,000) and file names.
NUM_CLASSES = WEBVISION.num_classes
ALL_CLASSES = 1000
TRAIN_LIST = WEBVISION.file("train_list")
VAL_LIST = WEBVISION.file("val_list")
SYNSETS = WEBVISION.file("synsets")
VAL_IMAGES = WEBVISION.file("val_images")
IMAGENET_EXTENSIONS = (".jpeg", ".jpg", ".png")  # ImageNet's are .JPEG; compared case-insensitively
_LABELS = {str(i): i for i in range(ALL_CLASSES)}


def read_webvision(
    root: str | os.PathLike,
    *,
    imagenet_val_dir: str | os.PathLike | None = None,
    check_files: bool = True,
    image_size: int = WEBVISION.image_size,
) -> ImageFiles:
    """List mini-WebVision's images and labels from WebVision 1.0's release.

    Args:
        root: the release's folder (``info/``, ``google/`` and ``val_images_256/`` below it).
        imagenet_val_dir: ImageNet's validation images in one folder per class named by
            its WordNet id (``<wnid>/*.JPEG``, as torchvision's ``ImageNet`` and the usual
            ``valprep.sh`` arrange them); given, the images of the 50 classes (the
            first 50 ids of ``synsets.txt``, which it then needs) are the test set instead
            of WebVision's validation images. Not a command-line option.
        check_files: check that every listed image exists.
        image_size: recorded in the result as the side images are resized to when packed.

    Returns:
        :class:`ImageFiles` named ``"webvision"``: ``train`` the Google images with a
        label below 50, in the list's order; ``test`` WebVision's validation images of
        those classes (or ImageNet's); ``val`` None; ``known_train_labels`` None.

    Raises:
        InputError: a missing file or folder; a malformed line or a label outside 0..999
            (naming the file and the lines); an image listed twice; a missing image (with
            ``check_files``); for ``imagenet_val_dir``, a class folder missing or empty.
    """
    root = release_folder(
        root,
        image_size,
        missing=(
            "WebVision directory {root} does not exist or is not a directory; give the release's folder "
            "(holding info/, google/ and val_images_256/) with --data-dir"
        ),
    )
    synsets = read_synsets(root / SYNSETS) if (root / SYNSETS).is_file() else None
    train_keys, train_labels = read_filelist(_need(root / TRAIN_LIST))
    if imagenet_val_dir is None:
        test_dir, test_list = root / VAL_IMAGES, _need(root / VAL_LIST)
        test_keys, test_labels = read_filelist(test_list)
    else:
        test_dir, test_list = Path(os.path.abspath(Path(imagenet_val_dir).expanduser())), None
        test_keys, test_labels = read_imagenet_val(test_dir, synsets, root / SYNSETS)
    if check_files:
        check_listed_files_exist(root, train_keys, root / TRAIN_LIST)
        if test_list is not None:
            check_listed_files_exist(test_dir, test_keys, test_list)
    names = class_names(synsets)
    return ImageFiles(
        name=WEBVISION.name,
        root=root,
        train=ImageList([os.path.join(root, k) for k in train_keys], train_labels),
        val=None,
        test=ImageList([os.path.join(test_dir, k) for k in test_keys], test_labels),
        class_names=names,
        known_train_labels=None,
        image_size=image_size,
    )


def _need(path: Path) -> Path:
    if not path.is_file():
        what = "is a folder, not a file" if path.is_dir() else "not found"
        raise InputError(
            f"WebVision file {path} {what}; --data-dir must be WebVision 1.0's folder (info/, google/ "
            f"and val_images_256/ below it)"
        )
    return path


def read_filelist(path: Path) -> tuple[list[str], np.ndarray]:
    """The images of a WebVision file list (``PATH LABEL`` lines) whose label is below
    :data:`NUM_CLASSES`, in order, and their labels. Blank lines are ignored.

    Raises:
        InputError: a line without exactly two fields, a label that is not an integer in
            0..999, an image listed twice, no image of the 50 classes.
    """
    keys: list[str] = []
    labels: list[int] = []
    malformed, bad = Offenders(), Offenders()
    for number, line in text_lines(path):
        fields = line.split()
        if len(fields) != 2:
            if fields:
                malformed.add(number, line)
            continue
        label = _LABELS.get(fields[1])
        if label is None:
            bad.add(number, line)
        elif label < NUM_CLASSES:
            keys.append(fields[0])
            labels.append(label)
    if malformed.count:
        n = malformed.count
        raise InputError(
            f"{path} has {n:,} malformed line{plural_s(n)} (each must be 'PATH LABEL'): {malformed.quote()}"
        )
    if bad.count:
        n = bad.count
        raise InputError(
            f"{path} has {n:,} label{plural_s(n)} that {'is' if n == 1 else 'are'} not an integer in "
            f"0..{ALL_CLASSES - 1}: {bad.quote()}"
        )
    if not keys:
        raise InputError(f"{path} lists no image of the first {NUM_CLASSES} classes (labels 0..{NUM_CLASSES - 1})")
    refuse_repeated(path, keys, "image")
    return keys, np.array(labels, dtype=np.int64)


def read_synsets(path: Path) -> list[tuple[str, str]]:
    """The first :data:`NUM_CLASSES` lines of ``synsets.txt``: (WordNet id, first name)."""
    out: list[tuple[str, str]] = []
    malformed = Offenders()
    for number, line in text_lines(path):
        wnid, _, names = line.strip().partition(" ")
        if not wnid:
            continue
        if not names.strip():
            malformed.add(number, line)
        out.append((wnid, names.split(",")[0].strip()))
        if len(out) == NUM_CLASSES:
            break
    if malformed.count:
        raise InputError(
            f"{path} has {malformed.count} malformed line{plural_s(malformed.count)} (each must be "
            f"'<wnid> <name>, <name>, ...'): {malformed.quote()}"
        )
    if len(out) < NUM_CLASSES:
        raise InputError(
            f"{path} names {len(out)} classes; mini-WebVision needs its first {NUM_CLASSES} "
            f"(WebVision's has {ALL_CLASSES})"
        )
    return out


def class_names(synsets: list[tuple[str, str]] | None) -> tuple[str, ...]:
    """The 50 classes' names: each synset's first name (with its WordNet id where two
    share a name), or the label numbers without ``synsets.txt``."""
    if synsets is None:
        return tuple(str(i) for i in range(NUM_CLASSES))
    names = [name for _, name in synsets]
    return tuple(name if names.count(name) == 1 else f"{name} ({wnid})" for wnid, name in synsets)


def read_imagenet_val(
    folder: Path, synsets: list[tuple[str, str]] | None, synsets_file: Path
) -> tuple[list[str], np.ndarray]:
    """ImageNet's validation images of the 50 classes (``folder/<wnid>/*``), sorted by
    class then name, as keys relative to ``folder`` and labels."""
    if synsets is None:
        raise InputError(
            f"ImageNet's validation images are matched to the classes by WordNet id, which "
            f"{synsets_file} gives; it is not there"
        )
    if not folder.is_dir():
        raise InputError(f"ImageNet validation directory {folder} does not exist or is not a directory")
    keys: list[str] = []
    labels: list[int] = []
    absent: list[str] = []
    for label, (wnid, _) in enumerate(synsets):
        try:
            names = sorted(
                n
                for n in os.listdir(folder / wnid)
                if not n.startswith(".") and n.lower().endswith(IMAGENET_EXTENSIONS)
            )
        except OSError:
            names = []
        if not names:
            absent.append(wnid)
        keys += [f"{wnid}/{n}" for n in names]
        labels += [label] * len(names)
    if absent:
        raise InputError(
            f"{len(absent)} of the {NUM_CLASSES} classes have no image folder (or an empty one) in "
            f"{folder}, which must hold one folder per WordNet id (<wnid>/*.JPEG): {quote_some(absent)}"
        )
    return keys, np.array(labels, dtype=np.int64)

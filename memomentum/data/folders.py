"""A folder of images with one sub-folder per class, as torchvision's ``ImageFolder``
reads it: lists the image files and their labels; :mod:`.store` packs the pixels.

Two layouts are accepted::

    PATH/train/<class>/<image>     and optionally     PATH/test/<class>/<image>
    PATH/<class>/<image>           (no test set)

The class names are the sorted names of the training part's sub-folders; label ``i`` is
the ``i``-th of them, for the test part too. Inside a class folder, images may lie in
sub-folders (as ``ImageFolder`` allows); they are listed in sorted path order. The image
formats are ``ImageFolder``'s (Pillow decodes them all); other files, and images lying
beside the class folders instead of in one, are skipped with a note that names them. A
class folder that is a symbolic link is refused: it could lead back into the dataset (and
count its images twice, once under a wrong class) or out of it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

from ..base.checks import first_few
from ..base.errors import InputError
from .dataset import ImageFiles, ImageList

# torchvision's ImageFolder's extensions, compared case-insensitively
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
_EXTENSION_WORDS = ", ".join(IMAGE_EXTENSIONS[:-1]) + " or " + IMAGE_EXTENSIONS[-1]
_SHOWN = 5  # names quoted in a message


def read_image_folder(path: str | os.PathLike, *, image_size: int = 256) -> ImageFiles:
    """List the images of a class-per-sub-folder directory.

    Files and folders whose names start with "." are ignored; files whose extension is not
    one of :data:`IMAGE_EXTENSIONS` (in any case), and files beside the class folders, are
    skipped with a note on stderr. Symbolic links to files are followed; a class folder
    that is a symbolic link is refused, and symbolic links to folders inside a class folder
    are not followed (they could loop).

    Args:
        path: the directory: ``train/`` (and optionally ``test/``) with one sub-folder
            per class in each, or the class sub-folders directly.
        image_size: recorded in the result as the side images are resized to when packed.

    Returns:
        :class:`ImageFiles` named after the directory, with absolute paths sorted by
        class and then by path within the class, ``val`` None and
        ``known_train_labels`` None.

    Raises:
        InputError: ``path`` is not a directory; the training part has fewer than 2
            class folders; a test class folder has no training counterpart; a ``test/``
            folder without class folders; no images at all; a class folder without an
            image.
    """
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 1:
        raise InputError(f"image_size must be a positive integer, got {image_size!r}")
    root = Path(os.path.abspath(Path(path).expanduser()))
    if not root.is_dir():
        raise InputError(f"image folder {root} does not exist or is not a directory")
    split = (root / "train").is_dir()
    train_dir = root / "train" if split else root
    test_dir = root / "test" if split and (root / "test").is_dir() else None

    class_names = _training_classes(train_dir)
    notes: list[str] = []
    _note_loose_files(train_dir, notes)
    train = _list_images(train_dir, class_names, class_names, notes)
    test = None if test_dir is None else _test_images(test_dir, train_dir, class_names, notes)
    if split:
        _note_loose_files(root, notes, beside="the train/ and test/ folders")
    for note in notes:
        print(f"memomentum: note: {note}", file=sys.stderr)
    return ImageFiles(
        name=root.name or str(root),
        root=root,
        train=train,
        val=None,
        test=test,
        class_names=class_names,
        known_train_labels=None,
        image_size=image_size,
    )


def _training_classes(train_dir: Path) -> tuple[str, ...]:
    """The class names: the training part's class folders, at least 2 of them."""
    class_names = tuple(_class_folders(train_dir))
    if len(class_names) < 2:
        found = f"only {class_names[0]!r}" if class_names else "none"
        raise InputError(
            f"image folder {train_dir} needs one sub-folder per class and at least 2 classes, found {found}"
        )
    return class_names


def _test_images(test_dir: Path, train_dir: Path, class_names: tuple[str, ...], notes: list[str]) -> ImageList:
    """The test part's images, labelled by the training classes: a test class folder
    without a training counterpart has no label to give, so it is refused."""
    test_classes = _class_folders(test_dir)
    if not test_classes:
        raise InputError(f"test folder {test_dir} has no class sub-folders; give it some or remove it")
    unknown = [c for c in test_classes if c not in class_names]
    if unknown:
        raise InputError(
            f"test folder {test_dir} has {len(unknown)} class folder{'' if len(unknown) == 1 else 's'} "
            f"that {'is' if len(unknown) == 1 else 'are'} not among the training classes in {train_dir}: "
            f"{_quote(unknown)}"
        )
    _note_loose_files(test_dir, notes)
    return _list_images(test_dir, test_classes, class_names, notes)


def _quote(names: list[str]) -> str:
    return first_few([repr(n) for n in names], _SHOWN)


def _class_folders(folder: Path) -> list[str]:
    """The sorted names of the visible sub-folders of ``folder``; none may be a link."""
    try:
        with os.scandir(folder) as it:
            entries = [e for e in it if not e.name.startswith(".") and e.is_dir()]
    except OSError as e:
        raise InputError(f"could not list image folder {folder}: {e.strerror or e}") from e
    links = sorted(e.name for e in entries if e.is_symlink())
    if links:
        target = os.path.realpath(folder / links[0])
        raise InputError(
            f"class folder {folder / links[0]} is a symbolic link (to {target}); a linked folder could "
            f"lead back into the dataset and count its images twice, once under a wrong class, so "
            f"replace the link by the folder itself"
        )
    return sorted(e.name for e in entries)


def _note_loose_files(folder: Path, notes: list[str], beside: str = "the class folders") -> None:
    """A note naming the visible files that lie beside the class folders (no class: skipped)."""
    with os.scandir(folder) as it:
        loose = sorted(e.name for e in it if not e.name.startswith(".") and not e.is_dir())
    if loose:
        notes.append(
            f"skipped {len(loose)} file{'s' if len(loose) > 1 else ''} in {folder} beside {beside} "
            f"(they belong to no class): {_quote(loose)}"
        )


def class_folders(root: Path, paths: list[str]) -> list[str | None]:
    """The class folder of each image under ``root`` in the layouts this module reads (its
    first folder below ``root``, or below ``root/train`` and ``root/test`` when ``root`` has a
    ``train`` folder); None for an image beside the class folders."""
    split = (root / "train").is_dir()
    firsts: list[str | None] = []
    for path in paths:
        parts = Path(os.path.relpath(path, root)).parts
        if split and parts[0] in ("train", "test"):
            parts = parts[1:]
        firsts.append(parts[0] if len(parts) > 1 else None)
    return firsts


def is_image_file(name: str) -> bool:
    """Whether ``name`` ends in one of :data:`IMAGE_EXTENSIONS` (in any case)."""
    return name.lower().endswith(IMAGE_EXTENSIONS)


def list_image_files(folder: Path, *, what: str = "image folder") -> tuple[list[str], list[str]]:
    """The image files under ``folder`` (absolute paths, sorted by their path relative
    to it) and the other visible files; ``what`` names the folder when it cannot be listed."""
    found: list[tuple[str, str]] = []
    others: list[str] = []

    def fail(e: OSError) -> None:
        raise InputError(f"could not list {what} {e.filename or folder}: {e.strerror or e}")

    for dirpath, dirnames, filenames in os.walk(folder, onerror=fail):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]  # prune hidden folders
        for name in filenames:
            if name.startswith("."):
                continue
            if is_image_file(name):
                found.append((dirpath, name))
            else:
                others.append(os.path.join(dirpath, name))
    found.sort()  # by folder, then name: ImageFolder's order (a folder's own files first)
    return [os.path.join(d, n) for d, n in found], others


def _list_images(
    folder: Path, classes: tuple[str, ...] | list[str], class_names: tuple[str, ...], notes: list[str]
) -> ImageList:
    """The images of ``classes`` under ``folder`` labelled by their index in
    ``class_names``; every class folder must hold at least one image. The other files
    are named in a note."""
    paths: list[str] = []
    labels: list[int] = []
    empty: list[tuple[str, int]] = []
    skipped: list[str] = []
    for name in classes:
        images, others = list_image_files(folder / name)
        if not images:
            empty.append((name, len(others)))
        paths += images
        skipped += [os.path.relpath(p, folder) for p in others]
        labels += [class_names.index(name)] * len(images)
    if not paths:
        raise InputError(
            f"image folder {folder} holds no images: no {_EXTENSION_WORDS} file in any of its "
            f"{len(classes)} class folders"
        )
    if empty:
        described = [
            repr(name) + (f" ({others} other file{'' if others == 1 else 's'})" if others else "")
            for name, others in empty
        ]
        shown = first_few(described, _SHOWN)
        one = len(empty) == 1
        raise InputError(
            f"{len(empty)} class folder{'' if one else 's'} in {folder} hold{'s' if one else ''} no "
            f"{_EXTENSION_WORDS} image: {shown}; every class needs at least one"
        )
    if skipped:
        notes.append(
            f"skipped {len(skipped)} file{'s' if len(skipped) > 1 else ''} in the class folders of {folder} "
            f"that {'are' if len(skipped) > 1 else 'is'} not {_EXTENSION_WORDS} images: {_quote(skipped)}"
        )
    return ImageList(paths, np.array(labels, dtype=np.int64))

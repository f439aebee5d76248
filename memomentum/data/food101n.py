"""Food-101N (Lee et al., CVPR 2018, "CleanNet") from its official release, tested on
Food-101's test split: lists the image files, their labels and the human verifications;
:mod:`.store` packs the pixels.

The layout, with ``ROOT`` the directory given (``Food-101N_release``)::

    ROOT/meta/classes.txt             header "class_name", then the 101 class names
    ROOT/meta/imagelist.tsv           header "class_name/key", then "<class_name>/<key>.jpg":
                                      the 310,009 training images and their noisy labels
    ROOT/meta/verified_train.tsv      header "class_name/key<TAB>verification_label", then
    ROOT/meta/verified_val.tsv          "<class_name>/<key>.jpg<TAB>0|1"
    ROOT/images/<class_name>/<key>.jpg
    ROOT/food-101/ (or food-101/ beside ROOT)   Food-101's release, for its test split:
        meta/test.txt                 "<class_name>/<id>" (25,250 lines)
        images/<class_name>/<id>.jpg

The folder an image is listed under is its noisy label. A verification label says whether
a person judged that label right (1) or wrong (0); both files verify images of the
training list (the release's readme), so both give known truths about training images.
Header lines are optional; blank lines and surrounding whitespace are ignored.

**Known truths from yes/no verdicts.** The package measures the confident set's label
precision as ``correct / known`` over the examples whose true label is known (``>= 0``),
``correct`` meaning given label = true label (:meth:`Procedure.confident_stats`). A verdict
of 1 makes the true label the noisy label itself. A verdict of 0 says only that the true
label is *not* the noisy label; -1 ("unknown") would leave those images out of ``known``
and make every precision 100 %. So a wrong verdict is encoded as a stand-in class that is
not the noisy label, ``(noisy + 1) % K``: the image counts as known and wrong, and
precision (confident images verified right among confident images with a verdict),
recall and the given labels' precision come out exactly as the verdicts say. The
stand-in is no claim about the true class: ``examples.csv``'s ``true_label`` names it
for those images, and must be read there as "not the given label"
(:func:`known_labels_from_verdicts`, docs/real-noise.md).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

from ..base.errors import InputError
from .clothing1m import Offenders, check_listed_files_exist, plural_s, quote_some, refuse_repeated, text_lines
from .dataset import ImageFiles, ImageList, release_folder
from .registry import FOOD101N

# The release's file names are its registry entry's.
META = FOOD101N.file("meta")
CLASSES = FOOD101N.file("classes")
IMAGELIST = FOOD101N.file("imagelist")
VERIFIED_TRAIN = FOOD101N.file("verified_train")
VERIFIED_VAL = FOOD101N.file("verified_val")
VERIFIED_FILES = (VERIFIED_TRAIN, VERIFIED_VAL)
IMAGES = FOOD101N.file("images")
FOOD101_DIR = FOOD101N.file("food101")  # Food-101's release, in ROOT or beside it
FOOD101_TEST = FOOD101N.file("food101_test")
NUM_CLASSES = FOOD101N.num_classes  # the release's; a miniature may have fewer (at least 2)
_HEADERS = {
    CLASSES: "class_name",
    IMAGELIST: "class_name/key",
    VERIFIED_TRAIN: "class_name/key",
    VERIFIED_VAL: "class_name/key",
}


def read_food101n(
    root: str | os.PathLike,
    *,
    food101_dir: str | os.PathLike | None = None,
    check_files: bool = True,
    image_size: int = FOOD101N.image_size,
) -> ImageFiles:
    """List Food-101N's training images with their noisy labels and verifications, and
    Food-101's test images.

    Args:
        root: the release's folder (``meta/`` and ``images/`` below it).
        food101_dir: Food-101's release (``meta/test.txt``, ``images/``); by default
            ``root/food-101``, else ``food-101`` beside ``root``.
        check_files: check that every listed image exists.
        image_size: recorded in the result as the side images are resized to when packed.

    Returns:
        :class:`ImageFiles` named ``"food101n"``: ``train`` the images of ``imagelist.tsv``
        in its order, labelled by their class folder; ``test`` Food-101's test split;
        ``val`` None; ``class_names`` those of ``classes.txt``; ``known_train_labels``
        from the verification files (:func:`known_labels_from_verdicts`: the noisy label
        where verified right, a stand-in class other than it where verified wrong, -1
        where unverified).

    Raises:
        InputError: a missing file or folder; a malformed line, an unknown class, a key
            listed twice (each naming the file and the lines); a key verified twice with
            different verdicts; a missing image (with ``check_files``).
    """
    root = release_folder(
        root,
        image_size,
        missing=(
            "Food-101N directory {root} does not exist or is not a directory; give the release's folder "
            "(Food-101N_release, holding meta/ and images/) with --data-dir"
        ),
    )
    meta = root / META
    class_names = read_classes(_need(meta / CLASSES))
    index = {name: i for i, name in enumerate(class_names)}
    keys, labels = read_imagelist(_need(meta / IMAGELIST), index)
    verdicts = _training_verdicts(keys, read_verification(root, index))
    food101 = _food101_root(root, food101_dir)
    test_list = _need(food101 / FOOD101_TEST)
    test_keys, test_labels = read_food101_test(test_list, index)
    if check_files:
        check_listed_files_exist(root / IMAGES, keys, meta / IMAGELIST)
        check_listed_files_exist(food101 / IMAGES, test_keys, test_list)
    return ImageFiles(
        name=FOOD101N.name,
        root=root,
        train=ImageList([os.path.join(root, IMAGES, k) for k in keys], labels),
        val=None,
        test=ImageList([os.path.join(food101, IMAGES, k) for k in test_keys], test_labels),
        class_names=class_names,
        known_train_labels=known_labels_from_verdicts(labels, verdicts, len(class_names)),
        image_size=image_size,
    )


def known_labels_from_verdicts(labels: np.ndarray, verdicts: np.ndarray, num_classes: int) -> np.ndarray | None:
    """Known true labels from yes/no verdicts (the module's docstring says why):
    ``labels`` where ``verdicts`` is 1, the stand-in ``(labels + 1) % num_classes`` (any
    class but the noisy one) where it is 0, -1 where it is -1 (unverified); None when no
    image is verified."""
    verdicts = np.asarray(verdicts)
    if not (verdicts >= 0).any():
        return None
    labels = np.asarray(labels, dtype=np.int64)
    return np.where(verdicts == 1, labels, np.where(verdicts == 0, (labels + 1) % num_classes, -1)).astype(np.int64)


def _need(path: Path) -> Path:
    if not path.is_file():
        what = "is a folder, not a file" if path.is_dir() else "not found"
        raise InputError(
            f"Food-101N file {path} {what}; --data-dir must be the release's folder (meta/ and "
            f"images/ below it), with Food-101's release in food-101/ inside it or beside it"
        )
    return path


def _data_lines(path: Path):
    """(line number, stripped line) of the non-blank lines of ``path``, its header (the
    first non-blank line when it starts like :data:`_HEADERS` says) left out."""
    header = _HEADERS.get(path.name)
    first = True
    for number, line in text_lines(path):
        text = line.strip()
        if not text:
            continue
        if first and header is not None and text.split()[0] == header:
            first = False
            continue
        first = False
        yield number, text


def read_classes(path: Path) -> tuple[str, ...]:
    """The class names of ``classes.txt``, one a line (at least 2, none twice, no "/" or
    whitespace in a name)."""
    names: list[str] = []
    bad = Offenders()
    for number, text in _data_lines(path):
        if "/" in text or len(text.split()) != 1:
            bad.add(number, text)
        names.append(text)
    if bad.count:
        raise InputError(
            f"{path} has {bad.count:,} malformed class name{plural_s(bad.count)} (one name a line, without "
            f"'/' or spaces): {bad.quote()}"
        )
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise InputError(
            f"{path} names {len(repeated)} class{'' if len(repeated) == 1 else 'es'} more than once: "
            f"{quote_some(repeated)}"
        )
    if len(names) < 2:
        raise InputError(
            f"{path} holds {len(names)} class name{plural_s(len(names))}; Food-101N has {NUM_CLASSES}, one a "
            f"line after the header 'class_name'"
        )
    return tuple(names)


def _split_key(text: str, index: dict[str, int], number: int, malformed: Offenders, unknown: Offenders) -> int | None:
    """The label of a ``<class_name>/<name>`` key, or None (the line counted as malformed
    or of an unknown class)."""
    head, sep, tail = text.partition("/")
    if not sep or not tail or len(text.split()) != 1:
        malformed.add(number, text)
        return None
    label = index.get(head)
    if label is None:
        unknown.add(number, text)
    return label


def _raise_for(path: Path, malformed: Offenders, form: str, unknown: Offenders) -> None:
    if malformed.count:
        n = malformed.count
        raise InputError(f"{path} has {n:,} malformed line{plural_s(n)} (each must be '{form}'): {malformed.quote()}")
    if unknown.count:
        n = unknown.count
        raise InputError(f"{path} has {n:,} line{plural_s(n)} whose class is not in {CLASSES}: {unknown.quote()}")


def read_imagelist(path: Path, index: dict[str, int]) -> tuple[list[str], np.ndarray]:
    """The keys of ``imagelist.tsv`` (``<class_name>/<key>.jpg``, in order) and their
    labels, the index of each key's class folder."""
    return _read_keys(path, index, form="<class_name>/<key>.jpg", suffix="")


def _read_keys(path: Path, index: dict[str, int], *, form: str, suffix: str) -> tuple[list[str], np.ndarray]:
    """The ``<class_name>/...`` lines of ``path`` as image keys (each plus ``suffix``) and
    their labels; ``form`` names the line's shape in the error message."""
    keys: list[str] = []
    labels: list[int] = []
    malformed, unknown = Offenders(), Offenders()
    for number, text in _data_lines(path):
        label = _split_key(text, index, number, malformed, unknown)
        if label is not None:
            keys.append(text + suffix)
            labels.append(label)
    _raise_for(path, malformed, form, unknown)
    if not keys:
        raise InputError(f"{path} lists no images")
    refuse_repeated(path, keys, "image")
    return keys, np.array(labels, dtype=np.int64)


def read_verified(path: Path, index: dict[str, int]) -> dict[str, int]:
    """The verdicts of a ``verified_*.tsv`` file: key -> 1 (its class is right) or 0
    (wrong). A key given twice with the same verdict is accepted, with two it is refused."""
    verdicts: dict[str, int] = {}
    malformed, unknown, conflicts = Offenders(), Offenders(), Offenders()
    for number, text in _data_lines(path):
        fields = text.split()
        if len(fields) != 2 or fields[1] not in ("0", "1"):
            malformed.add(number, text)
            continue
        key, verdict = fields[0], int(fields[1])
        if _split_key(key, index, number, malformed, unknown) is None:
            continue
        if verdicts.setdefault(key, verdict) != verdict:
            conflicts.add(number, text)
    _raise_for(path, malformed, "<class_name>/<key>.jpg<TAB>0 or 1", unknown)
    if conflicts.count:
        n = conflicts.count
        raise InputError(
            f"{path} verifies {n:,} image{plural_s(n)} a second time with the other verdict: {conflicts.quote()}"
        )
    return verdicts


def read_verification(root: str | os.PathLike, index: dict[str, int] | None = None) -> dict[str, int]:
    """Every verdict of the release ``root``: ``verified_train.tsv`` and ``verified_val.tsv``
    together, key (``<class_name>/<key>.jpg``) -> 1 (the image's class is right) or 0.

    Raises:
        InputError: as :func:`read_verified`; a key the two files give different verdicts.
    """
    meta = Path(root).expanduser() / META
    if index is None:
        index = {name: i for i, name in enumerate(read_classes(_need(meta / CLASSES)))}
    train = read_verified(_need(meta / VERIFIED_TRAIN), index)
    val = read_verified(_need(meta / VERIFIED_VAL), index)
    clash = [k for k, v in val.items() if train.get(k, v) != v]
    if clash:
        raise InputError(
            f"{len(clash):,} image{plural_s(len(clash))} {'is' if len(clash) == 1 else 'are'} verified "
            f"differently in {meta / VERIFIED_TRAIN} and {meta / VERIFIED_VAL}: {quote_some(clash)}"
        )
    return {**train, **val}


def _training_verdicts(keys: list[str], verdicts: dict[str, int]) -> np.ndarray:
    """Per training key, its verdict (1, 0) or -1; verified keys missing from the
    training list are named in a note (their verdict applies to no training image)."""
    out = np.fromiter((verdicts.get(k, -1) for k in keys), dtype=np.int64, count=len(keys))
    found = int((out >= 0).sum())
    if found != len(verdicts):
        listed = set(keys)
        stray = [k for k in verdicts if k not in listed]
        verb = "is" if len(stray) == 1 else "are"
        print(
            f"memomentum: note: {len(stray):,} of the {len(verdicts):,} verified images {verb} not in {IMAGELIST} "
            f"and {verb} left out of the known truths: {quote_some(stray)}",
            file=sys.stderr,
        )
    return out


def _food101_root(root: Path, food101_dir: str | os.PathLike | None) -> Path:
    """Food-101's release: ``food101_dir``, else ``root/food-101``, else ``food-101`` beside ``root``."""
    if food101_dir is not None:
        found = Path(os.path.abspath(Path(food101_dir).expanduser()))
        if not found.is_dir():
            raise InputError(f"Food-101 directory {found} does not exist or is not a directory")
        return found
    places = (root / FOOD101_DIR, root.parent / FOOD101_DIR)
    for place in places:
        if (place / FOOD101_TEST).is_file():
            return place
    raise InputError(
        f"Food-101N's test set is Food-101's test split, not found: unpack Food-101's release "
        f"(food-101/meta/test.txt and food-101/images/) into {places[0]} or {places[1]}"
    )


def read_food101_test(path: Path, index: dict[str, int]) -> tuple[list[str], np.ndarray]:
    """Food-101's ``meta/test.txt`` (``<class_name>/<id>`` lines): the image keys
    (``<class_name>/<id>.jpg``) and their labels, by Food-101N's class names."""
    return _read_keys(path, index, form="<class_name>/<id>", suffix=".jpg")

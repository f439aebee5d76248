"""Clothing1M (Xiao et al., CVPR 2015) from its official release: lists the image files
and their labels; :mod:`.store` packs the pixels.

The release's layout, with ``ROOT`` the directory given::

    ROOT/images/<d>/<dd>/<name>.jpg        the JPEGs (keys are relative to ROOT)
    ROOT/noisy_label_kv.txt                "images/0/00/xxx.jpg LABEL" (1,037,497 lines)
    ROOT/clean_label_kv.txt                the same, with clean labels (72,409 lines)
    ROOT/noisy_train_key_list.txt          one key a line (1,000,000)
    ROOT/clean_train_key_list.txt          (47,570)
    ROOT/clean_val_key_list.txt            (14,313)
    ROOT/clean_test_key_list.txt           (10,526)
    ROOT/category_names_eng.txt            the 14 class names, one a line

The annotation files may also lie in ``ROOT/annotations/``. The reference reads them into
dictionaries and silently skips keys it cannot find, which shifts every later label onto
the wrong image; here each inconsistency is an :class:`InputError` that gives the count
and the first few offenders.

The reader is built for the full release's million lines: annotation files are streamed
line by line, and the listed images are checked by listing their folders rather than one
``stat`` per image (see :func:`_missing_files`). ``python -m memomentum.data.clothing1m
ROOT`` reads a release and prints the time and memory it took;
:func:`memomentum.testing.clothing1m_scale.write_annotation_scale` writes a full-size release to try it on.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from itertools import repeat
from operator import itemgetter
from pathlib import Path

import numpy as np

from ..base.checks import first_few
from ..base.errors import InputError
from .dataset import ImageFiles, ImageList
from .registry import CLOTHING1M

# The release's facts are its registry entry's: the 14 class names in label order, and the annotation files.
CLOTHING1M_CLASSES = CLOTHING1M.class_names
NUM_CLASSES = CLOTHING1M.num_classes
TRAIN_SETS = ("noisy", "clean")

NOISY_KV = CLOTHING1M.file("noisy_kv")
CLEAN_KV = CLOTHING1M.file("clean_kv")
NOISY_TRAIN = CLOTHING1M.file("noisy_train")
CLEAN_TRAIN = CLOTHING1M.file("clean_train")
CLEAN_VAL = CLOTHING1M.file("clean_val")
CLEAN_TEST = CLOTHING1M.file("clean_test")
CATEGORY_NAMES = CLOTHING1M.file("category_names")
ANNOTATIONS = CLOTHING1M.file("annotations")  # the annotation files' sub-folder, when not in the root
ANNOTATION_FILES = (NOISY_KV, CLEAN_KV, NOISY_TRAIN, CLEAN_TRAIN, CLEAN_VAL, CLEAN_TEST, CATEGORY_NAMES)

# Labels as they are written; the exact spellings take the fast path of a dictionary
# look-up instead of int() (a third of the parsing time at a million lines).
_LABELS = {str(i): i for i in range(NUM_CLASSES)}
_SHOWN = 5  # offenders quoted in a message


# --------------------------------------------------------------------------- entry point


def read_clothing1m(
    root: str | os.PathLike,
    *,
    train_set: str = "noisy",
    check_files: bool = True,
    image_size: int = CLOTHING1M.image_size,
) -> ImageFiles:
    """List Clothing1M's images and labels from the official release.

    Args:
        root: the release's directory: ``images/`` below it, the annotation files in it
            or in its ``annotations/`` sub-folder.
        train_set: ``"noisy"``: the 1,000,000 keys of ``noisy_train_key_list.txt`` with
            their labels from ``noisy_label_kv.txt``; ``"clean"``: the 47,570 keys of
            ``clean_train_key_list.txt`` with labels from ``clean_label_kv.txt``.
        check_files: check that every listed image exists (seconds for a million files
            in the page cache; longer on a cold or network disk). Off, a missing file is
            only found when the images are packed.
        image_size: recorded in the result as the side images are resized to when packed.

    Returns:
        :class:`ImageFiles` named ``"clothing1m"`` whose ``train`` is the chosen training
        set, ``val`` and ``test`` the clean validation (14,313) and test (10,526) sets,
        ``class_names`` the names of ``category_names_eng.txt``. For the noisy training
        set, ``known_train_labels`` holds the clean label of each training image that
        ``clean_label_kv.txt`` labels and -1 for the others (None when it labels none);
        for the clean training set it is None (the given labels are the clean ones).
        Paths are absolute (``root / key``), in the order of the key lists.

    Raises:
        InputError: a bad argument; a missing annotation file; a malformed line; a label
            that is not an integer in 0..13; a key listed twice in a key list or given
            two different labels; a listed key without a label; a category names file
            without exactly 14 names; a missing image file (with ``check_files``).
    """
    _check_arguments(train_set, image_size)
    root = _release_root(root)
    files, train_list = _annotation_files(root, train_set)

    class_names = read_category_names(files[CATEGORY_NAMES])
    clean = read_label_kv(files[CLEAN_KV])
    train_keys, train_labels, known_train_labels = _training_set(files, clean, train_set)
    val_keys, val_labels = _listed_labels(files[CLEAN_VAL], clean, files[CLEAN_KV])
    test_keys, test_labels = _listed_labels(files[CLEAN_TEST], clean, files[CLEAN_KV])
    del clean
    _note_overlap(train_keys, train_list, val_keys, files[CLEAN_VAL], test_keys, files[CLEAN_TEST])
    if check_files:
        _check_images_exist(
            root, ((train_keys, train_list), (val_keys, files[CLEAN_VAL]), (test_keys, files[CLEAN_TEST]))
        )

    prefix = str(root) + os.sep
    return ImageFiles(
        name=CLOTHING1M.name,
        root=root,
        train=ImageList([prefix + k for k in train_keys], train_labels),
        val=ImageList([prefix + k for k in val_keys], val_labels),
        test=ImageList([prefix + k for k in test_keys], test_labels),
        class_names=class_names,
        known_train_labels=known_train_labels,
        image_size=image_size,
        labels_are_clean=train_set == "clean",
    )


def _check_arguments(train_set: str, image_size: int) -> None:
    if train_set not in TRAIN_SETS:
        raise InputError(f"train_set must be one of {', '.join(map(repr, TRAIN_SETS))}, got {train_set!r}")
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 1:
        raise InputError(f"image_size must be a positive integer, got {image_size!r}")


def _release_root(root: str | os.PathLike) -> Path:
    """The release's directory as an absolute path; it must exist."""
    root = Path(os.path.abspath(Path(root).expanduser()))
    if not root.is_dir():
        raise InputError(
            f"Clothing1M directory {root} does not exist or is not a directory; give the root of "
            f"the release (the folder holding images/ and the annotation files) with --data-dir"
        )
    return root


def _annotation_files(root: Path, train_set: str) -> tuple[dict[str, Path], Path]:
    """The paths of the annotation files ``train_set`` needs (in ``root`` or its
    ``annotations/`` sub-folder), and of its training key list among them."""
    where = [root, root / ANNOTATIONS]
    names = (NOISY_KV, CLEAN_KV, NOISY_TRAIN) if train_set == "noisy" else (CLEAN_KV, CLEAN_TRAIN)
    files = {n: _locate(where, n) for n in names + (CLEAN_VAL, CLEAN_TEST, CATEGORY_NAMES)}
    return files, files[names[-1]]


def _training_set(
    files: dict[str, Path], clean: dict[str, int], train_set: str
) -> tuple[list[str], np.ndarray, np.ndarray | None]:
    """The training keys, their labels, and the clean labels known for them (see
    :func:`read_clothing1m`'s ``known_train_labels``)."""
    if train_set != "noisy":
        train_keys, train_labels = _listed_labels(files[CLEAN_TRAIN], clean, files[CLEAN_KV])
        return train_keys, train_labels, None
    noisy = read_label_kv(files[NOISY_KV])
    train_keys = read_key_list(files[NOISY_TRAIN])
    train_labels = labels_for(train_keys, noisy, files[NOISY_TRAIN], files[NOISY_KV])
    del noisy  # a million entries: let it go before the paths are built
    known = np.fromiter(map(clean.get, train_keys, repeat(-1)), dtype=np.int64, count=len(train_keys))
    return train_keys, train_labels, known if (known >= 0).any() else None


def _listed_labels(key_list: Path, labels: dict[str, int], kv_file: Path) -> tuple[list[str], np.ndarray]:
    """The keys of ``key_list`` and their labels from ``labels`` (read from ``kv_file``)."""
    keys = read_key_list(key_list)
    return keys, labels_for(keys, labels, key_list, kv_file)


def _check_images_exist(root: Path, lists: Sequence[tuple[list[str], Path]]) -> None:
    """Raise for the first of ``lists`` (keys, the key list file) that names a missing image.

    One check for all the lists together: each would list every image folder once."""
    every_key: list[str] = []
    for keys, _ in lists:
        every_key += keys
    missing = set(_missing_files(root, every_key))
    if missing:
        for keys, listed_in in lists:
            gone = [k for k in keys if k in missing]
            if gone:
                raise InputError(
                    f"{len(gone):,} of the {len(keys):,} images listed in {listed_in} "
                    f"{'is' if len(gone) == 1 else 'are'} missing under {root}: {quote_some(gone)}"
                )


# --------------------------------------------------------------------------- annotation files


def _note_overlap(
    train_keys: list[str], train_list: Path, val_keys: list[str], val_list: Path, test_keys: list[str], test_list: Path
) -> None:
    """A note when an image to score on is also one to train on: its accuracy is then no
    held-out figure (the official lists are disjoint; an edited copy may not be)."""
    train = set(train_keys)
    for keys, listed_in, what in ((test_keys, test_list, "test"), (val_keys, val_list, "validation")):
        shared = [k for k in keys if k in train]
        if shared:
            print(
                f"memomentum: note: {len(shared):,} of the {len(keys):,} {what} images of {listed_in} are also "
                f"training images ({train_list}), so the {what} accuracy is not measured on held-out images: "
                f"{quote_some(shared)}",
                file=sys.stderr,
            )


def _locate(dirs: Sequence[Path], name: str) -> Path:
    """The annotation file ``name`` in the first of ``dirs`` that holds it."""
    for d in dirs:
        if (d / name).is_file():
            return d / name
    folders = [str(d / name) for d in dirs if (d / name).is_dir()]
    raise InputError(
        f"Clothing1M annotation file {name} not found: looked in {dirs[0]} and {dirs[1]}"
        + (f" ({folders[0]} is a folder, not the file)" if folders else "")
    )


def quote_some(items: Sequence[str], total: int | None = None) -> str:
    """The first few ``items`` for a message, and how many more there are (of ``total``,
    by default ``len(items)``)."""
    return first_few(items, _SHOWN, total)


class Offenders:
    """Counts offending lines and keeps the first few for the message (a wrong file can
    offend on every one of a million lines)."""

    def __init__(self) -> None:
        self.count = 0
        self.first: list[str] = []

    def add(self, number: int, line: str) -> None:
        self.count += 1
        if len(self.first) < _SHOWN:
            self.first.append(f"line {number} {line.strip()[:80]!r}")

    def quote(self) -> str:
        return quote_some(self.first, self.count)


def text_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, line) for each line of a UTF-8 text file, CRLF and CR line ends read
    as LF, a byte-order mark at its start dropped (Notepad's "UTF-8 with BOM": kept, it
    would make the first line's first word another one). A NUL byte is refused: text has
    none, and a copy cut short or zero-filled by an interrupted write has runs of them
    (read as a class name or a key, they would pass). Streaming the file keeps one line
    in memory at a time, and a loop over the lines is as fast as C-level map/filter/zip
    over a list of them, which would hold the whole file in memory."""
    number = 0
    try:
        with open(path, encoding="utf-8-sig") as f:
            for number, line in enumerate(f, 1):
                if "\x00" in line:
                    raise InputError(
                        f"{path} holds NUL bytes on line {number}, which no list of the release has: "
                        f"the file was cut short or zero-filled by an interrupted copy; copy it again"
                    )
                yield number, line
    except UnicodeDecodeError as e:  # decoded a block ahead: find the line from the bytes
        if _starts_utf16(path):
            raise InputError(
                f'{path} is UTF-16 text (Notepad\'s "Unicode"), not UTF-8: save it again as UTF-8'
            ) from None
        raise InputError(f"{path} is not UTF-8 text (line {_line_of_byte(path, e)} cannot be decoded)") from None
    except IsADirectoryError:
        raise InputError(f"{path} is a folder, not a list file: the release's file of that name is missing") from None
    except OSError as e:
        raise InputError(f"could not read {path}: {e.strerror or e}") from e


def _starts_utf16(path: Path) -> bool:
    """Whether ``path`` starts with UTF-16's byte-order mark (either byte order)."""
    try:
        with open(path, "rb") as f:
            return f.read(2) in (b"\xff\xfe", b"\xfe\xff")
    except OSError:
        return False


def _line_of_byte(path: Path, error: UnicodeDecodeError) -> int | str:
    """The line holding the first undecodable byte of ``path`` ("?" if unreadable)."""
    try:
        data = path.read_bytes()
        data.decode("utf-8")
    except UnicodeDecodeError as e:
        return data.count(b"\n", 0, e.start) + 1
    except OSError:
        pass
    return "?"


def read_label_kv(path: Path) -> dict[str, int]:
    """Read a ``KEY LABEL`` file (``noisy_label_kv.txt``, ``clean_label_kv.txt``).

    Blank lines and surrounding whitespace are ignored. A key given twice with the same
    label is accepted; with two different labels it is an error.

    Returns:
        key -> label (0..13).

    Raises:
        InputError: a line without exactly two fields, a label that is not an integer in
            0..13, a key with two different labels.
    """
    labels: dict[str, int] = {}
    malformed, bad_labels = Offenders(), Offenders()
    n_entries = 0
    for number, line in text_lines(path):
        fields = line.split()
        if len(fields) == 2:
            key, text = fields
            label = _LABELS.get(text)
            if label is None:
                label = _slow_label(text)
                if label is None:
                    bad_labels.add(number, line)
                    continue
            labels[key] = label
            n_entries += 1
        elif fields:
            malformed.add(number, line)
    if malformed.count:
        n = malformed.count
        raise InputError(
            f"{path} has {n:,} malformed line{plural_s(n)} (each must be 'KEY LABEL'): {malformed.quote()}"
        )
    if bad_labels.count:
        n = bad_labels.count
        raise InputError(
            f"{path} has {n:,} label{plural_s(n)} that {'is' if n == 1 else 'are'} not an integer in "
            f"0..{NUM_CLASSES - 1}: {bad_labels.quote()}"
        )
    if len(labels) != n_entries:  # some key came twice: fine unless its labels differ
        _check_conflicts(path)
    return labels


def _slow_label(text: str) -> int | None:
    """A label written in some other integer spelling ("05", "+3"), or None if ``text``
    is not an integer in 0..13."""
    try:
        value = int(text)
    except ValueError:
        return None
    return value if 0 <= value < NUM_CLASSES else None


def _check_conflicts(path: Path) -> None:
    """Raise if a repeated key of a (well-formed) kv file has two different labels: a
    second pass, run only when some key is repeated, so the usual file pays nothing."""
    seen: dict[str, tuple[int | None, int]] = {}
    conflicts: list[str] = []
    for number, line in text_lines(path):
        fields = line.split()
        if not fields:
            continue
        key, label = fields[0], _slow_label(fields[1])  # all valid: read_label_kv checked
        first = seen.setdefault(key, (label, number))
        if first[0] != label:
            conflicts.append(f"{key} (line {first[1]}: {first[0]}, line {number}: {label})")
    if conflicts:
        n = len(conflicts)
        raise InputError(f"{path} gives {n:,} key{plural_s(n)} a second, different label: {quote_some(conflicts)}")


def read_key_list(path: Path) -> list[str]:
    """Read a key list (one key a line; blank lines and surrounding whitespace ignored).

    Raises:
        InputError: a line with more than one field, a key listed twice, no key at all.
    """
    keys: list[str] = []
    malformed = Offenders()
    for number, line in text_lines(path):
        key = line.strip()
        if not key:
            continue
        if " " in key or "\t" in key:  # cheaper than split() on a million lines
            malformed.add(number, key)
            continue
        keys.append(key)
    if malformed.count:
        n = malformed.count
        raise InputError(f"{path} has {n:,} malformed line{plural_s(n)} (each must hold one key): {malformed.quote()}")
    if not keys:
        raise InputError(f"{path} lists no keys")
    refuse_repeated(path, keys, "key")
    return keys


def labels_for(keys: Sequence[str], labels: dict[str, int], key_list: Path, kv_file: Path) -> np.ndarray:
    """The labels of ``keys`` as an int64 array, in their order.

    Raises:
        InputError: some key has no label in ``labels`` (read from ``kv_file``).
    """
    try:
        return np.fromiter(map(labels.get, keys), dtype=np.int64, count=len(keys))
    except TypeError:  # a None among them: name the keys without a label
        unlabelled = [k for k in keys if k not in labels]
        n = len(unlabelled)
        raise InputError(
            f"{key_list} lists {n:,} key{plural_s(n)} that {'has' if n == 1 else 'have'} no label in {kv_file}: "
            f"{quote_some(unlabelled)}"
        ) from None


def read_category_names(path: Path) -> tuple[str, ...]:
    """The class names of ``category_names_eng.txt``: exactly 14 non-empty lines (blank
    lines and surrounding whitespace ignored).

    Raises:
        InputError: any other number of names.
    """
    names = tuple(line.strip() for _, line in text_lines(path) if line.strip())
    if len(names) != NUM_CLASSES:
        raise InputError(
            f"{path} holds {len(names)} category name{plural_s(len(names))}, expected exactly {NUM_CLASSES} "
            f"(one a line, e.g. {', '.join(CLOTHING1M_CLASSES[:3])}, ...)"
        )
    return names


def plural_s(n: int) -> str:
    return "" if n == 1 else "s"


# --------------------------------------------------------------------------- image files


# Listing a folder costs about as much as 200 to 400 stat calls on the release's
# folders of ~1,000 images each: keys that fill their folders more densely than this
# are checked by listing, sparser ones (the clean sets, ~70 keys a folder) by stat.
_KEYS_PER_FOLDER_TO_LIST = 250


def _missing_files(root: Path, keys: Sequence[str], *, threads: int = 4) -> list[str]:
    """The keys whose file ``root / key`` is not an existing file, in key order.

    Where the keys are dense in their folders (the million noisy training keys, ~1,000
    a folder), each folder is listed once (``os.scandir``: a few system calls for a
    thousand names) and the sets are compared in C, instead of one ``stat`` per image:
    a loop of ``os.path.isfile`` (or ``os.stat``) calls is bound by Python, not by the
    disk, so running it in threads does not help. Sparse keys are checked with
    ``os.path.isfile`` in a tight loop. The listings run in ``threads`` threads, which
    overlap the waits on a cold or network disk. Symbolic links are followed, as
    ``isfile`` does; a key whose folder cannot be listed counts as missing.
    """
    # map/itemgetter keep the per-key work in C (a Python loop costs about 1 s a million keys).
    heads = set(map(itemgetter(0), map(str.rpartition, keys, repeat("/"))))
    base = str(root)
    if len(keys) < _KEYS_PER_FOLDER_TO_LIST * len(heads):
        isfile, prefix = os.path.isfile, base + os.sep
        return [k for k in keys if not isfile(prefix + k)]

    def listing(head: str) -> list[str]:
        """The files in folder ``head``, as keys."""
        prefix = head + "/" if head else ""
        try:
            with os.scandir(os.path.join(base, head)) as it:
                return [prefix + e.name for e in it if e.is_file()]  # d_type: no stat per regular file
        except OSError:  # missing or unreadable folder: every key in it is missing
            return []

    present: set[str] = set()
    with ThreadPoolExecutor(max_workers=max(1, min(threads, len(heads)))) as pool:
        for names in pool.map(listing, sorted(heads)):
            present.update(names)
    if present.issuperset(keys):
        return []
    return [k for k in keys if k not in present]


def _main(argv: Sequence[str] | None = None) -> None:
    """``python -m memomentum.data.clothing1m ROOT [--clean] [--no-check]``: read a release
    and print the counts, the time and the peak Python memory (to measure the reader at
    full scale)."""
    import argparse
    import time
    import tracemalloc

    parser = argparse.ArgumentParser(prog="python -m memomentum.data.clothing1m")
    parser.add_argument("root")
    parser.add_argument("--clean", action="store_true", help="read the clean training set")
    parser.add_argument("--no-check", action="store_true", help="do not check that the image files exist")
    parser.add_argument("--trace", action="store_true", help="measure peak Python memory (slower)")
    args = parser.parse_args(argv)
    if args.trace:
        tracemalloc.start()
    start = time.perf_counter()
    try:
        files = read_clothing1m(args.root, train_set="clean" if args.clean else "noisy", check_files=not args.no_check)
    except InputError as e:
        raise SystemExit(f"error: {e}") from None
    elapsed = time.perf_counter() - start
    known = 0 if files.known_train_labels is None else int((files.known_train_labels >= 0).sum())
    print(
        f"train {len(files.train):,} (clean label known for {known:,}), val {len(files.val or []):,}, "
        f"test {len(files.test or []):,}: {elapsed:.2f} s"
    )
    if args.trace:
        print(f"peak Python memory {tracemalloc.get_traced_memory()[1] / 2**20:.0f} MiB")


if __name__ == "__main__":
    _main()


# -- shared by the readers of other releases' image lists (food101n, webvision) --------------


def refuse_repeated(path: Path, keys, noun: str) -> None:
    """Refuse a list that names an entry twice, naming the first repeated ones."""
    if len(set(keys)) != len(keys):
        seen: set[str] = set()
        again: dict[str, None] = {}  # in the order of their second appearance
        for k in keys:
            if k in seen:
                again[k] = None
            seen.add(k)
        repeated = list(again)
        raise InputError(
            f"{path} lists {len(repeated):,} {noun}{plural_s(len(repeated))} more than once: {quote_some(repeated)}"
        )


def check_listed_files_exist(folder: Path, keys: list[str], listed_in: Path) -> None:
    """Refuse a list whose images are not all under ``folder``, naming the first missing ones."""
    gone = _missing_files(folder, keys)
    if gone:
        raise InputError(
            f"{len(gone):,} of the {len(keys):,} images listed in {listed_in} "
            f"{'is' if len(gone) == 1 else 'are'} missing under {folder}: {quote_some(gone)}"
        )

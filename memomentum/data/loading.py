"""Loading a dataset by name: a table, image files (Clothing1M, ANIMAL-10N, Food-101N,
mini-WebVision, an image folder) packed into their store, or arrays (the benchmarks,
``.npz``); :mod:`.registry` says which, and names each dataset's reader."""

from __future__ import annotations

from pathlib import Path

from ..base.errors import InputError
from .arrays import load_array_dataset
from .dataset import IMAGENET_MEAN, IMAGENET_STD, Dataset, ImageFiles, ImageList
from .registry import (
    BENCHMARK,
    DEFAULT_IMAGE_SIZE,
    IMAGE_FILES_MODEL,
    REAL_NOISE,
    DatasetSpec,
    find_spec,
    is_table_file,
    is_table_folder,
    recognised_in,
    sharing_markers,
    spec_named,
)
from .tables import load_table


def load_dataset(
    name: str,
    *,
    data_dir: str | None = None,
    cache_dir: str | None = None,
    image_size: int | None = None,
    store_format: str = "jpeg",
    train_set: str = "noisy",
    workers: int | None = None,
    progress: bool = True,
    label_column: str = "label",
) -> Dataset:
    """Load a benchmark data set by name, Clothing1M, an image folder, a ``.npz`` file or a table.

    Args:
        name: a dataset of :data:`.registry.SPECS` (``digits``, ..., ``clothing1m``,
            ``animal10n``, ``food101n``, ``webvision``, in any of the spellings it answers
            to), the path of a folder of images with
            one sub-folder per class (:mod:`.folders`), a path ending in ``.npz``, or one
            ending in ``.csv`` or ``.parquet`` (:mod:`.tables`).
        data_dir: where the files are (see :func:`.arrays.load_array_dataset`); for
            Clothing1M and the other real-noise releases the release's root (default: the
            spec's ``default_dir``, ``./data/<name>``).
        cache_dir, image_size, store_format, workers, progress: for image files, how they
            are packed (:func:`pack_image_files`); ignored for the other sources.
        train_set: Clothing1M's training set, ``"noisy"`` or ``"clean"``.
        label_column: for a table, the column holding the labels (the reader's notes on
            dropped columns and rows are printed to stderr).

    Raises:
        InputError: unknown name, missing or malformed files.
    """
    files = load_image_files(
        name,
        data_dir=data_dir,
        image_size=image_size,
        train_set=train_set,
        label_column=label_column,
        cache_dir=cache_dir,
    )
    if files is None and is_table_file(name):  # a table without an image column: features
        _refuse_image_options(
            name, image_size=image_size, cache_dir=cache_dir, store_format=store_format, workers=workers
        )
        return load_table(name, label_column=label_column, data_dir=data_dir)
    if files is None:
        return load_array_dataset(name, data_dir=data_dir)
    return pack_image_files(files, cache_dir=cache_dir, store_format=store_format, workers=workers, progress=progress)


def _refuse_image_options(name: str, **given) -> None:
    """The packing options, given for a table that turned out to hold features, not images,
    are refused rather than ignored (the configuration cannot know before the table is read)."""
    defaults = {"image_size": None, "cache_dir": None, "store_format": "jpeg", "workers": None}
    for option, value in given.items():
        if value != defaults[option]:
            flag = "--" + option.replace("_", "-")
            raise InputError(
                f"{flag} applies to image files; {name.strip()} has no column of images, so it would be "
                f"ignored; leave {flag} out"
            )


def load_image_files(
    name: str,
    *,
    data_dir: str | None = None,
    image_size: int | None = None,
    train_set: str = "noisy",
    label_column: str = "label",
    cache_dir: str | None = None,
) -> ImageFiles | None:
    """The image files ``name`` stands for (Clothing1M, ANIMAL-10N, Food-101N,
    mini-WebVision, an image folder, or a table with an image column: :mod:`.image_tables`,
    whose image bytes are written once under ``cache_dir``), listed and checked but not
    decoded; None when ``name`` is not an image-file source."""
    if not isinstance(name, str) or not name.strip():
        raise InputError(f"dataset name must be a non-empty string, got {name!r}")
    size = DEFAULT_IMAGE_SIZE if image_size is None else image_size
    spec = find_spec(name)
    if spec is not None and spec.kind == REAL_NOISE:
        root = Path(data_dir or spec.default_dir or ".").expanduser()
        side = spec.image_size if image_size is None else image_size
        options = {"train_set": train_set} if "train_set" in spec.options else {}
        return spec.read_function()(root, image_size=side, **options)
    path = Path(name.strip()).expanduser()
    if data_dir is not None and not path.is_absolute() and (Path(data_dir).expanduser() / path).exists():
        path = Path(data_dir).expanduser() / path
    if (is_table_file(name) and path.is_file()) or is_table_folder(str(path)):
        from .image_tables import read_image_table

        return read_image_table(path, label_column=label_column, image_size=size, cache_dir=cache_dir)
    if path.is_dir():
        from .folders import read_image_folder

        _check_dataset_dir(path)
        return read_image_folder(path, image_size=size)
    return None


def _check_dataset_dir(path: Path) -> None:
    """Refuse, in one sentence saying what a dataset directory must hold, a directory given
    as ``--dataset`` that is no image folder: a named dataset's files (:func:`.registry.recognised_in`;
    they go with --data-dir), or a directory without any class sub-folder."""
    spec = recognised_in(path)
    if spec is not None:
        raise InputError(_not_an_image_folder(path, spec))
    top = path / "train" if (path / "train").is_dir() else path
    if not any(p.is_dir() and not p.name.startswith(".") for p in top.iterdir()):
        raise InputError(
            f"{path} is not a dataset directory: one holds a sub-folder of images per class (at least "
            f"2 classes, optionally inside train/ and test/), or is Clothing1M's release (--dataset "
            f"clothing1m --data-dir DIR)"
        )


def _not_an_image_folder(path: Path, spec: DatasetSpec) -> str:
    """The sentence that names the dataset whose files ``path`` holds, and how to read them."""
    if spec.kind != BENCHMARK:
        return f"{path} is a {spec.name} release, not an image folder: use --dataset {spec.name} --data-dir {path}"
    first, *others = (s.name for s in sharing_markers(spec))
    names = first + "".join(f" (or {n})" for n in others)
    files = spec.file_format or f"the {spec.name} files"
    return f"{path} holds {files}, not an image folder: use --dataset {names} --data-dir {path}"


def pack_image_files(
    files: ImageFiles,
    *,
    cache_dir: str | None = None,
    store_format: str = "jpeg",
    workers: int | None = None,
    progress: bool = True,
) -> Dataset:
    """Pack ``files`` into the store (once; later calls reuse it) and describe them as a
    :class:`Dataset` whose images are read from that store.

    Image files are normalised with ImageNet's statistics and augmented as Clothing1M's
    reference does: zero padding of an eighth of the side (32 pixels at 256), random crop
    back to the side, horizontal flip.
    """
    from ..store.layout import default_cache_dir
    from ..store.packing import pack_images
    from ..store.reading import PackedImages

    where = Path(cache_dir).expanduser() if cache_dir else default_cache_dir(files.root)
    in_process = workers is not None and workers < 1  # --workers 0: everything in this process

    def pack(part: ImageList, what: str) -> PackedImages:
        return pack_images(
            part.paths,
            cache_dir=where,
            image_size=files.image_size,
            store_format=store_format,
            workers=1 if in_process else workers,
            progress=progress,
            what=what,
        )

    return Dataset(
        name=files.name,
        x_train=pack(files.train, f"{files.name} training images"),
        y_train=files.train.labels,
        x_test=pack(files.test, f"{files.name} test images") if files.test is not None else None,
        y_test=files.test.labels if files.test is not None else None,
        num_classes=len(files.class_names),
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        augment="crop_flip",
        default_model=_default_model(files),
        labels_are_clean=files.labels_are_clean,
        known_train_labels=files.known_train_labels,
        class_names=tuple(files.class_names),
        padding=max(1, files.image_size // 8),
        x_val=pack(files.val, f"{files.name} validation images") if files.val is not None else None,
        y_val=files.val.labels if files.val is not None else None,
        source=files.root,
        train_files=files.train.paths,
    )


def _default_model(files: ImageFiles) -> str:
    """A release's network (by the name its reader gives the files), else :data:`IMAGE_FILES_MODEL`."""
    spec = spec_named(files.name)
    return spec.default_model if spec is not None and spec.kind == REAL_NOISE else IMAGE_FILES_MODEL

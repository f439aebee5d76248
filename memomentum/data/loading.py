"""Loading a dataset by name: a table, image files (Clothing1M, ANIMAL-10N, Food-101N,
mini-WebVision, an image folder) packed into their store, or arrays (the benchmarks,
``.npz``); :mod:`.names` says which."""

from __future__ import annotations

from pathlib import Path

from ..base.errors import InputError
from .arrays import load_array_dataset
from .dataset import IMAGENET_MEAN, IMAGENET_STD, Dataset, ImageFiles, ImageList
from .names import is_clothing1m_name, is_table_file, is_table_folder, real_noise_name
from .tables import load_table

DEFAULT_IMAGE_SIZE = 256  # the Clothing1M protocol's resize
DEFAULT_CLOTHING1M_DIR = "./data/clothing1m"
# The real-noise releases (names.REAL_NOISE_DATASETS): where they are read from without
# --data-dir, the side their images are packed at without --image-size (ANIMAL-10N's are
# 64 x 64; the others as Clothing1M), and the network they train by default
# (docs/real-noise.md says why).
DEFAULT_DATA_DIRS = {"animal10n": "./data/animal10n", "food101n": "./data/food101n", "webvision": "./data/webvision"}
DEFAULT_IMAGE_SIZES = {"animal10n": 64}
DEFAULT_MODELS = {"clothing1m": "resnet50", "food101n": "resnet50", "webvision": "resnet50", "animal10n": "resnet18"}


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
        name: one of :data:`DATASETS`, ``clothing1m``, ``animal10n``, ``food101n``,
            ``webvision`` (mini-WebVision; :mod:`.names` lists the spellings accepted),
            the path of a folder of images with
            one sub-folder per class (:mod:`.folders`), a path ending in ``.npz``, or one
            ending in ``.csv`` or ``.parquet`` (:mod:`.tables`).
        data_dir: where the files are (see :func:`.arrays.load_array_dataset`); for
            Clothing1M and the other real-noise releases the release's root (default
            ``./data/<name>``, :data:`DEFAULT_DATA_DIRS`).
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
    if is_clothing1m_name(name):
        from .clothing1m import read_clothing1m

        return read_clothing1m(
            Path(data_dir or DEFAULT_CLOTHING1M_DIR).expanduser(), train_set=train_set, image_size=size
        )
    release = real_noise_name(name)
    if release is not None:
        return _read_release(
            release,
            Path(data_dir or DEFAULT_DATA_DIRS[release]).expanduser(),
            DEFAULT_IMAGE_SIZES.get(release, size) if image_size is None else image_size,
        )
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


def _read_release(release: str, root: Path, image_size: int) -> ImageFiles:
    """Read one of the real-noise releases (a canonical name of :mod:`.names`) from ``root``."""
    if release == "animal10n":
        from .animal10n import read_animal10n

        return read_animal10n(root, image_size=image_size)
    if release == "food101n":
        from .food101n import read_food101n

        return read_food101n(root, image_size=image_size)
    from .webvision import read_webvision

    return read_webvision(root, image_size=image_size)


def _release_in(path: Path) -> str | None:
    """The ``--dataset`` name of the real-noise release ``path`` holds, or None."""
    if (path / "meta" / "imagelist.tsv").is_file():
        return "food101n"
    if (path / "info" / "train_filelist_google.txt").is_file():
        return "webvision"
    if (path / "training").is_dir() and (path / "testing").is_dir():
        from .animal10n import label_of

        if any(label_of(p.name) is not None for p in (path / "training").glob("*_*")):
            return "animal10n"
    return None


def _check_dataset_dir(path: Path) -> None:
    """Refuse, in one sentence saying what a dataset directory must hold, a directory given
    as ``--dataset`` that is no image folder: a Clothing1M release or a benchmark's files
    (which go with --data-dir), or a directory without any class sub-folder."""

    def has(*names: str) -> bool:
        return any((path / n).exists() for n in names)

    if has("noisy_label_kv.txt", "annotations/noisy_label_kv.txt", "clean_label_kv.txt"):
        raise InputError(
            f"{path} is a Clothing1M release, not an image folder: use --dataset clothing1m --data-dir {path}"
        )
    release = _release_in(path)
    if release is not None:
        raise InputError(
            f"{path} is a {release} release, not an image folder: use --dataset {release} --data-dir {path}"
        )
    if any(p.name.startswith(("train-images-idx3-ubyte", "t10k-images-idx3-ubyte")) for p in path.iterdir()):
        raise InputError(
            f"{path} holds MNIST-format idx files, not an image folder: use --dataset mnist (or "
            f"fashion-mnist) --data-dir {path}"
        )
    for folder, name in (("cifar-10-batches-py", "cifar10"), ("cifar-100-python", "cifar100")):
        if path.name == folder or has(folder):
            parent = path.parent if path.name == folder else path
            raise InputError(
                f"{path} holds the {name} files, not an image folder: use --dataset {name} --data-dir {parent}"
            )
    top = path / "train" if (path / "train").is_dir() else path
    if not any(p.is_dir() and not p.name.startswith(".") for p in top.iterdir()):
        raise InputError(
            f"{path} is not a dataset directory: one holds a sub-folder of images per class (at least "
            f"2 classes, optionally inside train/ and test/), or is Clothing1M's release (--dataset "
            f"clothing1m --data-dir DIR)"
        )


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
        default_model=DEFAULT_MODELS.get(files.name, "resnet18"),
        labels_are_clean=files.labels_are_clean,
        known_train_labels=files.known_train_labels,
        class_names=tuple(files.class_names),
        padding=max(1, files.image_size // 8),
        x_val=pack(files.val, f"{files.name} validation images") if files.val is not None else None,
        y_val=files.val.labels if files.val is not None else None,
        source=files.root,
        train_files=files.train.paths,
    )

"""The dataset registry: every named dataset the package reads, one :class:`DatasetSpec` each
in :data:`SPECS`, and what any other ``--dataset`` value stands for.

A spec holds everything the rest of the package knows about its dataset: the names it
answers to, how to recognise its files in a folder, its reader, its default network and
schedule, its class names where the release fixes them, and its release's file names.
The loader, the configuration, the report, the command line's help and
:func:`list_datasets` all ask here, and the readers take their file names from here, so a
dataset is added with one entry in :data:`SPECS` and one reader.

Besides named datasets, a ``--dataset`` value may be a table (a path ending in one of
:data:`TABLE_SUFFIXES`), the user's ``.npz`` file, in-memory ``arrays`` or an existing
folder of images; the ``is_...`` functions below tell them apart, so the configuration,
the loaders and the naming of run directories never disagree about which source a name
means.

This module imports nothing from the package and nothing heavy (no numpy, no torch): the
configuration, and with it ``import memomentum``, imports it. Readers are named by a
``"module:function"`` reference and imported when a dataset is read.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "BENCHMARK",
    "DATASETS",
    "DEFAULT_IMAGE_SIZE",
    "REAL_NOISE",
    "SPECS",
    "TABLE_SUFFIXES",
    "DatasetSpec",
    "dataset_help",
    "dataset_key",
    "dataset_schedule",
    "find_spec",
    "is_clothing1m_name",
    "is_image_folder_name",
    "is_image_release_name",
    "is_table_file",
    "is_table_folder",
    "is_users_own_data",
    "known_class_names",
    "list_datasets",
    "real_noise_name",
    "recognised_in",
    "run_name",
    "sharing_markers",
    "spec_named",
    "unknown_dataset_message",
]

# A dataset's kind says how it is read and whether its labels are noisy already:
BENCHMARK = "benchmark"  # arrays in memory with clean labels: the run adds synthetic noise
REAL_NOISE = "real-noise"  # an image release read from its official layout: its labels are kept as given

# The side image files are packed at without --image-size: the Clothing1M protocol's resize.
DEFAULT_IMAGE_SIZE = 256
# The network trained by default on image files that are no named release (an image folder, a table of images).
IMAGE_FILES_MODEL = "resnet18"

# A table's file name endings: CSV, also compressed as pandas reads it, and parquet.
TABLE_SUFFIXES = (".csv", ".csv.gz", ".csv.bz2", ".csv.xz", ".csv.zip", ".csv.zst", ".parquet")


@dataclass(frozen=True)
class DatasetSpec:
    """One named dataset: what the package knows about it, in one place.

    Attributes
    ----------
    name : str
        The canonical ``--dataset`` name; also the name of the ``Dataset`` or ``ImageFiles``
        its reader returns.
    title : str
        How messages name it (``"Fashion-MNIST"``).
    kind : str
        ``"benchmark"`` or ``"real-noise"``: the reader's form (below), and whether a run adds
        noise to the labels (benchmarks) or keeps them as given.
    description : str
        One line for :func:`list_datasets`.
    reader : str or callable
        ``"module:function"`` (imported on first use) or the function itself. A benchmark's
        reader is called as ``reader(spec, data_dir)`` and returns a ``Dataset``; a real-noise
        release's as ``reader(root, image_size=..., **options)`` and returns the ``ImageFiles``
        that the loader packs into the store.
    default_model : str
        The network a run trains when ``--model`` is not given.
    aliases : tuple of str
        Further names it answers to. Every name is compared folded (lower case, without ``-``,
        ``_``, ``.`` and spaces), so ``Fashion-MNIST`` and ``fashion_mnist`` need no alias.
    schedule : mapping
        The run settings it overrides in the reference's schedule (benchmark mode).
    num_classes : int
        Its number of classes, where the release fixes it (0: the files say).
    class_names : tuple of str
        The classes' names in label order, where the release fixes them; the report names a
        run's classes with them when the run wrote no ``classes.json``.
    files : mapping
        Its release's file and folder names by role, relative to the release's root (a tuple
        where a role has several); its reader reads them from here (:meth:`file`).
    markers : tuple of str
        Glob patterns: a folder holding a match of any of them holds this dataset's files, so
        it is refused as an image folder, with the right ``--dataset`` named.
    file_format : str
        How messages name its files when a folder of them is given as an image folder.
    default_dir : str or None
        Where its files are read from without ``--data-dir`` (None: the current folder).
    image_size : int
        For a release: the side its images are packed at without ``--image-size``.
    stats : tuple or None
        The per-channel mean and std of its training images on the 0..1 scale that inputs are
        normalised with (None: computed from the images, or ImageNet's for image files).
    options : tuple of str
        The loader options its reader takes besides the root and the image size (Clothing1M's
        ``train_set``).
    human_labels : str or None
        The release of human labels for its training set (``"CIFAR-10N"``), if any.
    needs_pretrained : bool
        Its protocol fine-tunes ImageNet weights, so a run refuses to start without them
        (Clothing1M); otherwise a run without weights found trains from scratch.
    """

    name: str
    title: str
    kind: str
    description: str
    reader: str | Callable[..., Any]
    default_model: str
    aliases: tuple[str, ...] = ()
    schedule: Mapping[str, Any] = field(default_factory=dict)
    num_classes: int = 0
    class_names: tuple[str, ...] = ()
    files: Mapping[str, str | tuple[str, ...]] = field(default_factory=dict)
    markers: tuple[str, ...] = ()
    file_format: str = ""
    default_dir: str | None = None
    image_size: int = DEFAULT_IMAGE_SIZE
    stats: tuple[tuple[float, ...], tuple[float, ...]] | None = None
    options: tuple[str, ...] = ()
    human_labels: str | None = None
    needs_pretrained: bool = False

    def read_function(self) -> Callable[..., Any]:
        """The reader itself (its module imported now)."""
        if callable(self.reader):
            return self.reader
        module, _, function = self.reader.partition(":")
        return getattr(importlib.import_module(module), function)

    def file(self, role: str) -> str:
        """The release's file or folder name for ``role`` (one name)."""
        name = self.files[role]
        if not isinstance(name, str):
            raise TypeError(f"{self.name}'s {role!r} names {len(name)} files; use file_group")
        return name

    def file_group(self, role: str) -> tuple[str, ...]:
        """The release's file names for ``role`` (a tuple, also of one)."""
        names = self.files[role]
        return (names,) if isinstance(names, str) else names

    def spellings(self) -> tuple[str, ...]:
        """Every name it answers to, folded (see :func:`_folded`)."""
        return tuple(dict.fromkeys(_folded(n) for n in (self.name, *self.aliases)))


# --------------------------------------------------------------------------- the table

# Fine-tuning an ImageNet ResNet-50 on a million (Clothing1M) or a few hundred thousand
# (Food-101N, mini-WebVision) noisy web images: the Clothing1M reference's batch and
# learning rate, and its 5-epoch rounds doubled for the early-stopped first phase of the
# benchmark program (docs/real-noise.md).
_FINE_TUNING = {"epochs": 10, "batch_size": 32, "lr": 0.005, "max_outer_loop": 3, "max_inner_loop": 6}

# MNIST's four idx files (each also read gzipped, with ".gz"), shared by Fashion-MNIST.
_IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
_IDX_MARKERS = ("train-images-idx3-ubyte*", "t10k-images-idx3-ubyte*")

DIGITS = DatasetSpec(
    name="digits",
    title="digits",
    kind=BENCHMARK,
    description="scikit-learn's 1,797 handwritten digits, 8 x 8, embedded in the package (1,437 train, 360 test)",
    reader="memomentum.data.benchmarks:read_digits",
    default_model="mlp",
    # The set is tiny, so batches of 32, a 60-epoch cap per phase and at most two outer loops:
    # a run finishes in seconds, and Me-Momentum's test accuracy still beats cross-entropy's on
    # it with these values (seeds 1-4).
    schedule={"epochs": 60, "batch_size": 32, "lr": 0.01, "max_outer_loop": 2, "max_inner_loop": 6},
    num_classes=10,
)
MNIST = DatasetSpec(
    name="mnist",
    title="MNIST",
    kind=BENCHMARK,
    description="MNIST's 70,000 handwritten digits, 28 x 28, from its idx files (plain or gzipped)",
    reader="memomentum.data.benchmarks:read_idx_dataset",
    default_model="lenet",
    num_classes=10,
    files={**_IDX_FILES, "folders": ("MNIST/raw", "raw")},
    markers=_IDX_MARKERS,
    file_format="MNIST-format idx files",
    default_dir="./data/mnist",
    stats=((0.1307,), (0.3081,)),  # the reference's constants
)
FASHION_MNIST = DatasetSpec(
    name="fashion-mnist",
    title="Fashion-MNIST",
    kind=BENCHMARK,
    description="Zalando's 70,000 images of clothing in 10 classes, 28 x 28, from their idx files (as MNIST's)",
    reader="memomentum.data.benchmarks:read_idx_dataset",
    default_model="lenet",
    aliases=("fmnist",),
    num_classes=10,
    class_names=(
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ),
    files={**_IDX_FILES, "folders": ("FashionMNIST/raw", "raw")},
    markers=_IDX_MARKERS,
    file_format="MNIST-format idx files",
    default_dir="/usr/share/datasets/fashion-mnist",  # Debian's package dataset-fashion-mnist
    # Computed once from Debian's train-images-idx3-ubyte.gz (60,000 images) as
    # x = pixels / 255; (x.mean(), x.std()) = (0.28604, 0.35302).
    stats=((0.2860,), (0.3530,)),
)
CIFAR10 = DatasetSpec(
    name="cifar10",
    title="CIFAR-10",
    kind=BENCHMARK,
    description="CIFAR-10's 60,000 colour images in 10 classes, 32 x 32, from the python version's pickles",
    reader="memomentum.data.benchmarks:read_cifar",
    default_model="resnet18",
    num_classes=10,
    class_names=("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
    files={
        "folder": "cifar-10-batches-py",
        "train": ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5"),
        "test": "test_batch",
        "labels": "labels",  # the batches' entry holding the labels
    },
    markers=("cifar-10-batches-py", "data_batch_1"),
    default_dir="./data/cifar-10-batches-py",
    stats=((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)),
    human_labels="CIFAR-10N",
)
CIFAR100 = DatasetSpec(
    name="cifar100",
    title="CIFAR-100",
    kind=BENCHMARK,
    description="CIFAR-100's 60,000 colour images in 100 classes, 32 x 32, from the python version's pickles",
    reader="memomentum.data.benchmarks:read_cifar",
    default_model="resnet34",
    num_classes=100,
    files={"folder": "cifar-100-python", "train": "train", "test": "test", "labels": "fine_labels"},
    markers=("cifar-100-python",),
    default_dir="./data/cifar-100-python",
    stats=((0.507, 0.487, 0.441), (0.267, 0.256, 0.276)),
    human_labels="CIFAR-100N",
)
CLOTHING1M = DatasetSpec(
    name="clothing1m",
    title="Clothing1M",
    kind=REAL_NOISE,
    description="Clothing1M's million web images of 14 clothing classes, with clean validation and test sets",
    reader="memomentum.data.clothing1m:read_clothing1m",
    default_model="resnet50",
    schedule=_FINE_TUNING,
    num_classes=14,
    class_names=(  # the English names of category_names_eng.txt, in label order
        *("T-Shirt", "Shirt", "Knitwear", "Chiffon", "Sweater", "Hoodie", "Windbreaker", "Jacket", "Downcoat"),
        *("Suit", "Shawl", "Dress", "Vest", "Underwear"),
    ),
    files={  # the annotation files, in the root or in its annotations/ folder
        "noisy_kv": "noisy_label_kv.txt",
        "clean_kv": "clean_label_kv.txt",
        "noisy_train": "noisy_train_key_list.txt",
        "clean_train": "clean_train_key_list.txt",
        "clean_val": "clean_val_key_list.txt",
        "clean_test": "clean_test_key_list.txt",
        "category_names": "category_names_eng.txt",
        "annotations": "annotations",
    },
    markers=("noisy_label_kv.txt", "annotations/noisy_label_kv.txt", "clean_label_kv.txt"),
    needs_pretrained=True,
    default_dir="./data/clothing1m",
    options=("train_set",),
)
ANIMAL10N = DatasetSpec(
    name="animal10n",
    title="ANIMAL-10N",
    kind=REAL_NOISE,
    description="ANIMAL-10N's 55,000 images of five pairs of look-alike animals, 64 x 64, labelled by people",
    reader="memomentum.data.animal10n:read_animal10n",
    default_model="resnet18",  # the CIFAR ResNet-18 for its 64 pixels, trained from scratch
    # no schedule of its own: the reference's, close to its papers' (batches of 128, up to 100 epochs)
    num_classes=10,
    class_names=(  # the release's readme
        *("cat", "lynx", "wolf", "coyote", "cheetah", "jaguar", "chimpanzee", "orangutan", "hamster", "guinea pig"),
    ),
    files={"train": "training", "test": "testing"},  # folders of <label>_<index>.jpg
    markers=("training/[0-9]_*",),
    default_dir="./data/animal10n",
    image_size=64,  # the release's images are 64 x 64: packed as they are
)
FOOD101N = DatasetSpec(
    name="food101n",
    title="Food-101N",
    kind=REAL_NOISE,
    description="Food-101N's 310,009 web images of Food-101's 101 classes, tested on Food-101's test split",
    reader="memomentum.data.food101n:read_food101n",
    default_model="resnet50",
    schedule=_FINE_TUNING,
    num_classes=101,
    files={
        "meta": "meta",  # the lists below are in it
        "classes": "classes.txt",
        "imagelist": "imagelist.tsv",
        "verified_train": "verified_train.tsv",
        "verified_val": "verified_val.tsv",
        "images": "images",
        "food101": "food-101",  # Food-101's release, in the root or beside it
        "food101_test": "meta/test.txt",
    },
    markers=("meta/imagelist.tsv",),
    default_dir="./data/food101n",
)
WEBVISION = DatasetSpec(
    name="webvision",
    title="mini-WebVision",
    kind=REAL_NOISE,
    description="mini-WebVision: WebVision 1.0's Google images of its first 50 classes, tested on its validation set",
    reader="memomentum.data.webvision:read_webvision",
    default_model="resnet50",
    aliases=("mini-webvision", "webvision-mini", "webvision50"),
    schedule=_FINE_TUNING,
    num_classes=50,  # the first 50 of WebVision's 1,000
    files={
        "train_list": "info/train_filelist_google.txt",
        "val_list": "info/val_filelist.txt",
        "synsets": "info/synsets.txt",
        "val_images": "val_images_256",
    },
    markers=("info/train_filelist_google.txt",),
    default_dir="./data/webvision",
)

# Every named dataset, in the order they are listed.
SPECS: tuple[DatasetSpec, ...] = (
    DIGITS,
    MNIST,
    FASHION_MNIST,
    CIFAR10,
    CIFAR100,
    CLOTHING1M,
    ANIMAL10N,
    FOOD101N,
    WEBVISION,
)
# The benchmarks' names.
DATASETS = tuple(s.name for s in SPECS if s.kind == BENCHMARK)


# --------------------------------------------------------------------------- looking names up


def _folded(name: str) -> str:
    return name.strip().lower().replace("-", "").replace("_", "").replace(".", "").replace(" ", "")


def find_spec(name) -> DatasetSpec | None:
    """The spec of the dataset ``name`` spells (any spelling of its name or aliases), or None."""
    if not isinstance(name, str):
        return None
    folded = _folded(name)
    return next((s for s in SPECS if folded in s.spellings()), None)


def spec_named(name) -> DatasetSpec | None:
    """The spec whose canonical name is exactly ``name`` (the name a reader gives its
    ``Dataset`` or ``ImageFiles``), or None: an image folder named ``Food-101N`` is no release."""
    return next((s for s in SPECS if s.name == name), None)


def dataset_key(name) -> str:
    """The canonical name of the dataset ``name`` spells, else the name itself."""
    spec = find_spec(name)
    return spec.name if spec is not None else name


def dataset_schedule(name) -> dict[str, Any]:
    """The run settings that the dataset ``name`` sets in the reference's schedule (none for
    a source that is not a named dataset)."""
    spec = find_spec(name)
    return dict(spec.schedule) if spec is not None else {}


def known_class_names(name) -> list[str] | None:
    """The class names of the dataset ``name`` spells where its release fixes them (so that a
    report says "Sneaker" rather than 7 for a reader that returns numbered classes), or None."""
    spec = find_spec(name)
    return list(spec.class_names) if spec is not None and spec.class_names else None


def is_clothing1m_name(name) -> bool:
    """Whether ``dataset`` names Clothing1M (any spelling)."""
    return find_spec(name) is CLOTHING1M


def real_noise_name(name) -> str | None:
    """The canonical name of a real-noise release other than Clothing1M that ``dataset``
    spells (``animal-10n``, ``Food-101N``, ``mini-webvision``, ...), or None. Clothing1M is
    :func:`is_clothing1m_name`'s."""
    spec = find_spec(name)
    return spec.name if spec is not None and spec.kind == REAL_NOISE and spec is not CLOTHING1M else None


def is_image_release_name(name) -> bool:
    """Whether ``dataset`` names an image release read from its official layout under
    ``--data-dir`` (a :data:`REAL_NOISE` dataset: Clothing1M, ANIMAL-10N, ...)."""
    spec = find_spec(name)
    return spec is not None and spec.kind == REAL_NOISE


def recognised_in(folder: Path) -> DatasetSpec | None:
    """The dataset whose files ``folder`` holds (by its :attr:`~DatasetSpec.markers`), or None."""
    return next((s for s in SPECS if any(any(folder.glob(m)) for m in s.markers)), None)


def sharing_markers(spec: DatasetSpec) -> tuple[DatasetSpec, ...]:
    """The datasets whose files look like ``spec``'s (the same markers: MNIST's and
    Fashion-MNIST's idx files), in table order."""
    return tuple(s for s in SPECS if s.markers == spec.markers)


def unknown_dataset_message(name: str) -> str:
    """The sentence that refuses a name no source answers to."""
    named = [s.name for s in SPECS if s.kind == BENCHMARK] + [CLOTHING1M.name]
    return (
        f"unknown dataset {name!r}: choose one of {', '.join(named)}, the path of a .npz file, "
        f"a table ({', '.join(TABLE_SUFFIXES)}), or a folder of images with one sub-folder per class"
    )


# --------------------------------------------------------------------------- the other sources


def is_table_file(name) -> bool:
    """Whether ``dataset`` names a table (a path ending in one of :data:`TABLE_SUFFIXES`,
    see :mod:`memomentum.data.tables`)."""
    return isinstance(name, str) and name.strip().lower().endswith(TABLE_SUFFIXES)


def is_table_folder(name) -> bool:
    """Whether ``dataset`` names a folder holding a table in parts: what Hugging Face's
    ``save_to_disk`` writes (``state.json`` or ``dataset_dict.json``) or parquet shards
    (``*.parquet``, directly or in ``data/``); :mod:`memomentum.data.image_tables` reads the
    ones with an image column. Only looks at file names."""
    if not is_image_folder_name(name):
        return False
    path = Path(name.strip()).expanduser()
    return (
        (path / "state.json").is_file()
        or (path / "dataset_dict.json").is_file()
        or any(path.glob("*.parquet"))
        or any(path.glob("data/*.parquet"))
    )


def is_image_folder_name(name) -> bool:
    """Whether ``dataset`` names an existing directory (an image folder, see
    :mod:`memomentum.data.folders`)."""
    return isinstance(name, str) and bool(name.strip()) and Path(name).expanduser().is_dir()


def is_users_own_data(name) -> bool:
    """Whether ``dataset`` is the user's own data (a ``.npz`` file, in-memory ``arrays``, a
    table, an image folder, or a :data:`REAL_NOISE` release) rather than a benchmark set.
    Own data keeps its labels as given by default: its labels are already noisy, so no
    noise is added."""
    return (
        str(name).endswith(".npz")
        or name == "arrays"
        or is_table_file(name)
        or is_image_folder_name(name)
        or is_image_release_name(name)
    )


def run_name(dataset: str) -> str:
    """The short name of ``dataset`` that names a run directory: a ``.npz`` file's or a
    table's file stem, an existing image folder's resolved folder name (resolved, so that
    ``.`` or ``pets/..`` name the folder itself), else the name itself (a dataset's name)."""
    if dataset.endswith(".npz") or is_table_file(dataset):
        return Path(dataset).stem
    if is_image_folder_name(dataset):
        return Path(dataset).expanduser().resolve().name
    return dataset


# --------------------------------------------------------------------------- what users see


def list_datasets() -> list[dict[str, Any]]:
    """Every named dataset that ``--dataset`` (``RunConfig.dataset``) takes, with the network
    a run trains on it by default. Besides these, ``--dataset`` takes the path of an ``.npz``
    file, a table, or a folder of images (``memomentum run --help``).

    Returns
    -------
    list of dict
        One per dataset, in the registry's order: ``name`` (canonical), ``title``,
        ``aliases`` (further names it answers to; any case, with or without ``-`` and ``_``),
        ``kind`` (``"benchmark"``: a run adds noise to its clean labels; ``"real-noise"``:
        its labels are kept as given), ``default_model`` and ``description``.
    """
    return [
        {
            "name": s.name,
            "title": s.title,
            "aliases": list(s.aliases),
            "kind": s.kind,
            "default_model": s.default_model,
            "description": s.description,
        }
        for s in SPECS
    ]


def _shown(spec: DatasetSpec, default: str | None) -> str:
    """A dataset as the help names it: its name, with its title where that is another name
    (``webvision (mini-WebVision)``), and ``(default)`` for the default."""
    notes = [spec.title] if _folded(spec.title) != _folded(spec.name) else []
    notes += ["default"] if spec.name == default else []
    return spec.name + (f" ({', '.join(notes)})" if notes else "")


def dataset_help(*, default: str | None = None, images_only: bool = False) -> str:
    """The help text of a ``--dataset`` option: every dataset's name (``default`` marked), then
    the other sources; ``images_only`` for a command that takes image files only (the
    real-noise releases, image folders and tables of images)."""
    specs = [s for s in SPECS if s.kind == REAL_NOISE or not images_only]
    names = ", ".join(_shown(s, default) for s in specs)
    spelt = "in any case, with or without - and _ (memomentum.list_datasets() describes each)"
    if images_only:
        return (
            f"an image release: {names}, {spelt}; DIR of images with one sub-folder per class; or a table "
            f"of images (.parquet, parquet shards, a save_to_disk folder)"
        )
    return (
        f"a named dataset: {names}, {spelt}; PATH.npz with arrays x, y[, x_test, y_test]; PATH.csv or "
        f"PATH.parquet (a table of features, or naming or holding images: see --label-column); DIR of "
        f"parquet shards or a Hugging Face save_to_disk folder; or DIR of images with one sub-folder per "
        f"class (train/ and test/ optional)"
    )


def data_dir_help(*, images_only: bool = False) -> str:
    """The help text of ``--data-dir``: where each named dataset's files are read from without it
    (``images_only``: the image releases only)."""
    specs = [s for s in SPECS if s.default_dir and (s.kind == REAL_NOISE or not images_only)]
    defaults = ", ".join(f"{s.name} {s.default_dir}" for s in specs)
    return f"directory with the named dataset's files (a release: its root); default {defaults}"


def model_help() -> str:
    """What ``--model``'s help says of the default: each named dataset's network, then the one for
    image files."""
    by_model: dict[str, list[str]] = {}
    for spec in SPECS:
        by_model.setdefault(spec.default_model, []).append(spec.name)
    listed = "; ".join(f"{model} for {', '.join(names)}" for model, names in by_model.items())
    return f"default per dataset: {listed}; {IMAGE_FILES_MODEL} for image folders and tables of images"

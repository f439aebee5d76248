"""RunConfig: the run's settings as one typed, frozen object, checked when it is made and passed
down everywhere."""

from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from ..base.checks import check_seed
from ..base.errors import InputError
from ..data.registry import (
    dataset_schedule,
    is_clothing1m_name,
    is_image_folder_name,
    is_image_release_name,
    is_table_file,
    is_table_folder,
    is_users_own_data,
)
from .choices import (
    CLOTHING1M_SCHEDULE,
    DEFAULT_NOISE_RATE,
    DEFAULT_NOISE_TYPE,
    DEVICES,
    METHODS,
    MODEL_NAMES,
    MODES,
    PATH_KEYS,
    RATED_NOISE_TYPES,
    REFERENCE_SCHEDULE,
    STORE_FORMATS,
    TRAIN_SETS,
    names_a_path,
)

T = TypeVar("T")


def resolved(value: T | None) -> T:
    """A field that a validated, resolved configuration has set: ``noise_type`` (filled in when
    the configuration is made), ``transition_path`` (required by ``noise_type="transition"``)
    and the schedule (``model``, ``epochs``, ``lr``, ...: :meth:`RunConfig.resolved`)."""
    assert value is not None, "the configuration is not resolved"
    return value


@dataclass(frozen=True)
class RunConfig:
    """Everything one run needs. ``None`` means "the default for this dataset".

    The fields follow the reference's command line (``main.py``) where one exists; each has
    the ``memomentum run`` option of the same name (``max_outer_loop``: ``--max-outer-loop``).
    A configuration is checked when it is made: the first bad value raises
    :class:`~memomentum.base.errors.InputError` with one sentence. It is frozen:
    ``dataclasses.replace(cfg, epochs=20)`` makes a changed copy, checked in its turn.

    Parameters
    ----------
    dataset : str, default "digits"
        A named data set (``memomentum.list_datasets()`` lists them), the path of
        an ``.npz`` file, a table (``.csv``, ``.parquet``), a folder of images with one
        sub-folder per class, or a table of images.
    data_dir : str or None, default None
        Where the built-in data set's files are.
    noise_type : str or None, default None
        Synthetic label noise: ``"none"``, ``"symmetric"``, ``"pairflip"``, ``"instance"``,
        ``"asymmetric"`` or ``"transition"``; None: ``"instance"`` for benchmark sets,
        ``"none"`` for the user's own data.
    noise_rate : float or None, default None
        In [0, 1); None: 0.4 for the noise types that take a rate. ``none``, ``transition``
        (the matrix sets the rates) and human labels take no rate and refuse one.
    transition_path : str or None, default None
        For ``noise_type="transition"``: a K x K ``.npy`` or ``.csv`` matrix,
        ``T[i, j] = P(noisy = j | clean = i)``.
    human_labels_path, human_labels_key : str or None, default None
        A CIFAR-10N / CIFAR-100N label file and the key of the labels in it; they replace
        generated noise.
    seed : int, default 1
        Every random choice of the run (noise, split, initialisation, order) comes from it.
    method : {"memomentum", "ce"}, default "memomentum"
        Me-Momentum, or the cross-entropy baseline (the first phase only).
    mode : {"benchmark", "clothing1m"}, default "benchmark"
        The reference's ``main.py`` (noisy validation split, early stopping) or its
        ``Clothing.py`` (clean validation, per-class checkpoints and extraction).
    model : str or None, default None
        ``"lenet"``, ``"resnet18"``, ``"resnet34"``, ``"resnet50"`` or ``"mlp"``; None: the
        data set's default network.
    epochs : int or None, default None
        Epochs per phase (reference: 100).
    max_outer_loop : int or None, default None
        Outer loops (reference: 3).
    max_inner_loop : int or None, default None
        Inner-loop bound (reference: 20, so at most 19 inner rounds).
    lr : float or None, default None
        SGD learning rate (reference: 0.01).
    momentum : float, default 0.9
        SGD momentum.
    weight_decay : float or None, default None
        Reference: 1e-4 (benchmark mode), 1e-3 (Clothing1M mode).
    batch_size : int or None, default None
        Reference: 128.
    val_fraction : float, default 0.1
        The share of the training set held out, with its noisy labels, for early stopping
        and model selection.
    milestones : tuple of int or None, default None
        Epochs at which the learning rate is multiplied by ``gamma``; reference: (40, 80) per
        inner round; Clothing1M mode (10, 20) per outer loop.
    gamma : float, default 0.1
        The learning-rate factor at each milestone.
    margin_step : float, default 0.1
        Early stopping: the margin grows by this per epoch without gain ...
    margin_limit : float, default 2.0
        ... and the phase stops once the margin exceeds this.
    reference_quirks : bool, default False
        Reproduce the reference implementation's quirks (docs/method.md).
    device : {"auto", "cpu", "cuda"}, default "auto"
        Where to train.
    threads : int or None, default None
        CPU threads; None: every available core, one for the MLP. The thread count sets the
        order of float sums, so results follow it.
    compile : bool, default False
        ``torch.compile`` (GPU only; measured slower on the CPU).
    cuda_graph : bool, default False
        Record the training step once as a CUDA graph and replay it (GPU only).
    predict_chunk : int or None, default None
        Examples per forward pass when predicting; None: per device.
    out : str or None, default None
        The run directory; None: ``runs/<dataset>-<noise>-<rate>-seed<seed>-<method>``.
    progress : bool, default True
        Show progress on standard error: a live bar on a terminal, plain lines in a log.
    image_size : int or None, default None
        Image files: the side images are resized to when packed; None: 256.
    cache_dir : str or None, default None
        Image files: where packed stores go; None: beside the data, else
        ``~/.cache/memomentum``.
    store_format : {"jpeg", "raw"}, default "jpeg"
        Image files: re-encoded JPEG (small) or uint8 arrays (no decoding).
    stream : bool or None, default None
        Image files: True streams from disk, False holds the data in memory, None decides by
        size.
    workers : int or None, default None
        Reader processes for streamed data; None: one per core, at most 16.
    pretrained : str or None, default None
        An ImageNet weights file, ``"none"``, or None: look in torch's hub cache.
    train_set : {"noisy", "clean"}, default "noisy"
        Clothing1M: the 1M noisy-label images or the 47,570 clean-label ones.
    label_column : str, default "label"
        Tables: the column holding each row's label.
    track_difficulty : bool, default False
        With known true labels: when the first-phase network settles on each example's true
        label (one prediction pass per first-phase epoch), reported per difficulty quintile.

    Examples
    --------
    >>> from memomentum import RunConfig, run
    >>> cfg = RunConfig(dataset="fashion-mnist", noise_type="instance", noise_rate=0.4, seed=1,
    ...                 epochs=20, max_outer_loop=1, max_inner_loop=4, out="runs/fmnist")
    >>> result = run(cfg)
    """

    dataset: str = "digits"
    data_dir: str | None = None
    noise_type: str | None = None  # None: "instance" for benchmark sets, "none" for the user's own data
    # None: 0.4 for the noise types that take a rate; none, transition (the matrix sets the
    # rates) and human labels take no rate, and refuse one given explicitly (_check_rate_applies)
    noise_rate: float | None = None
    transition_path: str | None = None  # for noise_type="transition": a K x K .npy/.csv, rows = clean class
    human_labels_path: str | None = None  # CIFAR-10N/100N label file; replaces generated noise
    human_labels_key: str | None = None
    seed: int = 1
    # the seed of synthetic noise; None: the run's seed. Fixed while --seed changes, it keeps the
    # noisy labels of several training seeds the same (what a consensus of runs needs,
    # memomentum.entrypoints.consensus); the split and the training always follow ``seed``
    noise_seed: int | None = None
    method: str = "memomentum"
    # "benchmark": the reference main.py (noisy validation split, early stopping); "clothing1m":
    # the reference Clothing.py (clean validation, per-class checkpoints and extraction)
    mode: str = "benchmark"
    model: str | None = None
    epochs: int | None = None  # per phase (reference: 100)
    max_outer_loop: int | None = None  # reference: 3
    max_inner_loop: int | None = None  # reference: 20 (so at most 19 inner rounds)
    lr: float | None = None  # reference: 0.01
    momentum: float = 0.9
    weight_decay: float | None = None  # reference: 1e-4 (benchmark mode), 1e-3 (Clothing1M mode)
    batch_size: int | None = None  # reference: 128
    val_fraction: float = 0.1
    milestones: tuple[int, ...] | None = (
        None  # reference: (40, 80) per inner round; Clothing1M mode (10, 20) per outer loop
    )
    gamma: float = 0.1
    margin_step: float = 0.1  # early stopping: margin grows by this per epoch without gain
    margin_limit: float = 2.0  # ... and the phase stops once the margin exceeds this
    reference_quirks: bool = False
    device: str = "auto"
    threads: int | None = (
        None  # CPU threads; None = every available core, one for the MLP (memomentum.training.threads)
    )
    compile: bool = False  # torch.compile (GPU only; measured slower on CPU)
    cuda_graph: bool = False  # the training step recorded once as a CUDA graph (GPU only; memomentum.training.graphs)
    predict_chunk: int | None = None  # examples per forward pass when predicting; None: per device
    out: str | None = None
    progress: bool = True
    # image files (Clothing1M, image folders): packed once into a store, then read from it
    image_size: int | None = None  # side images are resized to when packed; None: 256
    cache_dir: str | None = None  # where packed stores go; None: beside the data, else ~/.cache/memomentum
    store_format: str = "jpeg"  # "jpeg" (re-encoded, small) or "raw" (uint8 arrays, no decoding)
    stream: bool | None = None  # True: stream from disk; False: hold in memory; None: by size
    workers: int | None = None  # reader processes for streamed data; None: one per core, at most 16
    pretrained: str | None = None  # ImageNet weights file, "none", or None: look in torch's hub cache
    train_set: str = "noisy"  # Clothing1M: "noisy" (1M, noisy labels) or "clean" (47,570, clean labels)
    label_column: str = "label"  # tables (.csv, .parquet): the column holding each row's label
    # with known true labels: when the first-phase network settles on each example's true label
    # (one prediction pass per first-phase epoch), reported per difficulty quintile (memomentum.method.difficulty)
    track_difficulty: bool = False

    def __post_init__(self) -> None:
        # Made means checked. The only writes to a frozen RunConfig: numbers made plain, the
        # noise defaults filled in, then every check (the seeds come back as Python ints).
        for step in (self._plain_numbers, self._noise_defaults, self._check):
            for name, value in step().items():
                object.__setattr__(self, name, value)

    def _plain_numbers(self) -> dict[str, Any]:
        """numpy scalars (np.int64(3), np.float32(0.2)) as plain Python numbers."""
        plain: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, (bool, int, float)):
                continue
            if isinstance(value, numbers.Integral):
                plain[f.name] = int(value)
            elif isinstance(value, numbers.Real):
                plain[f.name] = float(value)
        return plain

    def _noise_defaults(self) -> dict[str, Any]:
        """What ``None`` means for the noise: ``"none"`` for the user's own data, ``"instance"``
        for a benchmark set; a rate of 0.4 for the types that take one (not with human labels)."""
        filled: dict[str, Any] = {}
        noise_type = self.noise_type
        if noise_type is None:
            noise_type = filled["noise_type"] = "none" if is_users_own_data(self.dataset) else DEFAULT_NOISE_TYPE
        if self.noise_rate is None and noise_type in RATED_NOISE_TYPES and not self.human_labels_path:
            filled["noise_rate"] = DEFAULT_NOISE_RATE
        return filled

    def resolved(self, dataset_default_model: str) -> RunConfig:
        """Return a copy with every ``None`` schedule field filled in for this dataset."""
        if self.mode == "clothing1m":  # Clothing.py's schedule, whatever the data
            reference = dict(CLOTHING1M_SCHEDULE)
        else:
            reference = dict(REFERENCE_SCHEDULE)
            reference.update(dataset_schedule(self.dataset))  # the dataset's own (data/registry.py)
        filled = {k: v for k, v in reference.items() if getattr(self, k) is None}
        if self.model is None:
            filled["model"] = dataset_default_model
        return dataclasses.replace(self, **filled)

    def _check(self) -> dict[str, int]:
        """Raise :class:`InputError` with one sentence for the first bad value found; return
        the seeds as Python ints."""
        # Imported here, not at the top: importing memomentum.config stays light.
        from ..noise.labels import NOISE_TYPES

        # The checks run in this order so that the first bad value gives the message.
        self._check_choices(NOISE_TYPES)
        self._check_noise_options()
        seeds = self._check_model_and_seed()
        self._check_schedule_numbers()
        self._check_image_and_table_options()
        self._check_switches()
        self._check_data_options_apply()
        self._check_milestones()
        return seeds

    def _check_choices(self, noise_types) -> None:
        """The dataset, and the options chosen from a fixed list."""
        if not isinstance(self.dataset, str) or not self.dataset.strip():
            raise InputError(f"dataset must be a name or the path of a .npz file, got {self.dataset!r}")
        if self.mode not in MODES:
            raise InputError(f"unknown mode {self.mode!r}; choose one of {', '.join(MODES)}")
        if self.mode == "clothing1m" and self.method != "memomentum":
            raise InputError(
                f"the clothing1m mode is Me-Momentum's Clothing1M program; --method {self.method} "
                f"runs in the benchmark mode only (leave --mode out)"
            )
        if self.method not in METHODS:
            raise InputError(f"unknown method {self.method!r}; choose one of {', '.join(METHODS)}")
        if self.device not in DEVICES:
            raise InputError(f"unknown device {self.device!r}; choose one of {', '.join(DEVICES)}")
        if self.noise_type not in noise_types:
            raise InputError(f"unknown noise type {self.noise_type!r}; choose one of {', '.join(noise_types)}")

    def _check_noise_options(self) -> None:
        """The noise rate, whether the noise type takes one, and the transition matrix file."""
        if self.noise_rate is not None and not (
            _is_number(self.noise_rate) and math.isfinite(self.noise_rate) and 0 <= self.noise_rate < 1
        ):
            raise InputError(f"noise rate {self.noise_rate!r} is outside [0, 1)")
        self._check_rate_applies()
        if self.noise_type == "transition" and not self.transition_path:
            raise InputError("noise type 'transition' needs a transition matrix file (--transition PATH)")

    def _check_model_and_seed(self) -> dict[str, int]:
        """The model's name and the seeds, returned as Python ints (what config.json's writer takes)."""
        if self.model is not None and self.model not in MODEL_NAMES:
            raise InputError(f"unknown model {self.model!r}; choose one of {', '.join(MODEL_NAMES)}")
        seeds = {"seed": check_seed(self.seed, "seed", allowed="a whole number")}
        if self.noise_seed is not None:
            seeds["noise_seed"] = self._checked_noise_seed(self.noise_seed)
        return seeds

    def _checked_noise_seed(self, noise_seed) -> int:
        """A noise seed is a whole number, and given only where synthetic noise uses it."""
        noise_seed = check_seed(noise_seed, "noise-seed", allowed="a whole number")
        if self.human_labels_path or self.noise_type == "none":
            given = (
                "--human-labels takes the file's labels"
                if self.human_labels_path
                else "--noise-type none keeps the labels as given"
            )
            raise InputError(
                f"{given}, so --noise-seed {noise_seed} would be ignored; leave --noise-seed out "
                f"or choose a noise type ({', '.join(RATED_NOISE_TYPES)}, transition)"
            )
        return noise_seed

    def effective_noise_seed(self) -> int:
        """The seed synthetic noise is drawn with: ``noise_seed``, or the run's seed."""
        return self.seed if self.noise_seed is None else self.noise_seed

    def _check_schedule_numbers(self) -> None:
        """Counts, rates and the validation fraction of the training schedule."""
        for name in ("epochs", "max_outer_loop", "max_inner_loop", "batch_size", "predict_chunk", "threads"):
            value = getattr(self, name)
            if value is not None and (not _is_int(value) or value < 1):
                raise InputError(f"{name.replace('_', '-')} must be a whole number of at least 1, got {value!r}")
        for name in ("lr", "weight_decay", "momentum", "gamma", "margin_step", "margin_limit"):
            value = getattr(self, name)
            if value is not None and not (_is_number(value) and math.isfinite(value) and value >= 0):
                raise InputError(f"{name.replace('_', '-')} must be a finite number >= 0, got {value!r}")
        if self.lr is not None and self.lr <= 0:
            raise InputError(f"lr must be greater than 0, got {self.lr!r}")
        if not (_is_number(self.val_fraction) and 0 < self.val_fraction < 1):
            raise InputError(f"val-fraction must be between 0 and 1 (exclusive), got {self.val_fraction!r}")

    def _check_image_and_table_options(self) -> None:
        """The values of the options that only image files or tables use (whether they
        apply to this dataset is :meth:`_check_data_options_apply`'s question)."""
        if self.store_format not in STORE_FORMATS:
            raise InputError(f"unknown store format {self.store_format!r}; choose one of {', '.join(STORE_FORMATS)}")
        if not isinstance(self.label_column, str) or not self.label_column.strip():
            raise InputError(f"label-column must be the name of a column of the table, got {self.label_column!r}")
        if self.train_set not in TRAIN_SETS:
            raise InputError(f"unknown training set {self.train_set!r}; choose one of {', '.join(TRAIN_SETS)}")
        if self.image_size is not None and (not _is_int(self.image_size) or not 8 <= self.image_size <= 4096):
            raise InputError(f"image-size must be a whole number of pixels in 8..4096, got {self.image_size!r}")
        if self.workers is not None and (not _is_int(self.workers) or self.workers < 0):
            raise InputError(f"workers must be a whole number of at least 0, got {self.workers!r}")

    def _check_switches(self) -> None:
        """The true/false options: difficulty tracking (benchmark mode only), streaming, the GPU step."""
        if self.track_difficulty not in (True, False):
            raise InputError(f"track-difficulty must be true or false, got {self.track_difficulty!r}")
        if self.track_difficulty and self.mode != "benchmark":
            raise InputError(
                f"--track-difficulty measures the benchmark mode's first phase; leave it out with --mode {self.mode}"
            )
        if self.stream not in (None, True, False):
            raise InputError(f"stream must be true, false or unset, got {self.stream!r}")
        for name in ("compile", "cuda_graph"):
            if getattr(self, name) not in (True, False):
                raise InputError(f"{name.replace('_', '-')} must be true or false, got {getattr(self, name)!r}")
        if self.compile and self.cuda_graph:
            raise InputError("--cuda-graph records the plain training step; leave out --compile with it")

    def _check_milestones(self) -> None:
        milestones = self.milestones
        if milestones is not None and not (
            isinstance(milestones, (tuple, list)) and all(_is_int(m) and m >= 1 for m in milestones)
        ):
            raise InputError(f"milestones must be whole numbers of epochs >= 1, like 40,80; got {milestones!r}")

    def _check_data_options_apply(self) -> None:
        """Options of one kind of data given for another are refused, never silently ignored."""
        name = self.dataset.strip()
        if self.label_column != "label" and not (is_table_file(name) or is_table_folder(name)):
            raise InputError(
                f"--label-column names the label column of a table (.csv, .parquet); {name} is not a "
                f"table, so it would be ignored; leave --label-column out"
            )
        if self.train_set != "noisy" and not is_clothing1m_name(name):
            raise InputError(
                f"--train-set chooses between Clothing1M's training sets; {name} has one, so it "
                f"would be ignored; leave --train-set out"
            )
        if is_image_release_name(name) or is_image_folder_name(name):
            return
        looks_like_a_folder = "/" in name or name.startswith(("~", "."))  # a missing one is named by the reader
        if looks_like_a_folder and not is_table_file(name) and not name.lower().endswith(".npz"):
            return
        may_hold_images = is_table_file(name)  # an image column: packed like an image folder (else refused on reading)
        options = [
            ("--image-size", self.image_size, None),
            ("--cache-dir", self.cache_dir, None),
            ("--store-format", self.store_format, "jpeg"),
        ]
        if name != "arrays":  # arrays given in memory (Python) may be images streamed from memory by workers
            options += [
                ("--workers", self.workers, None),
                ("--no-stream" if self.stream is False else "--stream", self.stream, None),
            ]
        for option, value, default in options:
            if value != default and not may_hold_images:
                raise InputError(
                    f"{option} applies to image files (clothing1m, a folder or a table of images); "
                    f"{name} is not, so it would be ignored; leave {option} out"
                )

    def _check_rate_applies(self) -> None:
        """A noise rate given where nothing uses it is refused, never silently ignored."""
        if self.noise_rate is None:
            if self.noise_type in RATED_NOISE_TYPES and not self.human_labels_path:
                raise InputError(f"--noise-type {self.noise_type} needs a noise rate (--noise-rate) in [0, 1)")
            return
        if self.human_labels_path:
            raise InputError(
                f"--human-labels replaces synthetic noise with the file's labels, so --noise-rate "
                f"{self.noise_rate:g} would be ignored; leave --noise-rate out"
            )
        if self.noise_type == "transition":
            raise InputError(
                f"--noise-type transition takes its flip rates from the --transition matrix, so "
                f"--noise-rate {self.noise_rate:g} would be ignored; leave --noise-rate out"
            )
        if self.noise_type == "none" and self.noise_rate != 0:
            raise InputError(
                f"--noise-type none keeps the labels as given, so --noise-rate {self.noise_rate:g} "
                f"would be ignored; leave --noise-rate out or choose a noise type "
                f"({', '.join(RATED_NOISE_TYPES)})"
            )

    def noise_name(self) -> str:
        """The labels' noise in a few words for names and summaries: ``instance-0.4``,
        ``transition``, ``none``, or ``human`` (with a key other than the default,
        ``human-KEY``)."""
        if self.human_labels_path:
            return f"human-{self.human_labels_key}" if self.human_labels_key else "human"
        if self.noise_type in RATED_NOISE_TYPES and self.noise_rate is not None:
            return f"{self.noise_type}-{self.noise_rate:g}"
        return resolved(self.noise_type)

    def resolved_paths(self) -> dict[str, str]:
        """The settings that name a file or a folder (:data:`PATH_KEYS`), each as its absolute
        path: ``data.csv`` and ``./data.csv`` are one file, two folders' ``data.csv`` two.
        The dataset only where it is a path (not a benchmark or a release's name)."""
        out = {}
        for key in PATH_KEYS:
            value = getattr(self, key)
            if not isinstance(value, str) or not value.strip():
                continue
            if key == "dataset" and not names_a_path(value):
                continue
            out[key] = str(Path(value.strip()).expanduser().resolve())
        return out

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["milestones"] = list(self.milestones) if self.milestones is not None else None
        return d

    @classmethod
    def from_dict(cls, d: dict) -> RunConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in d.items() if k in names}
        if kwargs.get("human_labels_path") or kwargs.get("noise_type") in ("none", "transition"):
            kwargs["noise_rate"] = None  # these take no rate: a stored one would be refused
        if kwargs.get("milestones") is not None:
            kwargs["milestones"] = tuple(kwargs["milestones"])
        return cls(**kwargs)


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)

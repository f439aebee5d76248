"""The data of one run, from the dataset to the tensors the engine reads:

    data -> noise -> split  (:func:`prepare_data`, numpy)  ->  tensors on the device (:func:`place_data`)

and the checks that refuse a bad combination before anything is written: the network
(:func:`check_network`) and the ImageNet weights it starts from (:func:`resolve_pretrained`).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..base.errors import InputError
from ..config import RunConfig, resolved
from ..data import Dataset, check_human_labels, load_dataset, read_human_labels
from ..data.registry import spec_named
from ..method.procedure import RunTensors
from ..noise.files import read_labels_matrix
from ..noise.labels import make_noisy_labels
from ..noise.split import split_for_validation
from ..training.engine import DataSource, Engine
from ..training.models import IMAGENET_MIN_SIDE, create_model
from ..training.pretrained import KNOWN_FILES, find_pretrained, load_pretrained, missing_weights_message
from ..training.sources import StreamedSource, default_workers, to_device_data


@dataclass
class RunData:
    """The data of one run after noise and split, still as numpy arrays."""

    dataset: Dataset
    noisy_labels: np.ndarray  # for the whole training set
    realised_rate: float
    train_index: np.ndarray
    val_index: np.ndarray | None  # None: the dataset's own clean validation set (Clothing1M)
    # the noise is synthetic, so the labels it was added to are the truth it is measured
    # against (for the user's own data too); False for labels used as given and human labels
    synthetic_noise: bool
    val_labels: np.ndarray  # what validation scores against: noisy, or clean in the clothing1m mode

    def true_train_labels(self) -> np.ndarray | None:
        """The true labels of the training part T where known (-1 elsewhere), or None."""
        ds = self.dataset
        if ds.labels_are_clean or self.synthetic_noise:
            return ds.y_train[self.train_index]
        if ds.known_train_labels is not None:
            return ds.known_train_labels[self.train_index]
        return None


def prepare_data(cfg: RunConfig, dataset: Dataset | None = None) -> RunData:
    """Load the data (unless given), make the noisy labels, and split into training and
    validation parts. Image files are packed into their store here on first use."""
    ds = (
        dataset
        if dataset is not None
        else load_dataset(
            cfg.dataset,
            data_dir=cfg.data_dir,
            cache_dir=cfg.cache_dir,
            image_size=cfg.image_size,
            store_format=cfg.store_format,
            train_set=cfg.train_set,
            workers=cfg.workers,
            progress=cfg.progress,
            label_column=cfg.label_column,
        )
    )
    if cfg.human_labels_path:
        human = read_human_labels(cfg.human_labels_path, key=cfg.human_labels_key)
        check_human_labels(
            human, path=cfg.human_labels_path, y_train=ds.y_train, num_classes=ds.num_classes, dataset_name=ds.name
        )
        noisy = human.labels
        rate = float(np.mean(noisy != ds.y_train))
    else:
        transition = read_labels_matrix(resolved(cfg.transition_path)) if cfg.noise_type == "transition" else None
        features = _instance_features(ds) if cfg.noise_type == "instance" else None
        noisy_result = make_noisy_labels(
            ds.y_train,
            noise_type=resolved(cfg.noise_type),
            noise_rate=cfg.noise_rate,
            seed=cfg.effective_noise_seed(),
            num_classes=ds.num_classes,
            features=features,
            transition=transition,
        )
        noisy, rate = noisy_result.labels, noisy_result.realised_rate
    noisy = np.asarray(noisy, dtype=np.int64)
    synthetic = not cfg.human_labels_path and cfg.noise_type != "none"
    if cfg.mode == "clothing1m" and ds.x_val is not None:  # Clothing1M: all noisy images train
        return RunData(ds, noisy, rate, np.arange(ds.y_train.size), None, synthetic, np.asarray(ds.y_val))
    if cfg.mode == "clothing1m" and not (ds.labels_are_clean or synthetic):
        raise InputError(
            f"the clothing1m mode validates on clean labels, and {ds.name} has no clean validation "
            f"set and no known true labels; add synthetic noise (--noise-type) or use the benchmark mode"
        )
    # the split follows the training seed, never the noise seed: runs of several seeds on the same
    # noisy labels each hold out another tenth, and examples.csv's index (the position in the
    # whole training set) lines their examples up (memomentum.entrypoints.consensus)
    train_index, val_index = split_for_validation(ds.y_train.size, seed=cfg.seed, val_fraction=cfg.val_fraction)
    if train_index.size < 1 or val_index.size < 1:
        raise InputError(
            f"the dataset has only {ds.y_train.size} examples: too few to split into training and validation parts"
        )
    # the clothing1m mode holds the validation part out with its true labels
    val_labels = ds.y_train[val_index] if cfg.mode == "clothing1m" else noisy[val_index]
    return RunData(ds, noisy, rate, train_index, val_index, synthetic, np.asarray(val_labels, dtype=np.int64))


def _instance_features(ds: Dataset) -> np.ndarray:
    """The raw inputs instance-dependent noise projects: all of them, in memory."""
    if isinstance(ds.x_train, np.ndarray):
        return ds.x_train
    need = ds.x_train.nbytes
    if need > resident_budget(torch.device("cpu")):
        raise InputError(
            f"instance-dependent noise reads every training image at once ({need / 2**30:.1f} GiB "
            f"decoded), more than this machine holds; choose --noise-type symmetric or pairflip"
        )
    return ds.x_train.to_array()


def resident_budget(device: torch.device) -> int:
    """Bytes of normalised float32 data a run may keep resident on ``device``: 40 % of a
    GPU's memory (the rest is for the model and its activations), a quarter of the RAM."""
    if device.type == "cuda":
        return int(0.4 * torch.cuda.get_device_properties(device).total_memory)
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 4
    except (ValueError, OSError, AttributeError):
        return 4 << 30


def choose_stream(ds: Dataset, device: torch.device, stream: bool | None) -> bool:
    """Whether the data are streamed from disk (True) or held resident on ``device``:
    ``stream`` when given, else streamed exactly when the resident images would not fit in
    :func:`resident_budget`: uint8 on a GPU, normalised float32 elsewhere (:func:`place_data`)."""
    if stream is not None:
        if not ds.is_image:
            flag, does = (
                ("--stream", "reads images from disk in batches")
                if stream
                else ("--no-stream", "holds decoded images in memory")
            )
            raise InputError(
                f"{flag} {does}, but {ds.name} holds feature vectors, not images, so it would be "
                f"ignored; leave {flag} out"
            )
        return stream
    if not ds.is_image:
        return False
    values = sum(int(np.prod(x.shape)) for x in (ds.x_train, ds.x_test, ds.x_val) if x is not None)
    bytes_per_value = 1 if device.type == "cuda" else 4
    return bytes_per_value * values > resident_budget(device)


def place_data(prep: RunData, engine: Engine, *, stream: bool | None = None, workers: int | None = None) -> RunTensors:
    """Put the prepared data where the engine reads it: resident tensors on its device, or
    streamed sources over the packed store (:func:`choose_stream`)."""
    ds, dev = prep.dataset, engine.device
    kw: dict[str, Any] = dict(
        mean=ds.mean, std=ds.std, device=dev, channels_last=engine.channels_last, padding=ds.padding
    )
    source: Callable[..., DataSource]
    if choose_stream(ds, dev, stream):
        # the machine's cores are shared by its processes in a distributed run
        workers = max(1, default_workers() // engine.dist.local_world_size) if workers is None else workers
        source = lambda x, rows=None: StreamedSource(x, rows=rows, workers=workers, **kw)  # noqa: E731
    else:
        # x[:] reads a packed store whole (one batch read, not image by image); a GPU keeps
        # images as uint8 (a quarter of the memory), the CPU normalises them once
        kw["keep_uint8"] = dev.type == "cuda"
        source = lambda x, rows=None: to_device_data(x[:] if rows is None else x[rows], **kw)  # noqa: E731
    train = source(ds.x_train, prep.train_index)
    lab = lambda a: torch.as_tensor(np.asarray(a, dtype=np.int64), device=dev)  # noqa: E731
    true = prep.true_train_labels()
    known = lab(true) if true is not None else None
    return RunTensors(
        train=train,
        train_labels=lab(prep.noisy_labels[prep.train_index]),
        val=source(ds.x_val) if prep.val_index is None else source(ds.x_train, prep.val_index),
        val_labels=lab(prep.val_labels),
        test=source(ds.x_test) if ds.x_test is not None else None,
        test_labels=lab(ds.y_test) if ds.y_test is not None else None,
        num_classes=ds.num_classes,
        input_shape=train.example_shape,
        clean_train_labels=known,
    )


def check_network(cfg: RunConfig, problem: RunTensors, engine: Engine, network=None) -> None:
    """Build the network once (with its pretrained weights), so that a model that does not
    fit the data or a bad weights file is refused before anything is written; a user's
    ``network`` function must also give one logit per class on a batch of the data. The
    random state is left as it was."""
    with torch.random.fork_rng(devices=[]):
        if network is None:
            model = create_model(resolved(cfg.model), input_shape=problem.input_shape, num_classes=problem.num_classes)
        else:
            model = network(problem.input_shape, problem.num_classes)
        if cfg.pretrained not in (None, "none"):
            load_pretrained(model, cfg.pretrained, model_name=resolved(cfg.model))
        if network is not None:
            _check_logits(engine.prepare(model).eval(), problem)


def _check_logits(network: torch.nn.Module, problem: RunTensors) -> None:
    """Refuse a user's network that does not take the data or does not give one logit per class."""
    n = min(2, len(problem.train))
    with torch.inference_mode():
        try:
            out = network(next(iter(problem.train.batches(None, n))))
        except (RuntimeError, TypeError, ValueError) as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise InputError(f"the model function's network fails on a batch of the data: {first}") from None
    k = problem.num_classes
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (n, k):
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise InputError(
            f"the model function's network returns {shape} for a batch of {n}; it must return "
            f"({n}, {k}) logits, one per class"
        )


def resolve_pretrained(cfg: RunConfig, ds: Dataset) -> str:
    """The weights file a run starts from, or ``"none"``.

    ``--pretrained PATH`` and ``--pretrained none`` are taken as given. Otherwise image-file
    datasets look for torchvision's file in torch's hub cache (never downloading):
    Clothing1M refuses to start without it (its protocol fine-tunes ImageNet weights), an
    image folder trains from scratch and says so. Other datasets train from scratch.
    """
    if cfg.pretrained is not None:
        return cfg.pretrained
    imagenet_shaped = cfg.model == "resnet50" or (ds.is_image and min(ds.x_train.shape[1:3]) >= IMAGENET_MIN_SIDE)
    if ds.source is None or cfg.model not in KNOWN_FILES or not imagenet_shaped:
        return "none"
    found = find_pretrained(cfg.model)
    if found is not None:
        return str(found)
    spec = spec_named(ds.name)
    if spec is not None and spec.needs_pretrained:
        raise InputError(missing_weights_message(cfg.model))
    print(
        f"memomentum: note: training {cfg.model} from scratch: no ImageNet weights found "
        f"({missing_weights_message(cfg.model)})",
        file=sys.stderr,
    )
    return "none"

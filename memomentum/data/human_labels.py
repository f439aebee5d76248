"""Human (noisy) labels for a benchmark's training set: CIFAR-10N and CIFAR-100N's label
files (``torch.save`` dicts, loaded with ``weights_only``), or the same keys in a ``.npz``,
or one label array in a ``.npy``; read, and checked against the training set they must
belong to (:attr:`.registry.DatasetSpec.human_labels` names each benchmark's release).
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..base.errors import InputError
from .arrays import check_labels
from .pickles import torch_safe_globals
from .registry import spec_named

_DEFAULT_HUMAN_KEYS = ("worse_label", "noisy_label")  # CIFAR-10N, CIFAR-100N

# How a file torch.save wrote begins: a zip archive (since torch 1.6) or a pickle (before).
_TORCH_FILE_STARTS = (b"PK\x03\x04", b"\x80")


def _first_sentence(text: str) -> str:
    """The first sentence of an error text (torch's go on with advice that does not apply here,
    such as loading with weights_only=False, which would run the file's code)."""
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line.split(". ")[0].rstrip(".")


def _load_pt(path: Path) -> Any:
    import torch

    try:
        with open(path, "rb") as f:
            start = f.read(64)
    except OSError as e:
        raise InputError(f"could not read the label file {path}: {e.strerror or e}") from None
    if not start.startswith(_TORCH_FILE_STARTS):
        what = "is empty" if not start else f"is not a file written by torch.save (it begins {start[:24]!r})"
        raise InputError(f"label file {path} {what}; give CIFAR-N's .pt file, or the labels as a .npy or .npz array")
    try:
        with torch.serialization.safe_globals(torch_safe_globals()):
            return torch.load(path, weights_only=True, map_location="cpu")
    except pickle.UnpicklingError as e:
        msg = str(e)
        if "Unsupported global" in msg or "not an allowed global" in msg or "blocked" in msg:
            detail = next((ln.strip() for ln in msg.splitlines() if "Unsupported global" in ln), "").split(
                " was not", 1
            )[0]
            raise InputError(
                f"refusing to load label file {path}: it needs pickled code ({detail or 'a disallowed global'}), "
                f"but only dicts of label arrays are accepted"
            ) from None
        raise InputError(
            f"label file {path} is not a readable torch file (corrupt or truncated: {_first_sentence(msg)})"
        ) from None
    except Exception as e:  # noqa: BLE001 -- bad zip, truncated file, unexpected content, ...
        raise InputError(
            f"label file {path} is not a readable torch file (corrupt or truncated: {type(e).__name__}: "
            f"{_first_sentence(str(e))})"
        ) from None


@dataclass(frozen=True)
class HumanLabels:
    """One set of human labels read from a CIFAR-N style file, with what the file says
    about itself: the key the labels came from (None for a single array), the file's keys,
    and its clean labels (``clean_label``, or ``clean_coarse_label`` for a coarse key)."""

    labels: np.ndarray
    key: str | None
    keys: tuple[str, ...]
    clean: np.ndarray | None


_CIFAR10N_KEYS = frozenset({"worse_label", "aggre_label", "random_label1", "random_label2", "random_label3"})
_CIFAR100N_KEYS = frozenset({"noisy_label", "noisy_coarse_label", "clean_coarse_label"})


def read_human_labels(path: str, *, key: str | None = None) -> HumanLabels:
    """:func:`load_human_labels` with what the file says about itself (:class:`HumanLabels`);
    the file's clean labels are returned as they are, checked by :func:`check_human_labels`."""
    content, p = _read_human_file(path, key)
    if not isinstance(content, dict):
        return HumanLabels(_human_array(content, f"labels in {p}"), None, (), None)
    names = [str(k) for k in content]
    if key is None:
        key = next((k for k in _DEFAULT_HUMAN_KEYS if k in content), None)
        if key is None:
            raise InputError(
                f"label file {p} has neither 'worse_label' nor 'noisy_label'; choose a key from: {', '.join(names)}"
            )
    if key not in content:
        raise InputError(f"label file {p} has no key {key!r}; keys present: {', '.join(names)}")
    clean_key = "clean_coarse_label" if "coarse" in key else "clean_label"
    clean = content.get(clean_key)
    clean = None if clean is None or clean_key == key else _human_array(clean, f"labels {clean_key!r} in {p}")
    return HumanLabels(_human_array(content[key], f"labels {key!r} in {p}"), key, tuple(names), clean)


def check_human_labels(
    human: HumanLabels, *, path: str, y_train: np.ndarray, num_classes: int, dataset_name: str
) -> None:
    """Refuse, in one sentence, human labels that do not belong to this training set: a
    CIFAR-10N file on CIFAR-100 (or the reverse), a coarse-label key on fine classes, a
    count or range that does not match, or a ``clean_label`` that differs from the
    training labels.

    Raises:
        InputError: the first mismatch found.
    """
    noisy, n = human.labels, y_train.size
    keys = set(human.keys)
    kind = "CIFAR-10N" if keys & _CIFAR10N_KEYS else "CIFAR-100N" if keys & _CIFAR100N_KEYS else None
    spec = spec_named(dataset_name)
    expected = spec.human_labels if spec is not None else None
    if kind is not None and expected is not None and kind != expected:
        raise InputError(
            f"the human label file {path} is a {kind} file (keys {', '.join(sorted(keys))}), but the "
            f"dataset is {dataset_name}, whose human labels are {expected}"
        )
    if human.key is not None and "coarse" in human.key and num_classes != 20:
        raise InputError(
            f"the key {human.key!r} of {path} holds CIFAR-100's 20 coarse (superclass) labels, but "
            f"{dataset_name} has {num_classes} classes; choose noisy_label (--human-labels-key)"
        )
    if noisy.shape != y_train.shape:
        raise InputError(f"the human label file {path} has {noisy.size} labels but the training set has {n} examples")
    if noisy.size and (noisy.min() < 0 or noisy.max() >= num_classes):
        bad = int(noisy.min()) if noisy.min() < 0 else int(noisy.max())
        raise InputError(
            f"the human label file {path} holds the label {bad}, but {dataset_name} "
            f"has {num_classes} classes: labels must be 0..{num_classes - 1}"
        )
    if human.clean is not None:
        differ = int(np.sum(human.clean != y_train)) if human.clean.shape == y_train.shape else n
        if differ:
            raise InputError(
                f"the clean labels in the human label file {path} differ from the training labels of "
                f"{dataset_name} at {differ} of {n} examples, so its noisy labels belong to other images "
                f"(another data set, or another order)"
            )
    used = np.unique(noisy).size
    if num_classes >= 4 and used <= num_classes // 2:
        raise InputError(
            f"the human label file {path} uses only {used} of the {num_classes} classes of "
            f"{dataset_name}, so it belongs to another data set"
        )


def load_human_labels(path: str, *, key: str | None = None) -> np.ndarray:
    """Read one set of human (noisy) labels, e.g. from CIFAR-10N / CIFAR-100N.

    Args:
        path: ``CIFAR-10_human.pt`` / ``CIFAR-100_human.pt`` (a dict saved with
            ``torch.save``, loaded with ``weights_only=True``; keys such as
            ``worse_label``, ``aggre_label``, ``random_label1..3``, ``clean_label`` for
            CIFAR-10N and ``noisy_label``, ``clean_label`` for CIFAR-100N), a ``.npz``
            with the same kind of keys, or a ``.npy`` holding a single label array.
        key: which labels to take from a dict. Default: ``worse_label`` if present
            (CIFAR-10N), else ``noisy_label`` (CIFAR-100N). Not allowed for ``.npy``.

    Returns:
        int64 (N,) labels, in the order of the official training set (for CIFAR-N:
        ``data_batch_1..5`` / ``train`` order, which is what :func:`load_dataset`
        returns). The caller checks that N and the label range match its data set.

    Raises:
        InputError: missing or unreadable file, unknown key, or labels that are not
            non-negative integers.
    """
    return read_human_labels(path, key=key).labels


def _read_human_file(path: str, key: str | None) -> tuple[Any, Path]:
    """The content of a human label file (a dict of arrays, or one array) and its path."""
    p = Path(path).expanduser()
    if p.is_dir():
        raise InputError(
            f"the human label file {p} is a folder; give the label file itself (CIFAR-N's .pt, or a .npy or .npz array)"
        )
    if not p.is_file():
        raise InputError(f"no human label file found at {p}")
    suffix = p.suffix.lower()
    if suffix == ".npy":
        if key is not None:
            raise InputError(f"key={key!r} was given but {p} is a .npy file holding a single label array; omit the key")
        try:
            with open(p, "rb") as f:
                content: Any = np.load(f, allow_pickle=False)
            if not isinstance(content, np.ndarray):
                raise ValueError("it is not a single .npy array")
        except Exception as e:  # noqa: BLE001 -- numpy raises many types for a damaged file
            raise InputError(
                f"label file {p} is not a readable .npy file of numbers ({type(e).__name__}: {e})"
            ) from None
    elif suffix == ".npz":
        try:
            with open(p, "rb") as f, np.load(f, allow_pickle=False) as npz:
                content = {k: npz[k] for k in npz.files}
        except Exception as e:  # noqa: BLE001 -- numpy and zipfile raise many types for a damaged file
            raise InputError(
                f"label file {p} is not a readable .npz file of numbers ({type(e).__name__}: {e})"
            ) from None
    else:
        content = _load_pt(p)
    if not isinstance(content, dict) and key is not None:
        raise InputError(
            f"key={key!r} was given but {p} holds a single {type(content).__name__}, not a dict; omit the key"
        )
    return content, p


def _human_array(labels: Any, label_name: str) -> np.ndarray:
    if hasattr(labels, "numpy") and callable(labels.numpy):  # a torch tensor
        labels = labels.detach().cpu().numpy()
    try:
        arr = np.asarray(labels)
    except Exception:  # noqa: BLE001 -- ragged or otherwise unconvertible
        arr = np.asarray([], dtype=object)
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise InputError(f"{label_name} are not numeric (got {type(labels).__name__} of {arr.dtype})")
    return check_labels(arr, label_name)

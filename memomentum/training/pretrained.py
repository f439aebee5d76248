"""Pretrained ImageNet weights for the ResNets, read only from a local file.

Nothing is downloaded: a run uses a file the user gives (``--pretrained PATH``) or one of
torchvision's files already in torch.hub's cache, ``$TORCH_HOME/hub/checkpoints`` (by
default ``$XDG_CACHE_HOME/torch/hub/checkpoints``, and ``~/.cache/torch/hub/checkpoints``
when neither variable is set), where ``torchvision.models.resnet50(weights=...)`` leaves
them. :func:`find_pretrained` looks there, :func:`load_pretrained` checks a file and loads it
into a model from :func:`memomentum.training.models.create_model`, and
:func:`missing_weights_message` tells the user where to put one.

Loading keeps the model's own classifier ``fc`` (the dataset's classes are not ImageNet's)
and otherwise requires the file to hold exactly the model's tensors with the same shapes. A
file named as torchvision names its files, ``<name>-<hex>.pth``, must have a SHA-256 that
starts with that hex, the rule of torch.hub's ``check_hash``. Every problem with the file or
the name is an :class:`~memomentum.base.errors.InputError` described in one sentence.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..base.errors import InputError
from .models import IMAGENET_MIN_SIDE, ResNet

# torchvision's file names for each model's ImageNet weights, in the order they are looked
# for: IMAGENET1K_V1, IMAGENET1K_V2 (resnet50 only), then the original 2017 release.
KNOWN_FILES: dict[str, tuple[str, ...]] = {
    "resnet18": ("resnet18-f37072fd.pth", "resnet18-5c106cde.pth"),
    "resnet34": ("resnet34-b627a593.pth", "resnet34-333f7ec4.pth"),
    "resnet50": ("resnet50-0676ba61.pth", "resnet50-11ad3fa6.pth", "resnet50-19c8e357.pth"),
}

# torchvision's naming, <name>-<first hex digits of the SHA-256>.pth; torch.hub checks the
# digits (lower case, as it writes them) against the file's hash. Fewer than 8 digits would
# make a chance match on an unrelated name too likely to call it a hash.
_HASHED_NAME = re.compile(r"(?P<stem>.+)-(?P<hex>[0-9a-f]{8,})\.pth")

# The classifier is always the model's own: its number of outputs is the dataset's.
_HEAD_PREFIX = "fc."

# How many key names an error message shows before "...".
_SHOWN_KEYS = 3


@dataclass(frozen=True)
class LoadReport:
    """What :func:`load_pretrained` loaded."""

    path: Path
    sha256_prefix: str | None  # the prefix the file's SHA-256 was checked against; None: not checked
    tensors_loaded: int  # tensors copied from the file into the model
    dropped: tuple[str, ...]  # the file's keys not loaded (its classifier, fc.*)
    kept: tuple[str, ...]  # the model's buffers the file lacked, left as they were (num_batches_tracked)

    @property
    def hash_checked(self) -> bool:
        return self.sha256_prefix is not None

    def describe(self) -> str:
        check = f"SHA-256 starts with {self.sha256_prefix}" if self.hash_checked else "hash not checked"
        return (
            f"{self.tensors_loaded} tensors from {self.path} ({check}; {len(self.dropped)} classifier tensors left out)"
        )


def _check_model_name(model_name: str) -> tuple[str, ...]:
    """The known file names for ``model_name``; an InputError for a model without any."""
    if model_name not in KNOWN_FILES:
        raise InputError(
            f"model {model_name!r} has no pretrained weights; "
            f"pretrained weights exist only for {', '.join(sorted(KNOWN_FILES))}"
        )
    return KNOWN_FILES[model_name]


def _expand_home(path: str, environ: Mapping[str, str]) -> Path:
    """``~`` expanded with ``environ``'s HOME when it has one, so that a test's environment
    decides the default directory as the real one does."""
    if path.startswith("~") and environ.get("HOME"):
        return Path(environ["HOME"] + path[1:])
    return Path(os.path.expanduser(path))


def checkpoint_dir(*, environ: Mapping[str, str] = os.environ) -> Path:
    """torch.hub's checkpoint directory for ``environ``, as ``torch.hub.get_dir()`` finds it:
    ``$TORCH_HOME/hub/checkpoints``, else ``$XDG_CACHE_HOME/torch/hub/checkpoints``, else
    ``~/.cache/torch/hub/checkpoints``. An empty variable counts as unset."""
    torch_home = environ.get("TORCH_HOME") or os.path.join(environ.get("XDG_CACHE_HOME") or "~/.cache", "torch")
    return _expand_home(torch_home, environ) / "hub" / "checkpoints"


def find_pretrained(model: str, *, environ: Mapping[str, str] = os.environ) -> Path | None:
    """The first of torchvision's weight files for ``model`` (:data:`KNOWN_FILES`) present in
    :func:`checkpoint_dir`, or None when there is none.

    Raises:
        InputError: ``model`` has no pretrained weights (e.g. ``lenet``, ``mlp``).
    """
    directory = checkpoint_dir(environ=environ)
    for name in _check_model_name(model):
        if (directory / name).is_file():
            return directory / name
    return None


def missing_weights_message(model_name: str, *, environ: Mapping[str, str] = os.environ) -> str:
    """One sentence for a run that needs pretrained weights and found none: the directory
    to put torchvision's file in, the file names looked for, and the two alternatives."""
    names = _check_model_name(model_name)
    listed = ", ".join(names[:-1]) + f" or {names[-1]}" if len(names) > 1 else names[0]
    return (
        f"no pretrained {model_name} weights found: put torchvision's {listed} in "
        f"{checkpoint_dir(environ=environ)}, or give --pretrained PATH to use another weights file, "
        f"or --pretrained none to train from a random initialisation"
    )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        # In pieces: a ResNet-50 file is about 100 MB.
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _check_file_name(path: Path, model_name: str) -> str | None:
    """Apply torchvision's naming: a ``<name>-<hex>.pth`` file must be weights for
    ``model_name`` when ``<name>`` is a known model, and its SHA-256 must start with
    ``<hex>``. Returns the checked prefix, or None for a file not named that way."""
    match = _HASHED_NAME.fullmatch(path.name)
    if match is None:
        return None
    stem, prefix = match["stem"], match["hex"]
    if stem in KNOWN_FILES and stem != model_name:
        raise InputError(
            f"pretrained weights file {path} is named as {stem} weights, "
            f"but the model is {model_name}; give {model_name} weights or --pretrained none"
        )
    actual = _sha256(path)
    if not actual.startswith(prefix):
        raise InputError(
            f"pretrained weights file {path} is damaged or not the original: its name says "
            f"its SHA-256 starts with {prefix}, but it starts with {actual[: len(prefix)]}"
        )
    return prefix


def _read(path: Path) -> dict[str, torch.Tensor]:
    """The file's state dict, keys without a leading ``module.``."""
    try:
        # weights_only: a pickle from elsewhere must not run code. It reads the zip format
        # and the legacy one alike.
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - torch.load raises many types for a bad file
        # (RuntimeError for a broken zip, UnpicklingError, EOFError, ValueError, ...): all
        # of them mean the user's file cannot be used.
        if "Unsupported global" in str(e) or "GLOBAL" in str(e):  # the pickle names classes: a whole model
            raise InputError(
                f"pretrained weights file {path} holds a pickled Python object (a whole model?), not "
                f"a state dict; save model.state_dict() with torch.save and give that file"
            ) from None
        raise InputError(
            f"cannot read pretrained weights from {path}: it is not a weights file written by "
            f"torch.save (a .pth file holding a state dict)"
        ) from None
    if isinstance(obj, Mapping):
        # Training scripts' checkpoints keep the weights beside the optimizer and the epoch.
        for key in ("state_dict", "model"):
            if isinstance(obj.get(key), Mapping):
                obj = obj[key]
                break
    if not isinstance(obj, Mapping) or not all(isinstance(k, str) and torch.is_tensor(v) for k, v in obj.items()):
        raise InputError(
            f"pretrained weights file {path} holds a {type(obj).__name__} that is not a state dict; "
            f"it must map parameter names to tensors, alone or under 'state_dict' or 'model'"
        )
    broken = [k for k, v in obj.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if broken:
        raise InputError(
            f"pretrained weights file {path} holds NaN or infinite values in {len(broken)} "
            f"tensor{'s' if len(broken) > 1 else ''} ({_shown(broken)}); the file is damaged"
        )
    state: dict[str, torch.Tensor] = {}
    for key, tensor in obj.items():
        # nn.DataParallel and DistributedDataParallel save their wrapped model's keys this way.
        name = key.removeprefix("module.")
        if name in state:
            raise InputError(f"pretrained weights file {path} holds {name!r} twice, with and without 'module.'")
        state[name] = tensor
    return state


def _shown(keys: list[str]) -> str:
    return ", ".join(keys[:_SHOWN_KEYS]) + (", ..." if len(keys) > _SHOWN_KEYS else "")


def _check_keys(
    state: Mapping[str, torch.Tensor], expected: Mapping[str, torch.Tensor], path: Path, model_name: str
) -> list[str]:
    """Require the file's keys to be the model's (the head aside); returns the model's
    buffers the file may lack and that are kept: BatchNorm's ``num_batches_tracked``, which
    older files do not have and which only matters with ``momentum=None``."""
    missing = [k for k in expected if k not in state]
    kept = [k for k in missing if k.endswith("num_batches_tracked")]
    missing = [k for k in missing if k not in kept]
    unexpected = [k for k in state if k not in expected]
    problems = []
    if missing:
        problems.append(f"lacks {len(missing)} tensors that {model_name} needs ({_shown(missing)})")
    if unexpected:
        problems.append(f"has {len(unexpected)} tensors that {model_name} does not have ({_shown(unexpected)})")
    if problems:
        raise InputError(
            f"pretrained weights file {path} {' and '.join(problems)}; "
            f"it must hold torchvision's {model_name} state dict"
        )
    return kept


def _check_shapes(
    state: Mapping[str, torch.Tensor], expected: Mapping[str, torch.Tensor], path: Path, model_name: str
) -> None:
    conv1 = "conv1.weight"
    if (
        conv1 in state
        and state[conv1].dim() == 4
        and expected[conv1].dim() == 4
        and state[conv1].shape[1] != expected[conv1].shape[1]
    ):
        # The one mismatch a user meets with right weights: grey-scale (or other) images.
        raise InputError(
            f"pretrained weights in {path} are for images with {state[conv1].shape[1]} channels, "
            f"but the data have {expected[conv1].shape[1]}; use {state[conv1].shape[1]}-channel "
            f"images or --pretrained none"
        )
    wrong = [k for k in state if state[k].shape != expected[k].shape]
    if wrong:
        k = wrong[0]
        more = f" (and {len(wrong) - 1} more tensors)" if len(wrong) > 1 else ""
        raise InputError(
            f"pretrained weights file {path} has {k} of shape {tuple(state[k].shape)}, "
            f"but {model_name} needs {tuple(expected[k].shape)}{more}"
        )


def check_weights_file(path: str | os.PathLike) -> None:
    """The checks of a weights file that need no network (it exists, torch.save wrote it,
    it holds a state dict of finite tensors): done before any long work such as packing
    images, so that a bad file is found in seconds. :func:`load_pretrained` checks the rest."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise InputError(
            f"pretrained weights file {path} is a folder; give the path of a .pth file in it or --pretrained none"
        )
    if not path.is_file():
        raise InputError(
            f"pretrained weights file {path} does not exist; give the path of a .pth file or --pretrained none"
        )
    _read(path)


def load_pretrained(model: nn.Module, path: str | os.PathLike, *, model_name: str) -> LoadReport:
    """Copy the weights in ``path`` into ``model``, all but its classifier ``fc``.

    Args:
        model: an ImageNet ResNet from :func:`memomentum.training.models.create_model`, with any
            number of classes; changed in place.
        path: a file written by ``torch.save`` (zip or legacy format) holding a state dict
            with torchvision's names, alone or under ``"state_dict"`` or ``"model"``; a
            leading ``module.`` on its keys is ignored.
        model_name: ``resnet18``, ``resnet34`` or ``resnet50``, for the checks and messages.

    Returns:
        A :class:`LoadReport`.

    Raises:
        InputError: a model without pretrained weights, the CIFAR ResNet, a missing,
            unreadable or misnamed file, a hash that differs from the name's, keys missing
            or extra, or a tensor of another shape.
    """
    _check_model_name(model_name)
    if isinstance(model, ResNet):
        raise InputError(
            f"pretrained {model_name} weights fit only the ImageNet ResNet, which is used for images "
            f"of at least {IMAGENET_MIN_SIDE} pixels a side; these images are smaller, so give --pretrained none"
        )
    path = Path(path).expanduser()
    if not path.is_file():
        raise InputError(
            f"pretrained weights file {path} does not exist; give the path of a .pth file or --pretrained none"
        )
    # Before torch.load: a file that fails its hash is not unpickled at all.
    prefix = _check_file_name(path, model_name)
    state = _read(path)
    dropped = tuple(k for k in state if k.startswith(_HEAD_PREFIX))
    state = {k: v for k, v in state.items() if not k.startswith(_HEAD_PREFIX)}
    own = model.state_dict()
    expected = {k: v for k, v in own.items() if not k.startswith(_HEAD_PREFIX)}
    kept = _check_keys(state, expected, path, model_name)
    _check_shapes(state, expected, path, model_name)
    result = model.load_state_dict(state, strict=False)
    # Everything was checked above; this guards the checks themselves. (BatchNorm fills in
    # its own num_batches_tracked when the file lacks it, so those may or may not be listed.)
    assert not result.unexpected_keys and set(result.missing_keys) - set(kept) == own.keys() - expected.keys()
    return LoadReport(path=path, sha256_prefix=prefix, tensors_loaded=len(state), dropped=dropped, kept=tuple(kept))

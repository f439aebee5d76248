"""Where batches come from: the two data sources the engine trains and predicts on.

* :class:`ResidentSource`: the whole split normalised once, as one tensor on the training
  device (MNIST, CIFAR, small image folders). Batches are gathered with one indexing op.
* :class:`StreamedSource`: images that do not fit stay on disk in the packed store
  (:mod:`memomentum.data.store`); worker processes read and decode whole batches into
  (pinned) uint8 host memory, and the device normalises each batch exactly as the resident
  source normalised everything up front, so both give bit-identical inputs.

Both answer the same questions: ``len(source)``, ``example_shape``, ``pad_value`` and
``padding`` (for the random crop) and ``batches(index, size)``, which yields the
normalised float32 inputs of ``index[0:size]``, ``index[size:2 * size]``, ... in that order
(``index=None``: every example in order). Order and augmentation stay with the caller's
seeded generator, so the source never changes which examples a run sees or how they are
augmented: a streamed run reproduces, and resumes mid-epoch, exactly like a resident one.
"""
from __future__ import annotations

import os
from typing import Iterator, Sequence

import numpy as np
import torch


def _normaliser(mean, std, device: torch.device):
    mean_t = torch.as_tensor(np.asarray(mean, dtype=np.float32), device=device)
    std_t = torch.as_tensor(np.asarray(std, dtype=np.float32), device=device)
    return mean_t, std_t


def _normalise_images(t: torch.Tensor, mean_t: torch.Tensor, std_t: torch.Tensor, channels_last: bool) -> torch.Tensor:
    """uint8 (N, H, W, C) on the device -> normalised float32 (N, C, H, W). The one place the
    image normalisation is written, so resident and streamed inputs are the same floats."""
    t = t.permute(0, 3, 1, 2).float().div_(255.0)  # N C H W view over NHWC memory = channels_last
    t = (t - mean_t.view(1, -1, 1, 1)) / std_t.view(1, -1, 1, 1)
    return t.contiguous(memory_format=torch.channels_last if channels_last else torch.contiguous_format)


class ResidentSource:
    """One split of a dataset, normalised, on the training device.

    ``x`` is float32 (N, C, H, W) in channels-last memory for images or (N, D) for
    features; ``pad_value`` is what a zero pixel becomes after normalisation, used to pad
    before random crops exactly as the reference pads the raw image with black.
    """

    def __init__(self, x: torch.Tensor, pad_value: torch.Tensor | None, padding: int = 4):
        self.x = x
        self.pad_value = pad_value
        self.padding = padding

    def __len__(self) -> int:
        return self.x.shape[0]

    @property
    def example_shape(self) -> tuple[int, ...]:
        return tuple(self.x.shape[1:])

    def batches(self, index: torch.Tensor | None, size: int) -> Iterator[torch.Tensor]:
        n = len(self) if index is None else index.numel()
        for start in range(0, n, size):
            yield self.x[start:start + size] if index is None else self.x[index[start:start + size]]


def to_device_data(x: np.ndarray, *, mean, std, device: torch.device, channels_last: bool,
                   padding: int = 4) -> ResidentSource:
    """Normalise a raw array once and move it to ``device``.

    Images (uint8, N x H x W x C) are scaled to 0..1 then standardised per channel;
    features (N x D) are standardised per feature on their raw scale.
    """
    mean_t, std_t = _normaliser(mean, std, device)
    if x.ndim == 4:
        t = torch.from_numpy(np.require(x, requirements=["C", "W"])).to(device)
        return ResidentSource(_normalise_images(t, mean_t, std_t, channels_last), -mean_t / std_t, padding)
    t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(device)
    return ResidentSource((t - mean_t) / std_t, None, padding)


class _BatchReader(torch.utils.data.Dataset):
    """What each worker process runs: read one whole batch of uint8 images."""

    def __init__(self, images):
        self.images = images  # PackedImages (pickled cheaply into the workers) or a uint8 array

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, rows: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(self.images[rows]))


def default_workers() -> int:
    """Reader processes when none are asked for: every core the process may use, at most 16
    (more than a GPU step needs, see docs/images.md)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, 16))


class StreamedSource:
    """Images read from disk batch by batch, never held whole.

    Args:
        images: a :class:`memomentum.data.store.PackedImages` (or any uint8
            (N, H, W, C) array-like whose ``[int array]`` returns those rows in order).
        rows: which of ``images`` make up this split (e.g. the training part after the
            split); ``None`` = all.
        mean, std: per-channel normalisation on the 0..1 scale.
        device: the training device; on CUDA batches land in pinned memory and are copied
            without blocking.
        workers: reader processes; 0 reads in the calling process.
        padding: zero padding of the random crop.
        prefetch: batches each worker reads ahead.
    """

    def __init__(self, images, *, rows: Sequence[int] | None = None, mean, std, device: torch.device,
                 channels_last: bool = True, workers: int = 0, padding: int = 4, prefetch: int = 2):
        self.images = images
        self.rows = None if rows is None else np.asarray(rows, dtype=np.int64)
        self.device = device
        self.channels_last = channels_last
        self.workers = workers
        self.padding = padding
        self.prefetch = prefetch
        self.mean_t, self.std_t = _normaliser(mean, std, device)
        self.pad_value = -self.mean_t / self.std_t
        height, width, channels = images.shape[1:]
        self._shape = (channels, height, width)

    def __len__(self) -> int:
        return len(self.images) if self.rows is None else self.rows.size

    @property
    def example_shape(self) -> tuple[int, ...]:
        return self._shape

    def _plan(self, index: torch.Tensor | None, size: int) -> list[np.ndarray]:
        """The store rows of every batch, in order (one host copy of the order per pass)."""
        if index is None:
            positions = np.arange(len(self), dtype=np.int64)
        else:
            positions = index.detach().to("cpu", torch.int64).numpy()
        rows = positions if self.rows is None else self.rows[positions]
        return [rows[start:start + size] for start in range(0, rows.size, size)]

    def batches(self, index: torch.Tensor | None, size: int) -> Iterator[torch.Tensor]:
        plan = self._plan(index, size)
        if not plan:
            return
        cuda = self.device.type == "cuda"
        # batch_size=None: the sampler hands each worker a whole batch of rows and the worker
        # returns them as one uint8 tensor (no per-image collation).
        loader = torch.utils.data.DataLoader(
            _BatchReader(self.images), batch_size=None, sampler=plan, num_workers=self.workers,
            pin_memory=cuda, prefetch_factor=self.prefetch if self.workers else None,
            persistent_workers=False)
        batches = iter(loader)
        try:
            for raw in batches:
                yield _normalise_images(raw.to(self.device, non_blocking=cuda), self.mean_t, self.std_t,
                                        self.channels_last)
        finally:
            # the caller may stop early (a pause mid-epoch): stop the readers now, not at exit
            shutdown = getattr(batches, "_shutdown_workers", None)
            if shutdown is not None:
                shutdown()

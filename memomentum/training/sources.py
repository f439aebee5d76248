"""Where batches come from: the two data sources the engine trains and predicts on.

* :class:`ResidentSource`: the whole split normalised once, as one tensor on the training
  device (MNIST, CIFAR, small image folders). Batches are gathered with one indexing op.
  On a GPU images stay uint8 instead (:class:`ResidentImages`), normalised batch by batch.
* :class:`StreamedSource`: images that do not fit stay on disk in the packed store
  (:mod:`memomentum.store`); worker processes read and decode whole batches into
  (pinned) uint8 host memory, and the device normalises each batch exactly as the resident
  source normalised everything up front, so both give bit-identical inputs.

Both answer the same questions: ``len(source)``, ``example_shape``, ``pad_value`` and
``padding`` and ``batches(index, size, augment=generator)``, which yields the normalised
float32 inputs of ``index[0:size]``, ``index[size:2 * size]``, ... in that order
(``index=None``: every example in order), randomly cropped and flipped with draws from
``augment`` when it is given (:func:`crop_flip`). Order and augmentation stay with the caller's
seeded generator, so the source never changes which examples a run sees or how they are
augmented: a streamed run reproduces, and resumes mid-epoch, exactly like a resident one.

In a distributed run (:mod:`memomentum.training.distributed`) ``batches(..., shard=(rank, world_size))``
yields only this process's contiguous block of every batch (a streamed source reads only
those rows), while the augmentation of the whole batch is still drawn, so that every process
consumes the generator exactly as a single process does; ``skip_draws(sizes, generator)``
draws and drops the augmentation of batches another process reads.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator, Sequence

import numpy as np
import torch

from ..base.cores import cores_up_to
from .distributed import block_bounds


def _normaliser(mean, std, device: torch.device):
    mean_t = torch.as_tensor(np.asarray(mean, dtype=np.float32), device=device)
    std_t = torch.as_tensor(np.asarray(std, dtype=np.float32), device=device)
    return mean_t, std_t


def _normalise_images(t: torch.Tensor, mean_t: torch.Tensor, std_t: torch.Tensor, channels_last: bool) -> torch.Tensor:
    """uint8 (N, H, W, C) on the device -> normalised float32 (N, C, H, W). The one place the
    image normalisation is written, so resident and streamed inputs are the same floats."""
    t = t.permute(0, 3, 1, 2).float()  # N C H W view over NHWC memory = channels_last
    # in place: the same floats as (t / 255 - mean) / std, at half the time on the CPU (one
    # buffer instead of three: 2-core VM, 256 images of 256 x 256, 290 -> 580 images/s)
    t.div_(255.0).sub_(mean_t.view(1, -1, 1, 1)).div_(std_t.view(1, -1, 1, 1))
    return t.contiguous(memory_format=torch.channels_last if channels_last else torch.contiguous_format)


def draw_crop_flip(b: int, padding: int, generator: torch.Generator, device: torch.device):
    """The random draws of one batch's crops and flips, always in this order (so every data
    source, and a resumed run, consumes the generator identically)."""
    dy = torch.randint(0, 2 * padding + 1, (b, 1), generator=generator, device=device)
    dx = torch.randint(0, 2 * padding + 1, (b, 1), generator=generator, device=device)
    flip = torch.rand(b, 1, generator=generator, device=device) < 0.5
    return dy, dx, flip


def crop_flip(
    x: torch.Tensor,
    pad_value: torch.Tensor,
    generator: torch.Generator,
    padding: int = 4,
    *,
    batch_size: int | None = None,
    offset: int = 0,
) -> torch.Tensor:
    """Random crop with ``padding`` pixels of zero padding (``pad_value``: what a zero pixel
    is in ``x``'s scale) plus random horizontal flip, for a whole batch of (N, C, H, W)
    images at once (the reference's augmentation). Any dtype; pure copies, so cropping raw
    uint8 images and normalising afterwards gives exactly the floats of normalising first.

    ``x`` may be rows ``offset:offset + N`` of a batch of ``batch_size`` (a distributed
    process's share): the draws of the whole batch are made and ``x`` gets its rows' draws."""
    b = x.shape[0]
    dy, dx, flip = draw_crop_flip(b if batch_size is None else batch_size, padding, generator, x.device)
    if batch_size is not None:
        dy, dx, flip = dy[offset : offset + b], dx[offset : offset + b], flip[offset : offset + b]
    if b == 0:
        return x
    _, _, h, w = x.shape
    if x.device.type == "cpu" and h * w >= 64 * 64:
        return _crop_flip_by_slices(x, pad_value, dy, dx, flip, padding)
    return _crop_flip_by_gather(x, pad_value, dy, dx, flip, padding)


def _crop_flip_by_gather(x, pad_value, dy, dx, flip, padding):
    """One indexing op for the batch: best on a GPU and for small images."""
    b, c, h, w = x.shape
    dev = x.device
    padded = pad_value.view(1, c, 1, 1).expand(b, c, h + 2 * padding, w + 2 * padding).clone()
    padded[:, :, padding : padding + h, padding : padding + w] = x
    cols = torch.arange(w, device=dev).view(1, w)
    cols = torch.where(flip, w - 1 - cols, cols) + dx  # flipping = reading columns backwards
    rows = torch.arange(h, device=dev).view(1, h) + dy
    batch = torch.arange(b, device=dev).view(b, 1, 1)
    out = padded.permute(0, 2, 3, 1)[batch, rows.view(b, h, 1), cols.view(b, 1, w)]  # B H W C
    return out.permute(0, 3, 1, 2)  # channels_last memory, NCHW shape


def _crop_flip_by_slices(x, pad_value, dy, dx, flip, padding):
    """One block copy per image, no padded copy and no index tensors: on the CPU, for 256 x
    256 images, 2x the gather's speed on floats and more on uint8 (the gather computes an
    int64 index per pixel)."""
    b, c, h, w = x.shape
    out = pad_value.view(1, c, 1, 1).expand(b, c, h, w).contiguous(memory_format=torch.channels_last)
    for i, (y0, x0, mirrored) in enumerate(zip(dy.flatten().tolist(), dx.flatten().tolist(), flip.flatten().tolist())):
        oy, ox = y0 - padding, x0 - padding  # output pixel (r, q) reads input (r + oy, q + ox)
        rows = slice(max(0, oy), min(h, h + oy))
        cols = slice(max(0, ox), min(w, w + ox))
        block = x[i, :, rows, cols]
        out_rows = slice(rows.start - oy, rows.stop - oy)
        if mirrored:  # the flipped crop: output column q reads padded column (w - 1 - q) + dx
            out[i, :, out_rows, w - (cols.stop - ox) : w - (cols.start - ox)] = block.flip(-1)
        else:
            out[i, :, out_rows, cols.start - ox : cols.stop - ox] = block
    return out


def _augment_and_normalise(
    raw: torch.Tensor,
    zero: torch.Tensor,
    augment: torch.Generator | None,
    padding: int,
    b: int,
    lo: int,
    mean_t: torch.Tensor,
    std_t: torch.Tensor,
    channels_last: bool,
) -> torch.Tensor:
    """A batch of uint8 (B, H, W, C) images -> the network's floats: cropped and flipped first
    when ``augment`` is given (a quarter of the bytes of floats; ``zero`` is a black pixel), then
    normalised; the same floats as normalising first and cropping with the normalised black
    (:func:`crop_flip`). ``b`` and ``lo``: the whole batch's size and these rows' offset in it."""
    if augment is not None:
        raw = crop_flip(raw.permute(0, 3, 1, 2), zero, augment, padding, batch_size=b, offset=lo).permute(0, 2, 3, 1)
    return _normalise_images(raw, mean_t, std_t, channels_last)


def _gathered(
    x: torch.Tensor, index: torch.Tensor | None, size: int, shard: tuple[int, int] | None
) -> Iterator[tuple[torch.Tensor, int, int]]:
    """The rows of ``x`` batch by batch (``index[0:size]``, ``index[size:2 * size]``, ... or
    every row in order), each with its whole batch's size and these rows' offset in it (a
    distributed process's ``shard`` of every batch; all of it otherwise)."""
    n = x.shape[0] if index is None else index.numel()
    for start in range(0, n, size):
        b = min(size, n - start)
        lo, hi = (0, b) if shard is None else block_bounds(b, *shard)
        rows = slice(start + lo, start + hi)
        yield (x[rows] if index is None else x[index[rows]]), b, lo


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

    def batches(
        self,
        index: torch.Tensor | None,
        size: int,
        *,
        augment: torch.Generator | None = None,
        shard: tuple[int, int] | None = None,
    ) -> Generator[torch.Tensor, None, None]:
        for xb, b, lo in _gathered(self.x, index, size, shard):
            if augment is not None and self.pad_value is not None:
                xb = crop_flip(xb, self.pad_value, augment, self.padding, batch_size=b, offset=lo)
            yield xb

    def skip_draws(self, sizes: Sequence[int], augment: torch.Generator | None) -> None:
        """Draw and drop the augmentation of batches of these sizes, as :meth:`batches` would."""
        if augment is not None and self.pad_value is not None:
            for b in sizes:
                draw_crop_flip(b, self.padding, augment, self.x.device)


class ResidentImages:
    """Images resident on the device as uint8 (N, H, W, C), a quarter of the bytes of
    :class:`ResidentSource`'s floats, each batch gathered, cropped and flipped as uint8 and
    normalised on the device (:func:`_augment_and_normalise`, as :class:`StreamedSource` does):
    the same floats as :class:`ResidentSource`, batch for batch. The GPU's choice, where memory
    is what limits the data that stays resident and a batch's few element-wise kernels cost
    little; the CPU normalises once (:func:`to_device_data`)."""

    def __init__(
        self, x: torch.Tensor, mean_t: torch.Tensor, std_t: torch.Tensor, *, channels_last: bool, padding: int = 4
    ):
        self.x = x
        self.mean_t, self.std_t = mean_t, std_t
        self.pad_value = -mean_t / std_t
        self.channels_last = channels_last
        self.padding = padding
        self._zero = torch.zeros(x.shape[3], dtype=torch.uint8, device=x.device)

    def __len__(self) -> int:
        return self.x.shape[0]

    @property
    def example_shape(self) -> tuple[int, ...]:
        _, height, width, channels = self.x.shape
        return channels, height, width

    def batches(
        self,
        index: torch.Tensor | None,
        size: int,
        *,
        augment: torch.Generator | None = None,
        shard: tuple[int, int] | None = None,
    ) -> Generator[torch.Tensor, None, None]:
        for raw, b, lo in _gathered(self.x, index, size, shard):
            yield _augment_and_normalise(
                raw, self._zero, augment, self.padding, b, lo, self.mean_t, self.std_t, self.channels_last
            )

    def skip_draws(self, sizes: Sequence[int], augment: torch.Generator | None) -> None:
        """Draw and drop the augmentation of batches of these sizes, as :meth:`batches` would."""
        if augment is not None:
            for b in sizes:
                draw_crop_flip(b, self.padding, augment, self.x.device)


def to_device_data(
    x: np.ndarray, *, mean, std, device: torch.device, channels_last: bool, padding: int = 4, keep_uint8: bool = False
) -> ResidentSource | ResidentImages:
    """Move a raw array to ``device``, normalised once (or, for images with ``keep_uint8``, as
    uint8 normalised batch by batch: :class:`ResidentImages`).

    Images (uint8, N x H x W x C) are scaled to 0..1 then standardised per channel;
    features (N x D) are standardised per feature on their raw scale.
    """
    mean_t, std_t = _normaliser(mean, std, device)
    if x.ndim == 4:
        t = torch.from_numpy(np.require(x, requirements=["C", "W"])).to(device)
        if keep_uint8:
            return ResidentImages(t, mean_t, std_t, channels_last=channels_last, padding=padding)
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
        out = torch.empty((len(rows), *self.images.shape[1:]), dtype=torch.uint8)
        if len(rows) == 0:  # a distributed process's share of a batch smaller than the world
            return out
        if torch.utils.data.get_worker_info() is not None:
            out.share_memory_()  # decoded straight into the memory the main process receives: no copy
        if hasattr(self.images, "read"):  # PackedImages
            self.images.read(rows, out=out)
        else:
            np.take(self.images, rows, axis=0, out=out.numpy())
        return out


def default_workers() -> int:
    """Reader processes when none are asked for: every core the process may use, at most 16
    (more than a GPU step needs, see docs/images.md)."""
    return cores_up_to(16)


class StreamedSource:
    """Images read from disk batch by batch, never held whole.

    Args:
        images: a :class:`memomentum.store.reading.PackedImages` (or any uint8
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

    def __init__(
        self,
        images,
        *,
        rows: Sequence[int] | None = None,
        mean,
        std,
        device: torch.device,
        channels_last: bool = True,
        workers: int = 0,
        padding: int = 4,
        prefetch: int = 2,
    ):
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
        self._zero = torch.zeros(channels, dtype=torch.uint8, device=device)  # a black pixel, before normalising
        self._shape = (channels, height, width)

    def __len__(self) -> int:
        return len(self.images) if self.rows is None else self.rows.size

    @property
    def example_shape(self) -> tuple[int, ...]:
        return self._shape

    def _plan(
        self, index: torch.Tensor | None, size: int, shard: tuple[int, int] | None = None
    ) -> tuple[list[np.ndarray], list[tuple[int, int]]]:
        """The store rows of every batch, in order (one host copy of the order per pass), and
        each batch's size and offset: with a ``shard``, only this process's rows are read."""
        if index is None:
            positions = np.arange(len(self), dtype=np.int64)
        else:
            positions = index.detach().to("cpu", torch.int64).numpy()
        rows = positions if self.rows is None else self.rows[positions]
        plan, where = [], []
        for start in range(0, rows.size, size):
            b = min(size, rows.size - start)
            lo, hi = (0, b) if shard is None else block_bounds(b, *shard)
            plan.append(rows[start + lo : start + hi])
            where.append((b, lo))
        return plan, where

    def skip_draws(self, sizes: Sequence[int], augment: torch.Generator | None) -> None:
        """Draw and drop the augmentation of batches of these sizes, as :meth:`batches` would."""
        if augment is not None:
            for b in sizes:
                draw_crop_flip(b, self.padding, augment, self.device)

    def batches(
        self,
        index: torch.Tensor | None,
        size: int,
        *,
        augment: torch.Generator | None = None,
        shard: tuple[int, int] | None = None,
    ) -> Generator[torch.Tensor, None, None]:
        plan, where = self._plan(index, size, shard)
        if not plan:
            return
        cuda = self.device.type == "cuda"
        # batch_size=None: the sampler hands each worker a whole batch of rows and the worker
        # returns them as one uint8 tensor (no per-image collation).
        loader = torch.utils.data.DataLoader(
            _BatchReader(self.images),
            batch_size=None,
            sampler=plan,
            num_workers=self.workers,
            pin_memory=cuda,
            prefetch_factor=self.prefetch if self.workers else None,
            persistent_workers=False,
        )
        batches = iter(loader)
        try:
            for raw, (b, lo) in zip(batches, where):
                raw = raw.to(self.device, non_blocking=cuda)
                yield _augment_and_normalise(
                    raw, self._zero, augment, self.padding, b, lo, self.mean_t, self.std_t, self.channels_last
                )
        finally:
            # the caller may stop early (a pause mid-epoch): stop the readers now, not at exit
            shutdown = getattr(batches, "_shutdown_workers", None)
            if shutdown is not None:
                shutdown()

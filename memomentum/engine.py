"""The training engine: whole-batch augmentation on the device, a short training loop, and
prediction passes in large chunks under ``inference_mode``, over either data source of
:mod:`memomentum.sources` (resident tensors or batches streamed from disk).

Nothing here knows about Me-Momentum; :mod:`memomentum.procedure` drives it.
"""
from __future__ import annotations

import ctypes
import os
import sys

import torch
from torch import nn
from torch.nn import functional as F

from .errors import InputError
from .sources import ResidentSource, StreamedSource

DataSource = ResidentSource | StreamedSource


def choose_device(name: str) -> torch.device:
    """Pick the device once per run: ``auto`` takes CUDA when present, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise InputError("device 'cuda' was requested but PyTorch sees no CUDA GPU; use --device cpu or auto")
    return torch.device(name)


# Examples per forward pass when predicting, by device type, unless the caller gives one.
# CPU: measured on a 2-core AMD EPYC (Zen 4) VM, torch 2.13, malloc tuned as below, best of
# interleaved passes. LeNet over 54,000 Fashion-MNIST images: flat from 128 to 1024
# (0.93-1.07 s whichever), then 2048: 1.03 s, 4096: 1.21 s. ResNet-18 over 1,024 CIFAR-shaped
# images: 64: 4.9 s, 128: 4.7 s, 256: 4.9-5.2 s, 512: 5.4-6.0 s, 1024: 6.6-7.0 s (large
# chunks fall out of the caches, and activations over glibc's 32 MiB mmap ceiling are
# page-faulted in afresh every time).
DEFAULT_PREDICT_CHUNK = {"cpu": 128, "cuda": 4096}

# glibc malloc settings (mallopt parameter numbers from <malloc.h>).
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_MMAP_THRESHOLD_MAX = 32 << 20  # glibc refuses more on 64-bit systems (HEAP_MAX_SIZE / 2)
_TRIM_THRESHOLD = 1 << 30
_malloc_tuned: bool | None = None


def keep_freed_memory() -> bool:
    """Make glibc keep freed memory for reuse instead of handing it back to the kernel.

    PyTorch's CPU tensors come straight from ``malloc``. By default glibc serves large
    blocks with fresh ``mmap`` pages and trims the top of the heap whenever more than a few
    megabytes are free, so every activation of every training step and prediction chunk is
    page-faulted in (and zeroed by the kernel) again. Measured on a 2-core VM (LeNet, 54,000
    Fashion-MNIST images, batch 128): 0.5-1.0 million minor page faults per training epoch
    and 0.5-0.8 million per prediction pass; raising the mmap threshold to glibc's maximum
    (32 MiB) and the trim threshold to 1 GiB removes them all. Best of 3 processes x 3
    epochs each: training epoch 3.98 s -> 2.66 s; prediction pass with chunk 1024
    1.87 s -> 0.97 s, with chunk 4096 1.23 s -> 1.22 s (those activations are above the
    ceiling) but typically 1.7-1.9 s -> 1.2-1.6 s. Results stay bit-identical (a test checks
    this on a small LeNet run).
    The price: the process keeps its peak heap (resident memory does not shrink after a large
    allocation is freed).

    Process-wide and done once; a no-op (returning False) off Linux, on other C libraries,
    or when the user already tunes malloc through ``MALLOC_*_`` or ``GLIBC_TUNABLES``.
    Returns whether the settings are in effect.
    """
    global _malloc_tuned
    if _malloc_tuned is None:
        _malloc_tuned = _tune_glibc_malloc()
    return _malloc_tuned


def _tune_glibc_malloc() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    if any(k in os.environ for k in ("GLIBC_TUNABLES", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_",
                                     "MALLOC_TOP_PAD_", "MALLOC_MMAP_MAX_", "LD_PRELOAD")):
        return False  # someone already chose the allocator's behaviour (or another allocator)
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # noqa: B018 -- glibc only (musl's mallopt does nothing)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    ok = mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_MAX) == 1
    return mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD) == 1 and ok


class Engine:
    """Trains and evaluates models on one device with one precision policy.

    Args:
        device: from :func:`choose_device`.
        augment: ``"crop_flip"`` or ``"none"``.
        batch_size: training batch size.
        predict_chunk: examples per forward pass in prediction and evaluation; ``None``
            takes :data:`DEFAULT_PREDICT_CHUNK` for the device.
        compile: wrap models in ``torch.compile`` with fixed shapes (full training batches
            only, prediction chunks padded to one size). Honoured on any device; the run
            (:func:`memomentum.api.run`) asks for it on CUDA only, since it measured slower
            on the CPU.
        compile_backend: ``torch.compile``'s backend (tests pass a plain one, which needs no
            C++ compiler).
        precision: ``"bf16"`` (autocast) or ``"fp32"``; ``None`` takes bf16 on CUDA and fp32
            elsewhere (bf16 measured slower on the CPU).
        fused_optimizer: fused SGD kernel; ``None`` takes it on CUDA only (on the CPU it is
            not bit-identical to the default SGD and saves little).

    The defaults are the GPU and CPU policies; every one of them can be switched on for any
    device, so that the GPU path also runs (on the CPU) in the tests. On the CPU the engine
    also calls :func:`keep_freed_memory` (process-wide).
    """

    def __init__(self, *, device: torch.device, augment: str, batch_size: int, predict_chunk: int | None = None,
                 compile: bool = False, compile_backend="inductor", precision: str | None = None,
                 fused_optimizer: bool | None = None):
        self.device = device
        self.augment = augment
        self.batch_size = batch_size
        self.predict_chunk = predict_chunk or DEFAULT_PREDICT_CHUNK.get(device.type, 4096)
        self.cuda = device.type == "cuda"
        self.compile = compile
        self.compile_backend = compile_backend
        precision = precision or ("bf16" if self.cuda else "fp32")
        if precision not in ("bf16", "fp32"):
            raise ValueError(f"precision must be 'bf16' or 'fp32', got {precision!r}")
        # bf16 autocast on GPU halves memory traffic; CPU stays fp32 (bf16 is slower there).
        self.amp_dtype = torch.bfloat16 if precision == "bf16" else None
        self.fused_optimizer = self.cuda if fused_optimizer is None else fused_optimizer
        # channels_last: on the GPU cuDNN's bf16 tensor-core convolutions want NHWC. On the CPU
        # it made no measurable difference (2-core VM, interleaved runs: LeNet 5.9 ms/step
        # either way, ResNet-18 1.9 s/step either way) and oneDNN runs NHWC without the
        # reorders it needs for NCHW, so it stays on everywhere.
        self.channels_last = True
        if self.cuda:
            # Shapes are fixed (one batch size, one prediction chunk, one trailing batch), so
            # letting cuDNN time its algorithms once pays off; fp32 matmuls outside autocast
            # may use TF32 (cuDNN convolutions already do by default). Not
            # torch.set_float32_matmul_precision("high"): that also switches oneDNN's CPU
            # matmuls to TF32 where the hardware has it.
            torch.backends.cudnn.benchmark = True
            torch.backends.cuda.matmul.allow_tf32 = True
        elif device.type == "cpu":
            keep_freed_memory()

    # -- models -----------------------------------------------------------------------
    def prepare(self, model: nn.Module) -> nn.Module:
        model = model.to(self.device)
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
        return model

    def forward_fn(self, model: nn.Module):
        return torch.compile(model, dynamic=False, backend=self.compile_backend) if self.compile else model

    def make_optimizer(self, model: nn.Module, *, lr: float, momentum: float, weight_decay: float):
        kwargs = dict(lr=lr, momentum=momentum, weight_decay=weight_decay)
        if self.fused_optimizer:
            kwargs["fused"] = True
        return torch.optim.SGD(model.parameters(), **kwargs)

    def autocast(self):
        """The precision policy as a context manager (a no-op for fp32)."""
        if self.amp_dtype is None:
            return torch.autocast("cpu", enabled=False)
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def _augmentation(self, generator: torch.Generator | None) -> torch.Generator | None:
        """The generator the data source draws crops and flips from, or None (no augmentation)."""
        return generator if self.augment == "crop_flip" else None

    # -- training ---------------------------------------------------------------------
    def epoch_order(self, index: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """The examples of one epoch in a fresh random order."""
        return index[torch.randperm(index.numel(), generator=generator, device=self.device)]

    def epoch_stop(self, n: int) -> int:
        """Where an epoch of ``n`` examples ends. With torch.compile the last partial batch is
        dropped so that every step has the same shape (unless it is the only batch)."""
        return n - n % self.batch_size if (self.compile and n >= self.batch_size) else n

    def train_steps(self, model: nn.Module, forward, optimizer, data: DataSource, labels: torch.Tensor,
                    order: torch.Tensor, *, start: int, loss_sum: torch.Tensor, generator: torch.Generator,
                    should_pause=None, class_weights: torch.Tensor | None = None) -> tuple[torch.Tensor, int]:
        """Train on ``order[start:]`` batch by batch (cross-entropy, weighted per class by
        ``class_weights`` when given, as ``nn.CrossEntropyLoss(weight=...)``).

        Returns the running sum of per-example losses (a device tensor: no host sync in the
        loop) and the position reached, which is the end of the epoch unless
        ``should_pause()`` became true, in which case the caller can checkpoint and later
        continue from that position.
        """
        model.train()
        stop = self.epoch_stop(order.numel())
        pos = start
        batches = data.batches(order[start:stop], self.batch_size, augment=self._augmentation(generator))
        try:
            for xb in batches:
                idx = order[pos:pos + self.batch_size]
                with self.autocast():
                    loss = F.cross_entropy(forward(xb), labels[idx], weight=class_weights)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                loss_sum += loss.detach().float() * idx.numel()
                pos += idx.numel()
                if should_pause is not None and should_pause():
                    break
        finally:
            batches.close()  # a streamed source stops its readers at once
        return loss_sum, pos

    # -- prediction -------------------------------------------------------------------
    def _probability_chunks(self, model: nn.Module, forward, data: DataSource, index: torch.Tensor | None,
                            generator: torch.Generator | None):
        """Yield ``(start, stop, softmax probabilities)`` for fixed-size chunks of the data,
        in index order. Callers hold ``inference_mode``."""
        model.eval()
        n = len(data) if index is None else index.numel()
        chunks = data.batches(index, self.predict_chunk, augment=self._augmentation(generator))
        for start, xb in zip(range(0, n, self.predict_chunk), chunks):
            stop = min(start + self.predict_chunk, n)
            if self.compile and stop - start < self.predict_chunk:  # keep one compiled shape
                pad = self.predict_chunk - (stop - start)
                xb = torch.cat([xb, xb[:1].expand(pad, *xb.shape[1:])])
            with self.autocast():
                logits = forward(xb)[: stop - start].float()
            yield start, stop, logits.softmax(dim=1)

    @torch.inference_mode()
    def predict(self, model: nn.Module, forward, data: DataSource, index: torch.Tensor | None = None,
                generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Predicted class and its softmax probability for every example (or ``index``).

        With a ``generator`` the training augmentation is applied first (the reference's
        quirk); otherwise the clean inputs are used.
        """
        n = len(data) if index is None else index.numel()
        preds = torch.empty(n, dtype=torch.long, device=self.device)
        conf = torch.empty(n, dtype=torch.float32, device=self.device)
        for start, stop, probs in self._probability_chunks(model, forward, data, index, generator):
            conf[start:stop], preds[start:stop] = probs.max(dim=1)
        return preds, conf

    @torch.inference_mode()
    def predict_proba(self, model: nn.Module, forward, data: DataSource) -> torch.Tensor:
        """Softmax probabilities (N, K) for every example, on clean inputs."""
        chunks = [probs for _, _, probs in self._probability_chunks(model, forward, data, None, None)]
        return torch.cat(chunks) if chunks else torch.zeros(0, 0, device=self.device)


def balanced_accuracy(pred: torch.Tensor, labels: torch.Tensor, num_classes: int) -> float:
    """Mean over classes (by ``labels``) of per-class accuracy, in percent, rounded to two
    decimals as the reference does. Classes absent from ``labels`` are left out."""
    total = torch.bincount(labels, minlength=num_classes).double()
    correct = torch.bincount(labels[pred == labels], minlength=num_classes).double()
    present = total > 0
    return round(float((100 * correct[present] / total[present]).mean()), 2)


def accuracy(pred: torch.Tensor, labels: torch.Tensor) -> float:
    """Plain accuracy in percent."""
    return float((pred == labels).double().mean() * 100)

"""The training engine: whole-batch augmentation on the device, a short training loop, and
prediction passes in large chunks under ``inference_mode``, over either data source of
:mod:`memomentum.training.sources` (resident tensors or batches streamed from disk).

In a distributed run (:mod:`memomentum.training.distributed`) the engine also splits the work: each
process trains on its share of every global batch (through DistributedDataParallel, see
:meth:`Engine.training_forward`) and predicts its block of chunks, and the predictions are
gathered back so that every process holds all of them.

Nothing here knows about Me-Momentum; :mod:`memomentum.method.procedure` drives it.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from ..base.errors import InputError
from .distributed import SINGLE, Distributed, block_bounds
from .graphs import GraphedStep, training_step
from .malloc import keep_freed_memory
from .sources import ResidentImages, ResidentSource, StreamedSource

DataSource = ResidentSource | ResidentImages | StreamedSource


def choose_device(name: str) -> torch.device:
    """Pick the device once per run: ``auto`` takes CUDA when present, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise InputError("device 'cuda' was requested but PyTorch sees no CUDA GPU; use --device cpu or auto")
    return torch.device(name)


# Examples per forward pass when predicting, by device type, unless the caller gives one.
# On the CPU small chunks stay in the caches (LeNet is flat from 128 to 1024, ResNet-18 is
# fastest at 128; larger chunks' activations also pass glibc's mmap ceiling, see .malloc);
# a GPU wants large ones.
DEFAULT_PREDICT_CHUNK = {"cpu": 128, "cuda": 4096}


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
            (:func:`memomentum.entrypoints.api.run`) asks for it on CUDA only, since it measured slower
            on the CPU.
        compile_backend: ``torch.compile``'s backend (tests pass a plain one, which needs no
            C++ compiler).
        cuda_graph: train full batches through one recorded step
            (:class:`~.graphs.GraphedStep`: a CUDA graph on a GPU, the plain step elsewhere);
            not with ``compile``, and only in a single process.
        precision: ``"bf16"`` (autocast) or ``"fp32"``; ``None`` takes bf16 on CUDA and fp32
            elsewhere (bf16 measured slower on the CPU).
        fused_optimizer: fused SGD kernel; ``None`` takes it on CUDA only (on the CPU it is
            not bit-identical to the default SGD and saves little).
        dist: where this process stands in a distributed run (:mod:`memomentum.training.distributed`);
            the default is a single process. ``batch_size`` stays the global batch: each of
            ``dist.world_size`` processes trains on its share of it.

    The defaults are the GPU and CPU policies; every one of them can be switched on for any
    device, so that the GPU path also runs (on the CPU) in the tests. On the CPU the engine
    also calls :func:`~.malloc.keep_freed_memory` (process-wide).
    """

    def __init__(
        self,
        *,
        device: torch.device,
        augment: str,
        batch_size: int,
        predict_chunk: int | None = None,
        compile: bool = False,
        compile_backend="inductor",
        precision: str | None = None,
        fused_optimizer: bool | None = None,
        cuda_graph: bool = False,
        dist: Distributed = SINGLE,
    ):
        if cuda_graph and (compile or dist.parallel):
            raise InputError(
                "--cuda-graph records the plain step of a single process; "
                "it does not combine with --compile or with several processes"
            )
        if batch_size % dist.world_size:
            raise InputError(
                f"the batch size {batch_size} does not split evenly over {dist.world_size} processes; "
                f"choose a --batch-size divisible by {dist.world_size}"
            )
        self.dist = dist
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
        self.graphed = GraphedStep(device, self.autocast) if cuda_graph else None
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
            # Module.to takes memory_format (its documentation says so) but torch's overloads leave it out
            model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        return model

    def forward_fn(self, model: nn.Module):
        return torch.compile(model, dynamic=False, backend=self.compile_backend) if self.compile else model

    def training_forward(self, model: nn.Module, forward):
        """The forward to train with: ``forward`` itself in a single process; in a distributed
        run ``model`` wrapped in DistributedDataParallel (compiled when asked). Prediction
        keeps using ``forward``: DDP's forward is a collective, and the prediction blocks of the
        processes differ in length."""
        if not self.dist.parallel:
            return forward
        wrapped = self.dist.wrap(model, self.device)
        return torch.compile(wrapped, dynamic=False, backend=self.compile_backend) if self.compile else wrapped

    def make_optimizer(self, model: nn.Module, *, lr: float, momentum: float, weight_decay: float):
        kwargs: dict[str, Any] = dict(lr=lr, momentum=momentum, weight_decay=weight_decay)
        if self.fused_optimizer:
            kwargs["fused"] = True
        return torch.optim.SGD(model.parameters(), **kwargs)

    def autocast(self, cache_enabled: bool = True):
        """The precision policy as a context manager (a no-op for fp32)."""
        if self.amp_dtype is None:
            return torch.autocast("cpu", enabled=False)
        return torch.autocast(self.device.type, dtype=self.amp_dtype, cache_enabled=cache_enabled)

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

    def train_steps(
        self,
        model: nn.Module,
        forward,
        optimizer,
        data: DataSource,
        labels: torch.Tensor,
        order: torch.Tensor,
        *,
        start: int,
        loss_sum: torch.Tensor,
        generator: torch.Generator,
        should_pause=None,
        class_weights: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, int]:
        """Train on ``order[start:]`` batch by batch (cross-entropy, weighted per class by
        ``class_weights`` when given, as ``nn.CrossEntropyLoss(weight=...)``).

        Returns the running sum of per-example losses (a device tensor: no host sync in the
        loop) and the position reached, which is the end of the epoch unless
        ``should_pause()`` became true, in which case the caller can checkpoint and later
        continue from that position.

        In a distributed run ``order`` is the global order (the same on every process),
        ``forward`` the DDP-wrapped model (:meth:`training_forward`), and each process trains
        on its contiguous share of every batch; the loss sum returned is this process's part.
        """
        model.train()
        stop = self.epoch_stop(order.numel())
        pos = start
        shard = (self.dist.rank, self.dist.world_size) if self.dist.parallel else None
        if self.graphed is not None:
            self.graphed.begin(forward, optimizer, class_weights, (self.batch_size, *data.example_shape))
        batches = data.batches(order[start:stop], self.batch_size, augment=self._augmentation(generator), shard=shard)
        try:
            for xb in batches:
                idx = order[pos : pos + self.batch_size]
                loss_sum += self._step(forward, optimizer, xb, labels, idx, class_weights)
                pos += idx.numel()
                if should_pause is not None and should_pause():
                    break
        finally:
            batches.close()  # a streamed source stops its readers at once
        self.dist.broadcast_buffers(model)  # rank 0's BatchNorm statistics everywhere before predicting
        return loss_sum, pos

    def _step(
        self,
        forward,
        optimizer,
        xb: torch.Tensor,
        labels: torch.Tensor,
        idx: torch.Tensor,
        class_weights: torch.Tensor | None,
    ) -> torch.Tensor:
        """One training step on the batch ``idx`` (its inputs ``xb``); returns the batch's
        summed loss, or in a distributed run this process's part of it."""
        if self.dist.parallel:
            loss, logged = self._share_of_loss(forward, xb, labels, idx, class_weights)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            return logged
        if self.graphed is not None and self.graphed.takes(xb):
            return self.graphed(xb, labels[idx])
        return training_step(forward, optimizer, xb, labels[idx], class_weights, self.autocast)

    def _share_of_loss(
        self, forward, xb: torch.Tensor, labels: torch.Tensor, idx: torch.Tensor, class_weights: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """This process's loss on its share of the global batch ``idx``, scaled so that DDP's
        average of the gradients over the processes is the gradient of the whole batch's mean
        (weighted) loss: the share's summed loss over the whole batch's normaliser (its size,
        or its summed class weights, as ``F.cross_entropy(weight=...)`` normalises), times the
        world size. Also returns the share's part of the epoch's loss sum. Every process
        computes the normaliser from the whole batch's labels, which it holds: no collective."""
        lo, hi = block_bounds(idx.numel(), self.dist.rank, self.dist.world_size)
        mine = idx[lo:hi]
        with self.autocast():
            summed = F.cross_entropy(forward(xb), labels[mine], weight=class_weights, reduction="sum")
        normaliser = idx.numel() if class_weights is None else class_weights[labels[idx]].sum()
        loss = summed * (self.dist.world_size / normaliser)
        return loss, summed.detach().float() / normaliser * idx.numel()

    # -- prediction -------------------------------------------------------------------
    def prediction_block(self, n: int) -> tuple[int, int, list[int]]:
        """This process's contiguous block ``(start, stop)`` of ``n`` examples to predict, and
        every process's block length. Whole prediction chunks are shared out (so that every
        chunk holds exactly the examples it holds in a single process, and the predictions
        are the same bits); the last process may get fewer, or none."""
        chunk, world = self.predict_chunk, self.dist.world_size
        chunks = -(-n // chunk)
        bounds = [block_bounds(chunks, r, world) for r in range(world)]
        sizes = [max(0, min(hi * chunk, n) - lo * chunk) for lo, hi in bounds]
        lo, _ = bounds[self.dist.rank]
        return lo * chunk, lo * chunk + sizes[self.dist.rank], sizes

    def _probability_chunks(
        self, model: nn.Module, forward, data: DataSource, index: torch.Tensor | None, generator: torch.Generator | None
    ):
        """Yield ``(start, stop, softmax probabilities)`` for fixed-size chunks of this
        process's block of the data (:meth:`prediction_block`: all of it in a single process),
        in index order, positions counted from the block's start. Callers hold
        ``inference_mode``. The augmentation of the other processes' chunks is drawn and
        dropped, so the generator ends where a single process's does."""
        model.eval()
        n = len(data) if index is None else index.numel()
        augment = self._augmentation(generator)
        if self.dist.parallel:
            first, last, _ = self.prediction_block(n)
            sizes = [min(self.predict_chunk, n - s) for s in range(0, n, self.predict_chunk)]
            before = first // self.predict_chunk
            data.skip_draws(sizes[:before], augment)
            index = torch.arange(first, last, device=self.device) if index is None else index[first:last]
            n = last - first
            after = sizes[before + -(-n // self.predict_chunk) :]
        chunks = data.batches(index, self.predict_chunk, augment=augment)
        for start, xb in zip(range(0, n, self.predict_chunk), chunks):
            stop = min(start + self.predict_chunk, n)
            if self.compile and stop - start < self.predict_chunk:  # keep one compiled shape
                pad = self.predict_chunk - (stop - start)
                xb = torch.cat([xb, xb[:1].expand(pad, *xb.shape[1:])])
            with self.autocast():
                logits = forward(xb)[: stop - start].float()
            yield start, stop, logits.softmax(dim=1)
        if self.dist.parallel:
            data.skip_draws(after, augment)

    def _predict_block(
        self, model: nn.Module, forward, data: DataSource, index: torch.Tensor | None, generator: torch.Generator | None
    ) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
        """Predicted class and confidence of this process's block, and every block's length."""
        n = len(data) if index is None else index.numel()
        first, last, sizes = self.prediction_block(n) if self.dist.parallel else (0, n, [n])
        preds = torch.empty(last - first, dtype=torch.long, device=self.device)
        conf = torch.empty(last - first, dtype=torch.float32, device=self.device)
        for start, stop, probs in self._probability_chunks(model, forward, data, index, generator):
            conf[start:stop], preds[start:stop] = probs.max(dim=1)
        return preds, conf, sizes

    @torch.inference_mode()
    def predict(
        self,
        model: nn.Module,
        forward,
        data: DataSource,
        index: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Predicted class and its softmax probability for every example (or ``index``).

        With a ``generator`` the training augmentation is applied first (the reference's
        quirk); otherwise the clean inputs are used. In a distributed run every process
        predicts its block and gets all the predictions, in index order.
        """
        preds, conf, sizes = self._predict_block(model, forward, data, index, generator)
        return self.dist.gather_blocks(preds, sizes), self.dist.gather_blocks(conf, sizes)

    @torch.inference_mode()
    def predict_counts(
        self,
        model: nn.Module,
        forward,
        data: DataSource,
        labels: torch.Tensor,
        num_classes: int,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """:func:`class_counts` of the predictions on ``data`` against ``labels`` (the same
        arguments as :meth:`predict`). In a distributed run each process counts its block
        and the counts are summed as integers: every process gets the same exact counts."""
        preds, _, sizes = self._predict_block(model, forward, data, None, generator)
        first = sum(sizes[: self.dist.rank]) if self.dist.parallel else 0
        mine = class_counts(preds, labels[first : first + preds.numel()], num_classes)
        return self.dist.sum_counts(mine)

    @torch.inference_mode()
    def predict_proba(
        self, model: nn.Module, forward, data: DataSource, num_classes: int | None = None
    ) -> torch.Tensor:
        """Softmax probabilities (N, K) for every example, on clean inputs (a distributed
        run needs ``num_classes``, for a process whose block is empty)."""
        chunks = [probs for _, _, probs in self._probability_chunks(model, forward, data, None, None)]
        k = chunks[0].shape[1] if chunks else (num_classes or 0)
        block = torch.cat(chunks) if chunks else torch.zeros(0, k, device=self.device)
        if not self.dist.parallel:
            return block
        return self.dist.gather_blocks(block, self.prediction_block(len(data))[2])


def class_counts(pred: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Integer counts (3, K): per class, the correct predictions, the examples (by
    ``labels``) and the predictions. Every score below is computed from these, so that a
    distributed run, which sums them over its processes, scores exactly as one process."""
    return torch.stack(
        [
            torch.bincount(labels[pred == labels], minlength=num_classes),
            torch.bincount(labels, minlength=num_classes),
            torch.bincount(pred, minlength=num_classes),
        ]
    )


def balanced_accuracy_of_counts(counts: torch.Tensor) -> float:
    """:func:`balanced_accuracy` from :func:`class_counts`."""
    correct, total = counts[0].double(), counts[1].double()
    present = total > 0
    return round(float((100 * correct[present] / total[present]).mean()), 2)


def balanced_accuracy(pred: torch.Tensor, labels: torch.Tensor, num_classes: int) -> float:
    """Mean over classes (by ``labels``) of per-class accuracy, in percent, rounded to two
    decimals as the reference does. Classes absent from ``labels`` are left out."""
    return balanced_accuracy_of_counts(class_counts(pred, labels, num_classes))


def accuracy_of_counts(counts: torch.Tensor) -> float:
    """:func:`accuracy` from :func:`class_counts`."""
    correct, total = int(counts[0].sum()), int(counts[1].sum())
    return correct / total * 100 if total else float("nan")


def accuracy(pred: torch.Tensor, labels: torch.Tensor) -> float:
    """Plain accuracy in percent."""
    correct, total = int((pred == labels).sum()), labels.numel()
    return correct / total * 100 if total else float("nan")

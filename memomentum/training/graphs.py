"""The training step recorded once as a CUDA graph and replayed for every full batch.

On a GPU a small network's step (ResNet-18 at batch 128: a few hundred kernels for forward,
class-weighted loss, backward and the SGD update) takes longer to launch from Python than to
compute. A CUDA graph records the step's kernels once and replays them with one launch: the
inputs are copied into fixed buffers, the graph runs, and the loss lands in a fixed tensor.

What a recording fixes, and so what makes :class:`GraphedStep` record again:

* the batch shape (every full batch has it; a shorter last batch of an epoch runs eagerly,
  with exactly the eager step's operations, so no example is dropped);
* the parameters' and the momentum buffers' memory (a new network, or an optimizer whose
  state was loaded from a checkpoint, has new tensors);
* the optimizer's hyperparameters: the learning rate is baked into the recorded SGD kernel,
  so a schedule's milestone records the step anew (two or three times a phase);
* whether the loss is weighted by class (the weights themselves are copied into a fixed
  buffer before every epoch).

Before the first recording the step runs eagerly a few times on a side stream (CUDA's rule
for recording: allocator and cuDNN warm-up); these are real training steps, the same ones the
eager path would take, so a graphed run trains on the same batches in the same order.

The CPU has no graphs. There the "recording" keeps the step function and a replay calls it
on the fixed buffers, so the tests run every line of this module but the capture itself,
and the numbers equal the eager step's bit for bit. On the GPU, graphs are checked against
the eager step by ``benchmarks/graph_step.py``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import torch
from torch.nn import functional as F


def training_step(
    forward, optimizer, xb: torch.Tensor, yb: torch.Tensor, class_weights: torch.Tensor | None, autocast
) -> torch.Tensor:
    """One SGD step on a batch (cross-entropy, weighted per class when ``class_weights`` is
    given); returns the batch's summed loss as a device tensor (no host sync)."""
    with autocast():
        loss = F.cross_entropy(forward(xb), yb, weight=class_weights)
    logged = loss.detach().float() * yb.numel()
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return logged


def _recording_key(forward, optimizer, class_weights: torch.Tensor | None, batch_shape: tuple[int, ...]):
    """Everything a recorded step depends on besides its input values (module docstring)."""
    params = [p for group in optimizer.param_groups for p in group["params"]]
    buffers = [optimizer.state.get(p, {}).get("momentum_buffer") for p in params]
    hyper = tuple(
        tuple(sorted((k, v) for k, v in group.items() if k != "params" and not isinstance(v, torch.Tensor)))
        for group in optimizer.param_groups
    )
    return (
        id(forward),
        id(optimizer),
        batch_shape,
        class_weights is None,
        hyper,
        tuple(p.data_ptr() for p in params),
        tuple(0 if b is None else b.data_ptr() for b in buffers),
    )


class GraphedStep:
    """Trains full batches through one recorded step (module docstring).

    Args:
        device: the training device; CUDA records graphs, any other device calls the step.
        autocast: the engine's precision policy, a function taking ``cache_enabled`` and
            returning a context manager (autocast's weight cache must be off when recording).
        warmup_steps: eager steps before each recording.
    """

    def __init__(self, device: torch.device, autocast, warmup_steps: int = 3):
        self.cuda = device.type == "cuda"
        self.autocast = lambda: autocast(cache_enabled=False)
        self.warmup_steps = warmup_steps
        self.recordings = 0  # how many times a step was recorded (read by tests and benchmarks)
        self._key = None
        self._forget()

    def _forget(self) -> None:
        self._replay: Callable[[], None] | None = None
        self._warm = 0
        # the recorded step's fixed buffers: batch, labels, class weights, summed loss
        self._x: torch.Tensor | None = None
        self._y: torch.Tensor | None = None
        self._w: torch.Tensor | None = None
        self._loss: torch.Tensor | None = None

    def begin(self, forward, optimizer, class_weights: torch.Tensor | None, batch_shape: tuple[int, ...]) -> None:
        """Called before an epoch's steps: keeps the recording if nothing it fixed has changed,
        and brings the class weights into their fixed buffer."""
        self._forward, self._optimizer, self._weights = forward, optimizer, class_weights
        self._batch_shape = tuple(batch_shape)
        key = _recording_key(forward, optimizer, class_weights, self._batch_shape)
        if key != self._key:
            self._forget()
            self._key = key
        elif self._w is not None and class_weights is not None:  # the same key: weights given as when recorded
            self._w.copy_(class_weights)

    def takes(self, xb: torch.Tensor) -> bool:
        """Whether this batch goes through the recorded step (full batches only)."""
        return tuple(xb.shape) == self._batch_shape

    def __call__(self, xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        """Train on one full batch; returns its summed loss (a fixed tensor that the next step
        overwrites: add it to a running sum at once, on the same stream)."""
        if self._replay is None and self._warm < self.warmup_steps:
            self._warm += 1
            with self._side_stream():
                return training_step(self._forward, self._optimizer, xb, yb, self._weights, self.autocast)
        if self._replay is None:
            self._record(xb, yb)
        replay, x, y, loss = self._replay, self._x, self._y, self._loss
        assert replay is not None and x is not None and y is not None and loss is not None  # recorded above
        x.copy_(xb)
        y.copy_(yb)
        replay()
        return loss

    def _record(self, xb: torch.Tensor, yb: torch.Tensor) -> None:
        x, y = torch.empty_like(xb), torch.empty_like(yb)
        w = None if self._weights is None else self._weights.clone()
        loss = torch.zeros((), device=xb.device)
        self._x, self._y, self._w, self._loss = x, y, w, loss

        def step() -> None:
            loss.copy_(training_step(self._forward, self._optimizer, x, y, w, self.autocast))

        # the momentum buffers exist now (the warm-up made them): they are part of what is fixed
        self._key = _recording_key(self._forward, self._optimizer, self._weights, self._batch_shape)
        self._optimizer.zero_grad(set_to_none=True)  # gradients allocated inside the graph's memory
        if self.cuda:
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                step()
            self._replay = graph.replay
        else:
            self._replay = step
        self.recordings += 1

    @contextlib.contextmanager
    def _side_stream(self):
        """Warm-up steps run on a side stream before recording, as CUDA graphs require."""
        if not self.cuda:
            yield
            return
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            yield
        torch.cuda.current_stream().wait_stream(side)

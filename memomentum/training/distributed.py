"""Several processes, one run: ``torchrun`` and DistributedDataParallel.

A run started by ``torchrun`` (which sets ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``) joins
a process group: NCCL when it trains on CUDA (each process on ``cuda:LOCAL_RANK``), gloo on
the CPU. A plain ``memomentum run`` sees none of those variables, starts no process group at
all and runs exactly as before (:data:`SINGLE`).

How the work is shared (docs/distributed.md has the whole story):

* **Training.** Every process draws the same epoch order and the same augmentation from the
  run's seeded generator; each trains on its contiguous share of every global batch
  (:func:`block_bounds`), and DistributedDataParallel averages the gradients. The engine
  scales each process's summed loss so that the average equals the single-process gradient
  of the whole batch.
* **Prediction.** The prediction chunks are split across the processes in contiguous blocks
  and gathered back in index order (:meth:`Distributed.gather_blocks`), so every process holds
  the same predictions; each chunk holds exactly the examples it holds in a single process,
  so the predictions are bit-identical to a single process's. Validation counts are summed
  as integers (:meth:`Distributed.sum_counts`).
* **Agreement.** A pause asked of any process pauses all of them at the same step
  (:meth:`Distributed.any`); rank 0 alone writes, then all meet at a barrier.

Every collective runs under the process group's timeout (:data:`DEFAULT_TIMEOUT`), so a
process that dies or hangs ends the others with :class:`PeerLost` instead of a hang.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist

from ..base.errors import InputError

# How long a collective waits for the other processes before it fails. Long enough for the
# slowest wait of a healthy run (rank 0 writing the final results while the others wait at
# a barrier), short enough that a stuck process ends the run within minutes.
DEFAULT_TIMEOUT = timedelta(minutes=10)
# Training steps between two pause agreements: each one is a tiny all-reduce and, on a GPU,
# a host sync, so it is not done at every step; a pause takes effect within this many steps
# (and always at the end of an epoch).
PAUSE_AGREEMENT_STEPS = 16


class PeerLost(Exception):
    """Another process of a distributed run died or stopped answering."""


@dataclass(frozen=True)
class Distributed:
    """Where this process stands in the run: its rank among ``world_size`` processes, its
    rank on this machine (``local_rank``, of ``local_world_size``), and the process group's
    backend (``"nccl"``, ``"gloo"``, or ``"none"`` for a plain single-process run).

    The collective helpers are no-ops (or identities) when ``world_size`` is 1, so callers
    need no special case and a single process never synchronises with anything.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1
    backend: str = "none"

    @property
    def is_main(self) -> bool:
        """Whether this process writes outputs and shows progress (rank 0)."""
        return self.rank == 0

    @property
    def parallel(self) -> bool:
        """Whether the work is split across more than one process."""
        return self.world_size > 1

    def describe(self) -> dict:
        """What ``summary.json`` records."""
        return {"world_size": self.world_size, "backend": self.backend}

    # -- collectives ----------------------------------------------------------------------
    def barrier(self) -> None:
        if self.parallel:
            _collective(dist.barrier)

    def any(self, flag: bool, device: torch.device) -> bool:
        """Whether ``flag`` is true on any process (the same answer on all of them)."""
        if not self.parallel:
            return bool(flag)
        t = torch.tensor([int(bool(flag))], dtype=torch.int32, device=device)
        _collective(dist.all_reduce, t, op=dist.ReduceOp.MAX)
        return bool(t.item())

    def sum_counts(self, counts: torch.Tensor) -> torch.Tensor:
        """Integer counts summed over all processes (exact, the same on every process)."""
        if self.parallel:
            counts = counts.clone()
            _collective(dist.all_reduce, counts, op=dist.ReduceOp.SUM)
        return counts

    def sum_floats(self, value: torch.Tensor) -> float:
        """A float summed over the processes in rank order on every process, so that all of
        them get the same bits (an all-reduce need not add in the same order everywhere)."""
        if not self.parallel:
            return float(value)
        mine = value.detach().reshape(1).double()
        parts = [torch.empty_like(mine) for _ in range(self.world_size)]
        _collective(dist.all_gather, parts, mine)
        total = 0.0
        for p in parts:
            total += float(p)
        return total

    def gather_blocks(self, block: torch.Tensor, sizes: list[int]) -> torch.Tensor:
        """Concatenate every process's ``block`` in rank order. ``sizes[r]`` is the length of
        rank r's block (blocks may differ in length: they are padded for the transfer and the
        padding is cut off again, so none of it reaches the result)."""
        if not self.parallel:
            return block
        longest = max(sizes)
        padded = block.new_zeros((longest, *block.shape[1:]))
        padded[: block.shape[0]] = block
        parts = [torch.empty_like(padded) for _ in range(self.world_size)]
        _collective(dist.all_gather, parts, padded)
        return torch.cat([p[:n] for p, n in zip(parts, sizes)])

    def broadcast_buffers(self, model: torch.nn.Module) -> None:
        """Give every process rank 0's buffers (BatchNorm running statistics): each process
        updates them from its own share of the last batch, and the next prediction pass must
        see the same network everywhere."""
        if not self.parallel:
            return
        for buffer in model.buffers():
            _collective(dist.broadcast, buffer.data, src=0)

    def wrap(self, model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
        """The model to train with: DistributedDataParallel over ``model`` when the work is
        split, else ``model`` itself. The wrapper shares ``model``'s parameters, so the
        caller keeps saving and loading the plain model."""
        if not self.parallel:
            return model
        from torch.nn.parallel import DistributedDataParallel

        ids = [device.index] if device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids)


SINGLE = Distributed()


def _collective(fn, *args, **kwargs):
    """Run a collective; a dead or silent peer becomes :class:`PeerLost`."""
    try:
        return fn(*args, **kwargs)
    except (dist.DistError, RuntimeError) as e:
        raise PeerLost(_peer_message(e)) from e


def _peer_message(e: BaseException) -> str:
    """The gist of a collective's error: its first sentence, without the C++ source location."""
    text = re.sub(r"\[[^\]]*\.(?:cc|cpp|h|hpp):\d+\]\s*", "", " ".join(str(e).split()))
    text = text.split(". This is typically")[0].rstrip(".")
    return text[:160] + ("..." if len(text) > 160 else "")


def is_peer_failure(e: BaseException) -> bool:
    """Whether ``e`` (raised inside a distributed run) means another process is gone: a
    :class:`PeerLost`, or an error of PyTorch's distributed layer, such as one raised by
    DistributedDataParallel's gradient all-reduce inside ``backward``."""
    if isinstance(e, (PeerLost, dist.DistError)):
        return True
    # gloo reports a lost peer as a plain RuntimeError that names its own source file
    text = str(e).lower()
    return isinstance(e, RuntimeError) and any(
        w in text for w in ("gloo", "nccl", "connection closed", "connection reset")
    )


def block_bounds(n: int, rank: int, world_size: int) -> tuple[int, int]:
    """Rank ``rank``'s contiguous block of ``n`` items split over ``world_size`` processes:
    blocks in rank order, the first ``n % world_size`` of them one item longer."""
    base, extra = divmod(n, world_size)
    start = rank * base + min(rank, extra)
    return start, start + base + (1 if rank < extra else 0)


def environment(environ=None) -> tuple[int, int, int, int] | None:
    """``(rank, world_size, local_rank, local_world_size)`` as ``torchrun`` sets them, or None
    when this process was not started by ``torchrun`` (a plain run). A launcher that sets only
    ``RANK`` and ``WORLD_SIZE`` is taken as one machine."""
    environ = os.environ if environ is None else environ
    if "WORLD_SIZE" not in environ or "RANK" not in environ:
        return None
    texts = {
        "RANK": environ["RANK"],
        "WORLD_SIZE": environ["WORLD_SIZE"],
        "LOCAL_RANK": environ.get("LOCAL_RANK", environ["RANK"]),
        "LOCAL_WORLD_SIZE": environ.get("LOCAL_WORLD_SIZE", environ["WORLD_SIZE"]),
    }
    values = {}
    for name, text in texts.items():
        try:
            values[name] = int(text)
        except ValueError:
            raise InputError(
                f"the environment variable {name}={text!r} (set by torchrun) is not a whole number"
            ) from None
    rank, world, local, local_world = values.values()
    if world < 1 or not 0 <= rank < world or local < 0:
        raise InputError(f"torchrun's environment is inconsistent: RANK={rank}, WORLD_SIZE={world}, LOCAL_RANK={local}")
    return rank, world, local, max(local_world, 1)


class _WithoutOwnMessages:
    """stderr of a process other than rank 0: memomentum's own messages (notes, warnings,
    errors, argparse's usage) are dropped, anything else (a traceback) passes."""

    def __init__(self, stream):
        self.stream, self._dropping = stream, False

    def write(self, text: str) -> int:
        if text.startswith(("memomentum", "usage:")) or (self._dropping and text == "\n"):
            self._dropping = not text.endswith("\n")  # print() writes the newline on its own
            return len(text)
        self._dropping = False
        return self.stream.write(text)

    def __getattr__(self, name):
        return getattr(self.stream, name)


@contextlib.contextmanager
def messages_from_rank_zero(environ=None) -> Iterator[None]:
    """Every process of a run reads the same data and meets the same mistakes: rank 0 alone
    says so (one line, once), the others keep quiet about it."""
    import sys

    if is_main_process(environ):
        yield
        return
    real = sys.stderr
    sys.stderr = _WithoutOwnMessages(real)
    try:
        yield
    finally:
        sys.stderr = real


def is_main_process(environ=None) -> bool:
    """Whether this process is rank 0, or not distributed at all: the one that prints."""
    environ = os.environ if environ is None else environ
    return environ.get("RANK", "0").strip() in ("0", "")


def process_device(device: torch.device, local_rank: int) -> torch.device:
    """The device of this process: ``cuda:LOCAL_RANK`` for a CUDA run, else ``device``."""
    if device.type != "cuda":
        return device
    count = torch.cuda.device_count()
    if local_rank >= count:
        raise InputError(
            f"this process has LOCAL_RANK {local_rank} but the machine has {count} CUDA GPU"
            f"{'s' if count != 1 else ''}; start at most {count} processes per machine "
            f"(torchrun --nproc-per-node {count})"
        )
    return torch.device("cuda", local_rank)


@contextlib.contextmanager
def process_group(
    device: torch.device, *, timeout: timedelta = DEFAULT_TIMEOUT, environ=None
) -> Iterator[tuple[Distributed, torch.device]]:
    """Join the run's process group for the duration of the block, when ``torchrun`` started
    this process; yields ``(Distributed, this process's device)``.

    NCCL on CUDA (``cuda:LOCAL_RANK``), gloo otherwise. A plain process yields
    :data:`SINGLE` and ``device`` unchanged, with no process group. A process group that the
    caller already started (a Python program that runs under torchrun itself) is used as it
    is and left running.
    """
    env = environment(environ)
    if env is None and not (dist.is_available() and dist.is_initialized()):
        yield SINGLE, device
        return
    if not dist.is_available():
        raise InputError("this PyTorch build has no torch.distributed; run without torchrun")
    if dist.is_initialized():  # the caller's own group
        rank, world = dist.get_rank(), dist.get_world_size()
        local, local_world = (env[2], env[3]) if env is not None else (rank, world)
        device = process_device(device, local)
        yield Distributed(rank, world, local, local_world, str(dist.get_backend())), device
        return
    assert env is not None  # without torchrun's environment one of the two cases above has returned
    rank, world, local, local_world = env
    device = process_device(device, local)
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    kwargs: dict[str, Any] = {"device_id": device} if backend == "nccl" else {}
    try:
        dist.init_process_group(backend=backend, timeout=timeout, rank=rank, world_size=world, **kwargs)
    except (dist.DistError, RuntimeError, ValueError) as e:
        raise PeerLost(f"could not join the other processes ({_peer_message(e)})") from e
    try:
        yield Distributed(rank, world, local, local_world, backend), device
    finally:
        with contextlib.suppress(Exception):  # a group whose peers are gone may refuse to close
            dist.destroy_process_group()


def share_cores(policy, where: Distributed):
    """A :class:`memomentum.training.threads.ThreadPolicy` for one of several processes on one
    machine: when the user did not choose the thread count, the cores are shared out
    (``threads // local_world_size``, at least one) instead of every process taking all of
    them. The count stays fixed by the command, never by the load."""
    if where.local_world_size <= 1 or policy.reason == "--threads":
        return policy
    threads = max(1, policy.threads // where.local_world_size)
    return type(policy)(
        threads, f"{policy.reason}, shared by {where.local_world_size} processes on this machine", policy.wait
    )


def lost_message(e: BaseException) -> str:
    """One line for a distributed run that lost one of its processes."""
    rank = os.environ.get("RANK", "?")
    detail = str(e) if isinstance(e, PeerLost) else _peer_message(e)
    return f"process {rank} lost contact with the other processes of the run (one of them stopped or died: {detail})"


def end_process(code: int) -> None:
    """End a process of a multi-process run without the interpreter's teardown.

    Once DistributedDataParallel has used the process group, PyTorch (2.13) keeps gloo's
    threads (its socket loop and two workers) running after ``destroy_process_group``, until
    the process exits. The peers exit at about the same time, so those threads would still be
    handling the peers' closing connections while the interpreter and the C++ runtime tear
    themselves down around them: under load, that aborted one process (SIGABRT) after a run
    that had finished and been written. All work is done and every output is on disk here,
    so the process ends at once, with its exit status, after flushing its output. A plain
    process (no torchrun, or a world of one) returns and ends as usual. Raises InputError
    when torchrun's variables are malformed.
    """
    env = environment()
    if env is None or env[1] <= 1:
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)

"""The CPU thread policy: how many threads a run uses, and how idle threads wait.

Two separate decisions, because only one of them changes results:

* **The thread count** decides how PyTorch splits a reduction (a convolution's weight
  gradient, a matrix product), so it changes the last bits of the numbers. It is therefore
  chosen from things that do not change while a run goes on or between two runs on the same
  machine: ``--threads`` when given, else one thread for the small MLP (its operations are
  too small to split) and every core the process may use for everything else. It is never
  chosen from the machine's load, so a run's outputs do not depend on what else was running.
* **How idle threads wait** changes only the speed, so it may follow what the machine is
  doing. PyTorch's Linux wheels use GNU OpenMP (libgomp), whose threads spin for about
  300,000 iterations (a few milliseconds) at every barrier before they sleep. On a quiet
  machine that saves a wake-up; on a shared one, a spinning thread burns the time slice its
  partner needs to reach the barrier, and LeNet's operations (a few hundred microseconds
  each) hit a barrier thousands of times per second: an epoch became 24 times slower beside
  one busy loop and 40 times slower beside two other PyTorch processes. A short spin
  (:data:`BUSY_SPIN_COUNT`, about 10 microseconds) gives the core up almost at once, but on
  a quiet machine it costs a wake-up per region (+5 to +35 % per epoch, depending on the
  CPU). So the spin is chosen when memomentum is imported, from how many other tasks want a
  CPU at that moment (:func:`others_running`): none, :data:`QUIET_SPIN_COUNT` (about 100
  microseconds: within 5 % of libgomp's default on a quiet machine, and near the short
  spin's speed beside other PyTorch processes); some, :data:`BUSY_SPIN_COUNT`. A run that
  starts quiet keeps its spin when others start later. Measured by
  ``benchmarks/contention.py`` (figures in the README, "Shared machines").

libgomp reads its settings once, when it is loaded, that is when ``torch`` is first imported.
So :func:`set_wait_policy` runs when :mod:`memomentum` is imported: if ``torch`` is not
loaded yet and the user has set neither ``OMP_WAIT_POLICY`` nor ``GOMP_SPINCOUNT``, it sets
``GOMP_SPINCOUNT`` (inherited by child processes too). The command line always imports
:mod:`memomentum` first. A Python user who imports ``torch`` before :mod:`memomentum` keeps
libgomp's default; ``summary.json`` says which policy was in force. To choose yourself, set
either variable before starting Python (``GOMP_SPINCOUNT=300000`` is libgomp's default,
``OMP_WAIT_POLICY=PASSIVE`` sleeps at once); memomentum then leaves both alone.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass

# libgomp spin iterations before an idle thread sleeps (libgomp counts roughly 100 per
# microsecond), chosen by benchmarks/contention.py: on a quiet machine, and when other tasks
# already want the CPUs.
QUIET_SPIN_COUNT = 10_000
BUSY_SPIN_COUNT = 1_000
WAIT_VARIABLES = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")


@dataclass(frozen=True)
class WaitPolicy:
    """How idle OpenMP threads wait in this process, and who decided it."""

    setting: str  # e.g. "GOMP_SPINCOUNT=1000", or "libgomp default"
    decided_by: str  # "memomentum", "environment", or why memomentum could not set it

    def describe(self) -> str:
        return f"{self.setting} ({self.decided_by})"


def others_running(loadavg: str = "/proc/loadavg", samples: int = 5, interval_s: float = 0.001) -> float | None:
    """How many other tasks want a CPU now: the median, over a few readings a millisecond
    apart, of the kernel's count of runnable tasks (``/proc/loadavg``'s fourth field), less
    this process. Not the load average: that lags a minute behind, and would still call a
    machine busy right after the previous run of a queue ended. None where it cannot be read."""
    import statistics
    import time

    counts = []
    for i in range(samples):
        try:
            with open(loadavg) as f:
                counts.append(int(f.read().split()[3].split("/")[0]))
        except (OSError, ValueError, IndexError):
            return None
        if i + 1 < samples:
            time.sleep(interval_s)
    return max(0.0, statistics.median(counts) - 1)


def spin_count_for(others: float | None) -> int:
    """:data:`QUIET_SPIN_COUNT` when no other task wants a CPU (or nobody can tell), else
    :data:`BUSY_SPIN_COUNT`."""
    return BUSY_SPIN_COUNT if others is not None and others >= 1 else QUIET_SPIN_COUNT


_MEASURE = object()  # set_wait_policy's default: measure the machine now


def set_wait_policy(environ=None, modules=None, others=_MEASURE) -> WaitPolicy:
    """Set ``GOMP_SPINCOUNT`` by :func:`spin_count_for` unless the user chose a wait policy or
    ``torch`` (and with it the OpenMP runtime) is already loaded. Returns what is in force.

    ``environ`` and ``modules`` default to ``os.environ`` and ``sys.modules``; ``others``
    (the count of other runnable tasks) to :func:`others_running` (tests pass their own).
    """
    environ = os.environ if environ is None else environ
    modules = sys.modules if modules is None else modules
    chosen = [f"{k}={environ[k]}" for k in WAIT_VARIABLES if k in environ]
    if chosen:
        return WaitPolicy(" ".join(chosen), "environment")
    if "torch" in modules:
        return WaitPolicy("libgomp default", "torch was imported before memomentum")
    others = others_running() if others is _MEASURE else others
    spins = spin_count_for(others)
    environ["GOMP_SPINCOUNT"] = str(spins)
    where = "busy" if spins == BUSY_SPIN_COUNT else "quiet"
    return WaitPolicy(f"GOMP_SPINCOUNT={spins}", f"memomentum: {where} machine at start")


# What set_wait_policy found and did when this module was first imported, which
# memomentum/__init__.py does before anything else (and so before torch, where it can).
WAIT_POLICY_AT_IMPORT = set_wait_policy()


@dataclass(frozen=True)
class ThreadPolicy:
    """The thread count of a run and why; recorded in ``summary.json``."""

    threads: int
    reason: str
    wait: str

    def to_dict(self) -> dict:
        return {"threads": self.threads, "threads_reason": self.reason, "openmp_wait": self.wait}

    def apply(self) -> "ThreadPolicy":
        """Use this thread count for PyTorch's intra-op parallelism in this process."""
        import torch

        torch.set_num_threads(self.threads)
        return self


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity, which containers and taskset narrow)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def choose_threads(requested: int | None, *, model: str | None = None) -> ThreadPolicy:
    """The thread count for a run: ``requested`` when given, else one for the MLP and every
    available core for the other models. Never depends on the machine's load (see the module
    docstring), so the same command gives the same numbers on a busy machine."""
    if requested is not None:
        threads, reason = requested, "--threads"
    elif model == "mlp":
        # the MLP's steps are microseconds long: too short to split between threads, and
        # on a busy machine a second thread mostly waits for a core
        threads, reason = 1, "one thread for the MLP"
    else:
        threads, reason = available_cores(), "all available cores"
    return ThreadPolicy(threads, reason, WAIT_POLICY_AT_IMPORT.describe())

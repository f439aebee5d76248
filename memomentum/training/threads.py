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
  ``benchmarks/contention.py`` (figures in docs/results.md, "Shared machines").

* **Where the threads run** changes only the speed too. While a run trains on the CPU with one
  thread per core it may use, each OpenMP thread is bound to a core of its own
  (:func:`bind_openmp_threads`), and unbound when training ends. The kernel otherwise moves the
  threads around and, between two barriers, often stacks both of a 2-core run's threads on
  one core while another task has the other: beside one busy loop a LeNet epoch took 3.8 times
  its quiet time unbound and 2.4 times bound (quiet: no difference). The thread count and the
  split of the work are unchanged, so are the numbers. Bound, the long spin is the better one
  beside competitors too (each thread waits on a core of its own), so a command-line run that
  will bind its threads takes :data:`QUIET_SPIN_COUNT` whatever the load
  (:func:`prefer_bound_spin`).

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

import contextlib
import os
import sys
from dataclasses import dataclass

from ..base.cores import available_cores, core_ids  # available_cores: callers and tests reach it here

# libgomp spin iterations before an idle thread sleeps (libgomp counts roughly 100 per
# microsecond), chosen by benchmarks/contention.py: on a quiet machine, and when other tasks
# already want the CPUs.
QUIET_SPIN_COUNT = 10_000
BUSY_SPIN_COUNT = 1_000
WAIT_VARIABLES = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")
# Variables by which a user places OpenMP threads; memomentum binds none when one is set.
PLACEMENT_VARIABLES = ("OMP_PROC_BIND", "OMP_PLACES", "GOMP_CPU_AFFINITY", "KMP_AFFINITY")


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
_wait_policy = WAIT_POLICY_AT_IMPORT  # what is in force: prefer_bound_spin may change it before torch loads


def current_wait_policy() -> WaitPolicy:
    """The wait policy in force in this process (recorded in ``summary.json``)."""
    return _wait_policy


def prefer_bound_spin(requested_threads: int | None, device: str | None, environ=None, modules=None) -> WaitPolicy:
    """Before ``torch`` loads, for a command-line run: if its threads will be bound one per
    core (a CPU run with every available core, at least two), take :data:`QUIET_SPIN_COUNT`
    whatever the load; bound, it measured faster than the short spin beside busy loops and
    other PyTorch processes too. Anything the user set, or a policy that is too late to
    change, stays as it is. Returns the policy in force."""
    global _wait_policy
    environ = os.environ if environ is None else environ
    modules = sys.modules if modules is None else modules
    cores = available_cores()
    binds = (
        device != "cuda"
        and cores >= 2
        and requested_threads in (None, cores)
        and not any(k in environ for k in PLACEMENT_VARIABLES)
    )
    if binds and _wait_policy.decided_by.startswith("memomentum") and "torch" not in modules:
        environ["GOMP_SPINCOUNT"] = str(QUIET_SPIN_COUNT)
        _wait_policy = WaitPolicy(f"GOMP_SPINCOUNT={QUIET_SPIN_COUNT}", "memomentum: for threads bound one per core")
    return _wait_policy


@dataclass(frozen=True)
class ThreadPolicy:
    """The thread count of a run and why; recorded in ``summary.json``."""

    threads: int
    reason: str
    wait: str
    binding: str = "not bound: not trained yet"  # what bind_openmp_threads did

    def to_dict(self) -> dict:
        return {
            "threads": self.threads,
            "threads_reason": self.reason,
            "openmp_wait": self.wait,
            "openmp_binding": self.binding,
        }

    def apply(self) -> ThreadPolicy:
        """Use this thread count for PyTorch's intra-op parallelism in this process."""
        import torch

        torch.set_num_threads(self.threads)
        return self


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
    return ThreadPolicy(threads, reason, current_wait_policy().describe())


# -- one core per thread while training --------------------------------------------------------


def binding_plan(
    threads: int, cores: list[int], *, environ=None, libgomp: str | None, streamed: bool = False
) -> tuple[int, ...] | str:
    """The core of each OpenMP thread (thread ``i`` on ``cores[i]``), or why none is bound:
    only a run with one thread for each core it may use, on libgomp, when the user placed no
    threads, and with no reader processes (they would inherit the main thread's core)."""
    environ = os.environ if environ is None else environ
    placed = [k for k in PLACEMENT_VARIABLES if k in environ]
    if placed:
        return f"placed by the environment ({', '.join(placed)})"
    if threads < 2 or threads != len(cores):
        return f"{threads} thread(s) on {len(cores)} core(s): binding is for one thread per core"
    if libgomp is None:
        return "PyTorch's OpenMP runtime is not libgomp"
    if streamed:
        return "streamed data: its reader processes need every core"
    return tuple(sorted(cores)[:threads])


def _loaded_libgomp() -> str | None:
    """The path of the libgomp this process loaded (PyTorch's Linux wheels bring their own)."""
    try:
        with open("/proc/self/maps") as maps:
            return next((line.split()[-1] for line in maps if "/libgomp" in line), None)
    except OSError:
        return None


def in_every_openmp_thread(fn, threads: int, libgomp: str) -> dict:
    """Call ``fn(thread_number)`` in each thread of an OpenMP parallel region of ``threads``
    threads, opened from this thread through ``libgomp`` (the pool PyTorch's parallel regions
    use); returns ``{thread_number: result}``."""
    import ctypes

    gomp = ctypes.CDLL(libgomp)
    gomp.omp_get_thread_num.restype = ctypes.c_int
    body_type = ctypes.CFUNCTYPE(None, ctypes.c_void_p)
    results, errors = {}, []

    def body(_):
        try:
            number = gomp.omp_get_thread_num()
            results[number] = fn(number)
        except BaseException as e:  # noqa: BLE001 -- an exception cannot cross the C frames: carried out
            errors.append(e)

    callback = body_type(body)
    gomp.GOMP_parallel.argtypes = [body_type, ctypes.c_void_p, ctypes.c_uint, ctypes.c_uint]
    gomp.GOMP_parallel(callback, None, threads, 0)
    if errors:
        raise errors[0]
    return results


@contextlib.contextmanager
def bind_openmp_threads(threads: int, *, streamed: bool = False):
    """While the block runs, each of PyTorch's ``threads`` OpenMP threads runs on a core of
    its own (module docstring); afterwards each has its former cores back. Yields what was
    done, for ``summary.json``: ``"cores 0,1, one per thread"`` or why none was bound."""
    cores = core_ids() if hasattr(os, "sched_setaffinity") else []
    libgomp = _loaded_libgomp()
    plan = binding_plan(threads, cores, libgomp=libgomp, streamed=streamed)
    if isinstance(plan, str) or libgomp is None:  # without libgomp the plan is the reason
        yield f"not bound: {plan}"
        return
    before = in_every_openmp_thread(lambda i: os.sched_getaffinity(0), threads, libgomp)
    in_every_openmp_thread(lambda i: os.sched_setaffinity(0, {plan[i]}), threads, libgomp)
    try:
        yield f"cores {','.join(map(str, plan))}, one per thread"
    finally:
        in_every_openmp_thread(lambda i: os.sched_setaffinity(0, before.get(i, cores)), threads, libgomp)

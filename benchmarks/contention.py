"""Time a training epoch and a prediction pass on a machine that other processes share, under
several CPU thread policies, in one run.

Policies (each in a process of its own, because the OpenMP runtime reads its wait policy once,
when torch is loaded):

* ``old``: what memomentum did before it had a thread policy: every core, and libgomp's
  default waiting (``GOMP_SPINCOUNT=300000``, the value libgomp uses when neither variable is
  set);
* ``new``: memomentum's default for a run with every core (:mod:`memomentum.training.threads`):
  the same thread count, one core per OpenMP thread while it trains
  (:func:`~memomentum.training.threads.bind_openmp_threads`) and, bound, the long spin whatever
  the load (:func:`~memomentum.training.threads.prefer_bound_spin`);
* ``unbound``: memomentum's default before it bound threads: threads not bound, and the wait
  policy that importing memomentum sets under each condition (the quiet spin in ``quiet``, the
  busy spin beside competitors, each being a task that wants a CPU when a run starts);
* ``threads1``: ``--threads 1`` (with the new wait policy);
* ``passive``: every core and ``OMP_WAIT_POLICY=PASSIVE`` (a candidate, for comparison);
* ``spinN``: every core and ``GOMP_SPINCOUNT=N`` (candidates for the new default);
* ``bindN``: ``spinN`` with one core per OpenMP thread, as ``new`` binds them.

Competitors, started and stopped by this script (each also ends by itself after
``--competitor-limit`` seconds, or when this script is gone):

* ``busy``: a pure-Python busy loop;
* ``torch``: another PyTorch training process (LeNet steps on a random batch of 128, with
  PyTorch's defaults: every core, libgomp's default waiting), which is what a shared server
  mostly runs.

Conditions are ``quiet`` and ``KIND:COUNT`` (default: quiet, busy:1, busy:2, torch:1,
torch:2, quiet again). Under each condition every policy runs ``--repeats`` rounds of (a
training epoch, a prediction pass), the policies taking turns, so that a machine whose speed
drifts favours none. Reported per policy and condition: the median and the best time, and the
median as a multiple of the same policy's quiet median (``slowdown``) and of the old
default's quiet median (``vs_old_quiet``).

Cases: ``lenet`` (LeNet on the first 54,000 Fashion-MNIST training images, as in a run) and
``resnet18`` (ResNet-18 with crop-and-flip on ``--n`` random CIFAR-shaped images, times scaled
to 45,000, as ``epoch_speed.py`` does).

    python benchmarks/contention.py --case lenet
    python benchmarks/contention.py --case resnet18 --n 256 --repeats 2

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

# memomentum first, as the command line does: importing it sets the wait policy before torch loads.
import memomentum  # noqa: F401
from memomentum.data.registry import FASHION_MNIST
from memomentum.training import threads

# isort: split

import torch
from epoch_speed import (
    CIFAR_MEAN,
    CIFAR_STD,
    FASHION_MEAN,
    FASHION_STD,
    LIBGOMP_DEFAULT_WAIT,
    RESNET_FULL,
    EngineSide,
    load_fashion,
    random_cifar,
    spawn_environment,
)

POLICIES = ("old", "new", "unbound", "threads1", "passive")
RULE_POLICIES = ("new", "unbound")  # a process per condition kind, the rule choosing which one is timed
DEFAULT_CONDITIONS = ("quiet", "busy:1", "busy:2", "torch:1", "torch:2", "quiet")


def policy_env_and_threads(name: str) -> tuple[dict, int | None]:
    """The OpenMP variables and the ``--threads`` value of a policy."""
    if name[:4] in ("spin", "bind") and name[4:].isdigit():
        return {"GOMP_SPINCOUNT": name[4:]}, None
    quiet_env, busy_env = ({"GOMP_SPINCOUNT": str(threads.spin_count_for(others))} for others in (0, 1))
    return {
        "old": (LIBGOMP_DEFAULT_WAIT, None),
        # a run that binds its threads takes the long spin whatever the load (threads.prefer_bound_spin)
        "new@quiet": (quiet_env, None),
        "new@busy": (quiet_env, None),
        "unbound@quiet": (quiet_env, None),
        "unbound@busy": (busy_env, None),
        "threads1": (busy_env, 1),
        "passive": ({"OMP_WAIT_POLICY": "PASSIVE"}, None),
    }[name]


# -- the timed side: one process per policy ----------------------------------------------------
def _side_server(conn, case: dict, threads_requested: int | None, batch_size: int, bind: bool) -> None:
    policy = threads.choose_threads(threads_requested, model=case["model"]).apply()
    x, y = case_arrays(case)
    side = EngineSide(
        case["model"],
        x,
        y,
        augment=case["augment"],
        mean=case["mean"],
        std=case["std"],
        device=torch.device("cpu"),
        batch_size=batch_size,
        predict_chunk=None,
        compile=False,
    )
    binding = threads.bind_openmp_threads(policy.threads) if bind else contextlib.nullcontext("not bound")
    with binding as how:
        side.train_epoch()  # warm-up
        side.predict()
        conn.send(
            {"threads": policy.threads, "wait": {k: os.environ.get(k) for k in threads.WAIT_VARIABLES}, "binding": how}
        )
        while (what := conn.recv()) != "stop":
            t0 = time.perf_counter()
            side.train_epoch() if what == "train" else side.predict()
            conn.send(time.perf_counter() - t0)


class Side:
    def __init__(self, name: str, case: dict, batch_size: int):
        env, threads_requested = policy_env_and_threads(name)
        ctx = multiprocessing.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(
            target=_side_server,
            daemon=True,
            args=(child, case, threads_requested, batch_size, name.startswith(("new", "bind"))),
        )
        with spawn_environment(env):
            self.process.start()
        self.info = self.conn.recv()

    def time(self, what: str) -> float:
        self.conn.send(what)
        return self.conn.recv()

    def close(self) -> None:
        self.conn.send("stop")
        self.process.join(timeout=30)


# -- competitors -------------------------------------------------------------------------------
_COMPETITOR_PRELUDE = """
import os, sys, time
deadline = time.time() + {limit}
parent = os.getppid()
def go_on():
    return time.time() < deadline and os.getppid() == parent
"""
_BUSY = (
    _COMPETITOR_PRELUDE
    + """
print("ready", flush=True)
while go_on():
    for _ in range(100000):
        pass
"""
)
_TORCH = (
    _COMPETITOR_PRELUDE
    + """
import torch
from torch import nn
from torch.nn import functional as F
torch.manual_seed(0)
model = nn.Sequential(nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5), nn.ReLU(),
                      nn.MaxPool2d(2), nn.Flatten(), nn.Linear(256, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
                      nn.Linear(84, 10))
opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
x, y = torch.randn(128, 1, 28, 28), torch.randint(0, 10, (128,))
print("ready", flush=True)
while go_on():
    for _ in range(10):
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
"""
)


def start_competitors(kind: str, count: int, limit: float) -> list[subprocess.Popen]:
    """Start ``count`` competitors of ``kind`` with PyTorch's and libgomp's defaults (none of
    memomentum's settings), and wait until each is running its loop."""
    code = {"busy": _BUSY, "torch": _TORCH}[kind].format(limit=limit)
    env = {k: v for k, v in os.environ.items() if k not in threads.WAIT_VARIABLES}
    procs = [
        subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, text=True) for _ in range(count)
    ]
    for p in procs:
        if p.stdout.readline().strip() != "ready":
            stop_competitors(procs)
            raise RuntimeError(f"a {kind} competitor did not start")
    return procs


def stop_competitors(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        p.kill()
    for p in procs:
        p.wait()


def parse_condition(text: str) -> tuple[str, int]:
    if text == "quiet":
        return "quiet", 0
    kind, _, count = text.partition(":")
    if kind not in ("busy", "torch") or not count.isdigit():
        raise SystemExit(f"condition {text!r}: use quiet, busy:N or torch:N")
    return kind, int(count)


# -- cases -------------------------------------------------------------------------------------
def case_spec(name: str, args) -> dict:
    if name == "lenet":
        n = args.n or 54_000
        return dict(
            model="lenet",
            n=n,
            full=n,
            augment=False,
            mean=FASHION_MEAN,
            std=FASHION_STD,
            fashion_dir=args.fashion_dir,
            dataset="fashion-mnist (first n training images)",
        )
    n = args.n or 256
    return dict(
        model="resnet18",
        n=n,
        full=RESNET_FULL,
        augment=True,
        mean=CIFAR_MEAN,
        std=CIFAR_STD,
        dataset="cifar10-shaped random uint8 pixels and labels",
    )


def case_arrays(case: dict):
    if case["model"] == "lenet":
        return load_fashion(case["fashion_dir"], case["n"])
    return random_cifar(case["n"])


# -- the measurement ---------------------------------------------------------------------------
def side_names(policy: str) -> list[str]:
    return [f"{policy}@quiet", f"{policy}@busy"] if policy in RULE_POLICIES else [policy]


def timed_side(policy: str, count: int) -> str:
    """The process that times ``policy`` beside ``count`` competitors: for ``new`` and
    ``unbound``, the one whose spin the rule picks (memomentum.training.threads.spin_count_for)."""
    if policy not in RULE_POLICIES:
        return policy
    busy = threads.spin_count_for(count) == threads.BUSY_SPIN_COUNT
    return f"{policy}@busy" if busy else f"{policy}@quiet"


def measure(case: dict, args) -> dict:
    sides = {name: Side(name, case, args.batch_size) for policy in args.policies for name in side_names(policy)}
    times: dict = {}
    try:
        for c_index, condition in enumerate(args.conditions):
            kind, count = parse_condition(condition)
            procs = start_competitors(kind, count, args.competitor_limit) if count else []
            try:
                time.sleep(args.settle)
                for _ in range(args.repeats):
                    for name in args.policies:
                        side = sides[timed_side(name, count)]
                        for what in ("train", "predict"):
                            times.setdefault(condition, {}).setdefault(name, {}).setdefault(what, []).append(
                                side.time(what)
                            )
            finally:
                stop_competitors(procs)
            done = {name: round(statistics.median(d["train"]), 2) for name, d in times[condition].items()}
            print(
                f"[{c_index + 1}/{len(args.conditions)}] {condition}: median training epoch so far (s) {done}",
                file=sys.stderr,
                flush=True,
            )
    finally:
        for side in sides.values():
            side.close()
    info = {name: side.info for name, side in sides.items()}
    for policy in RULE_POLICIES:
        if policy in args.policies:
            info[policy] = {
                "threads": info[f"{policy}@quiet"]["threads"],
                "quiet": info.pop(f"{policy}@quiet"),
                "busy": info.pop(f"{policy}@busy"),
            }
    return {"times": times, "sides": info}


def report(case: dict, measured: dict) -> dict:
    scale = case["full"] / case["n"]
    times = measured["times"]
    med = {
        cond: {name: {w: statistics.median(v) * scale for w, v in d.items()} for name, d in per.items()}
        for cond, per in times.items()
    }
    quiet = med.get("quiet", {})
    out = {
        "model": case["model"],
        "dataset": case["dataset"],
        "n": case["full"],
        "measured_examples": case["n"],
        "policies": measured["sides"],
        "conditions": {},
    }
    if scale != 1:
        out["note"] = f"times measured on {case['n']} examples and multiplied by {case['full']}/{case['n']}"
    for cond, per in times.items():
        rows = {}
        for name, d in per.items():
            row = {}
            for what, values in d.items():
                m = statistics.median(values) * scale
                entry = {
                    "median_s": round(m, 3),
                    "best_s": round(min(values) * scale, 3),
                    "all_s": [round(v * scale, 3) for v in values],
                }
                if cond != "quiet" and name in quiet:
                    entry["slowdown"] = round(m / quiet[name][what], 2)
                if "old" in quiet:
                    entry["vs_old_quiet"] = round(m / quiet["old"][what], 3)
                row[what] = entry
            rows[name] = row
        out["conditions"][cond] = rows
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--case", choices=("lenet", "resnet18"), default="lenet")
    p.add_argument("--n", type=int, default=None, help="examples (default: lenet 54000, resnet18 256 scaled to 45000)")
    p.add_argument(
        "--policies",
        default=",".join(POLICIES),
        help=f"comma-separated, from {', '.join(POLICIES)}, spinN and bindN (default: all but those two)",
    )
    p.add_argument(
        "--conditions",
        default=",".join(DEFAULT_CONDITIONS),
        help="comma-separated: quiet, busy:N, torch:N (a repeated name adds to its samples)",
    )
    p.add_argument("--repeats", type=int, default=2, help="rounds per condition (default 2)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--settle", type=float, default=1.0, help="seconds between starting competitors and timing")
    p.add_argument("--competitor-limit", type=float, default=900.0, help="competitors end by themselves after this")
    p.add_argument("--fashion-dir", default=FASHION_MNIST.default_dir)
    args = p.parse_args(argv)
    args.policies = [s for s in args.policies.split(",") if s]
    args.conditions = [s for s in args.conditions.split(",") if s]
    unknown = {q for q in args.policies if q not in POLICIES and not (q[:4] in ("spin", "bind") and q[4:].isdigit())}
    if unknown or not args.policies:
        p.error(f"unknown policies {sorted(unknown)}; choose from {', '.join(POLICIES)}, spinN or bindN")
    for c in args.conditions:
        parse_condition(c)
    if args.repeats < 1:
        p.error("--repeats must be at least 1")

    case = case_spec(args.case, args)
    t0 = time.perf_counter()
    measured = measure(case, args)
    result = {
        "torch": torch.__version__,
        "cpu_cores": threads.available_cores(),
        "batch_size": args.batch_size,
        "repeats": args.repeats,
        "conditions": args.conditions,
        "order": "policies take turns within each condition; each policy in its own process",
        "wall_s": round(time.perf_counter() - t0, 1),
        "case": report(case, measured),
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

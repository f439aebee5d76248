"""The CPU thread policy: the wait policy is set before torch loads, the thread count never
depends on the machine's load, and neither changes a run's numbers."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import SCHEDULE_2_EPOCHS, checkout_env, flags

from memomentum.training import threads


# -- the wait policy ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "others, spins, where",
    [
        (0, threads.QUIET_SPIN_COUNT, "quiet"),
        (None, threads.QUIET_SPIN_COUNT, "quiet"),
        (1, threads.BUSY_SPIN_COUNT, "busy"),
        (3.5, threads.BUSY_SPIN_COUNT, "busy"),
    ],
)
def test_wait_policy_is_set_when_nobody_chose_one_and_torch_is_not_loaded(others, spins, where):
    env = {"PATH": "/bin"}
    policy = threads.set_wait_policy(environ=env, modules={}, others=others)
    assert env["GOMP_SPINCOUNT"] == str(spins)
    assert policy.decided_by == f"memomentum: {where} machine at start" and policy.setting == f"GOMP_SPINCOUNT={spins}"
    assert threads.QUIET_SPIN_COUNT > threads.BUSY_SPIN_COUNT


def test_others_running_reads_the_runnable_tasks_less_this_process(tmp_path):
    loadavg = tmp_path / "loadavg"
    loadavg.write_text("0.52 0.61 0.70 3/412 12345\n")
    assert threads.others_running(str(loadavg), interval_s=0) == 2
    loadavg.write_text("0.00 0.01 0.05 1/97 12345\n")
    assert threads.others_running(str(loadavg), interval_s=0) == 0
    assert threads.others_running(str(tmp_path / "missing"), interval_s=0) is None
    loadavg.write_text("garbage\n")
    assert threads.others_running(str(loadavg), interval_s=0) is None


def test_a_busy_loop_makes_the_machine_busy():
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)
        if threads.others_running() is None:
            pytest.skip("/proc/loadavg cannot be read here")
        assert threads.others_running() >= 1
    finally:
        busy.kill()
        busy.wait()


@pytest.mark.parametrize(
    "chosen",
    [
        {"OMP_WAIT_POLICY": "PASSIVE"},
        {"GOMP_SPINCOUNT": "300000"},
        {"OMP_WAIT_POLICY": "active", "GOMP_SPINCOUNT": "5"},
    ],
)
def test_a_users_wait_policy_is_left_alone(chosen):
    env = dict(chosen)
    policy = threads.set_wait_policy(environ=env, modules={})
    assert env == chosen and policy.decided_by == "environment"
    assert all(f"{k}={v}" in policy.setting for k, v in chosen.items())


def test_too_late_once_torch_is_loaded():
    env = {}
    policy = threads.set_wait_policy(environ=env, modules={"torch": object()})
    assert env == {} and "torch was imported before memomentum" in policy.decided_by


def _environment(**chosen: str) -> dict:
    """This process's environment without the user's OpenMP wait variables, plus ``chosen``,
    with the checkout on the import path."""
    env = {k: v for k, v in checkout_env().items() if k not in threads.WAIT_VARIABLES}
    return {**env, **chosen}


def _python(code: str, env: dict) -> str:
    r = subprocess.run(
        [sys.executable, "-c", code], env=_environment(**env), capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def test_importing_memomentum_first_sets_the_variable_before_libgomp_reads_it():
    code = (
        "import os, sys; import memomentum; assert 'torch' not in sys.modules; import torch; "
        "from memomentum import threads; print(os.environ.get('GOMP_SPINCOUNT'), "
        "threads.WAIT_POLICY_AT_IMPORT.decided_by)"
    )
    spins, decided_by = _python(code, {}).split(" ", 1)
    where = "busy" if spins == str(threads.BUSY_SPIN_COUNT) else "quiet"
    assert spins in (str(threads.QUIET_SPIN_COUNT), str(threads.BUSY_SPIN_COUNT))
    assert decided_by == f"memomentum: {where} machine at start"
    code = "import torch, os, memomentum; from memomentum import threads; print(threads.WAIT_POLICY_AT_IMPORT.setting)"
    assert _python(code, {}) == "libgomp default"


# -- the thread count --------------------------------------------------------------------------
def test_thread_count_comes_from_the_request_the_model_and_the_cores_only():
    assert threads.choose_threads(3, model="lenet").threads == 3
    assert threads.choose_threads(None, model="mlp").threads == 1
    default = threads.choose_threads(None, model="lenet")
    assert default.threads == threads.available_cores() and default.reason == "all available cores"
    assert set(default.to_dict()) == {"threads", "threads_reason", "openmp_wait", "openmp_binding"}


# -- a whole run -------------------------------------------------------------------------------
def _image_npz(path: Path) -> Path:
    """The embedded digits scaled to 24 x 24 inside 28 x 28: big enough for LeNet's
    convolutions, small enough for a quick run."""
    from memomentum.data import load_dataset

    d = load_dataset("digits")

    def big(x):
        x = np.kron(x[..., 0].astype(np.float64), np.ones((3, 3)))
        return np.pad((x * (255 / 16)).astype(np.uint8), ((0, 0), (2, 2), (2, 2)))

    np.savez(path, x=big(d.x_train[:500]), y=d.y_train[:500], x_test=big(d.x_test), y_test=d.y_test)
    return path


def _run(tmp: Path, name: str, extra: list[str], env: dict, busy: bool = False, status: int = 0) -> Path:
    out = tmp / name
    competitor = None
    if busy:  # a machine that is not quiet: a busy loop competes for the cores
        competitor = subprocess.Popen(
            [sys.executable, "-c", "import time\nt = time.time() + 120\nwhile time.time() < t: pass"]
        )
    try:
        r = subprocess.run(
            [
                sys.executable,
                "-m",
                "memomentum",
                "run",
                "--dataset",
                str(tmp / "img.npz"),
                "--model",
                "lenet",
                "--noise-type",
                "symmetric",
                "--noise-rate",
                "0.3",
                *flags(**SCHEDULE_2_EPOCHS, batch_size=32),
                "--quiet",
                "--device",
                "cpu",
                "--out",
                str(out),
                *extra,
            ],
            env=_environment(**env),
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        if competitor is not None:
            competitor.kill()
            competitor.wait()
    assert r.returncode == status, r.stderr
    return out


def _outputs(run_dir: Path) -> dict:
    summary = json.loads((run_dir / "summary.json").read_text())
    for key in ("wall_time_s", "time_s", "threads_reason", "openmp_wait", "openmp_binding"):
        summary.pop(key)
    model = torch.load(run_dir / "model.pt", weights_only=True)["state_dict"]
    return {
        "summary": summary,
        "examples": (run_dir / "examples.csv").read_text(),
        "history": (run_dir / "history.csv").read_text(),
        "model": model,
    }


def test_the_default_policy_gives_the_numbers_of_threads_n_whatever_the_load_and_the_waiting(tmp_path):
    _image_npz(tmp_path / "img.npz")
    n = threads.available_cores()
    default = _run(tmp_path, "default", [], {}, busy=True)
    summary = json.loads((default / "summary.json").read_text())
    assert summary["threads"] == n and summary["threads_reason"] == "all available cores"
    if n > 1:  # bound one per core: the long spin whatever the load
        assert (
            summary["openmp_wait"]
            == f"GOMP_SPINCOUNT={threads.QUIET_SPIN_COUNT} (memomentum: for threads bound one per core)"
        )
    else:  # beside the busy competitor this test runs, the busy spin
        assert summary["openmp_wait"] == f"GOMP_SPINCOUNT={threads.BUSY_SPIN_COUNT} (memomentum: busy machine at start)"
    explicit = _run(tmp_path, "explicit", ["--threads", str(n)], {"GOMP_SPINCOUNT": "300000"})
    passive = _run(tmp_path, "passive", ["--threads", str(n)], {"OMP_WAIT_POLICY": "PASSIVE"})
    assert json.loads((passive / "summary.json").read_text())["openmp_wait"] == "OMP_WAIT_POLICY=PASSIVE (environment)"
    unbound = _run(tmp_path, "unbound", [], {"OMP_PROC_BIND": "false"})
    assert json.loads((unbound / "summary.json").read_text())["openmp_binding"] == (
        "not bound: placed by the environment (OMP_PROC_BIND)"
    )
    if n > 1 and threads._loaded_libgomp() is not None:  # bound while it trained, one core per thread
        cores = ",".join(map(str, sorted(os.sched_getaffinity(0))))
        assert summary["openmp_binding"] == f"cores {cores}, one per thread"
    reference = _outputs(default)
    for other in (explicit, passive, unbound):
        got = _outputs(other)
        assert got["summary"] == reference["summary"]
        assert got["examples"] == reference["examples"] and got["history"] == reference["history"]
        assert all(torch.equal(got["model"][k], reference["model"][k]) for k in reference["model"])


def test_resuming_with_another_thread_count_warns_that_the_last_bits_may_change(tmp_path):
    _image_npz(tmp_path / "img.npz")
    first = threads.available_cores()
    other = 1 if first > 1 else 2
    out = _run(tmp_path, "run", [], {"MEMOMENTUM_TEST_KILL_AT": "epoch:1"}, status=-9)
    assert (out / "checkpoint.pt").exists()
    resume = [sys.executable, "-m", "memomentum", "run", "--resume", str(out), "--quiet"]
    r = subprocess.run(
        resume + ["--threads", str(other)], env=_environment(), capture_output=True, text=True, timeout=300
    )
    assert r.returncode == 0, r.stderr
    assert (
        f"memomentum: warning: this run was started with {first} CPU threads and continues with {other}; " in r.stderr
    ) and f"(--threads {first} keeps them)" in r.stderr


# -- one core per thread -----------------------------------------------------------------------
def test_binding_plan_binds_one_thread_per_core_only_when_nothing_else_decides():
    gomp = "/x/libgomp.so.1"
    assert threads.binding_plan(2, [3, 1], environ={}, libgomp=gomp) == (1, 3)
    assert "placed by the environment (GOMP_CPU_AFFINITY)" in threads.binding_plan(
        2, [0, 1], environ={"GOMP_CPU_AFFINITY": "0-1"}, libgomp=gomp
    )
    assert "binding is for one thread per core" in threads.binding_plan(1, [0, 1], environ={}, libgomp=gomp)
    assert "binding is for one thread per core" in threads.binding_plan(2, [0, 1, 2, 3], environ={}, libgomp=gomp)
    assert "not libgomp" in threads.binding_plan(2, [0, 1], environ={}, libgomp=None)
    assert "reader processes" in threads.binding_plan(2, [0, 1], environ={}, libgomp=gomp, streamed=True)


def test_openmp_threads_are_bound_one_per_core_while_training_and_unbound_after():
    code = """
import os, memomentum, torch
from memomentum.training import threads
cores = sorted(os.sched_getaffinity(0))
n = len(cores)
torch.set_num_threads(n)
gomp = threads._loaded_libgomp()
if n < 2 or gomp is None:
    print("skip")
    raise SystemExit
def where(i):
    return sorted(os.sched_getaffinity(0))
with threads.bind_openmp_threads(n) as how:
    inside = threads.in_every_openmp_thread(where, n, gomp)
    torch.randn(512, 512) @ torch.randn(512, 512)  # PyTorch's own regions still run
after = threads.in_every_openmp_thread(where, n, gomp)
assert how == "cores " + ",".join(map(str, cores)) + ", one per thread", how
assert sorted(inside) == list(range(n)) and sorted(c for cs in inside.values() for c in cs) == cores, inside
assert all(len(cs) == 1 for cs in inside.values()), inside
assert all(cs == cores for cs in after.values()), after
assert sorted(os.sched_getaffinity(0)) == cores
print("ok")
"""
    out = _python(code, {})
    if out == "skip":
        pytest.skip("needs 2 or more cores and PyTorch on libgomp")
    assert out == "ok"


def test_a_run_that_binds_its_threads_takes_the_long_spin_before_torch_loads(monkeypatch):
    busy = threads.WaitPolicy(f"GOMP_SPINCOUNT={threads.BUSY_SPIN_COUNT}", "memomentum: busy machine at start")
    monkeypatch.setattr(threads, "available_cores", lambda: 2)
    for requested, device, env, modules, spins in [
        (None, None, {}, {}, threads.QUIET_SPIN_COUNT),  # every core, the CPU: bound
        (2, "cpu", {}, {}, threads.QUIET_SPIN_COUNT),
        (1, None, {}, {}, threads.BUSY_SPIN_COUNT),  # fewer threads than cores: not bound
        (None, "cuda", {}, {}, threads.BUSY_SPIN_COUNT),
        (None, None, {"OMP_PLACES": "cores"}, {}, threads.BUSY_SPIN_COUNT),  # the user places threads
        (None, None, {}, {"torch": object()}, threads.BUSY_SPIN_COUNT),
    ]:  # too late
        monkeypatch.setattr(threads, "_wait_policy", busy)
        environ = {**env, "GOMP_SPINCOUNT": str(threads.BUSY_SPIN_COUNT)}
        policy = threads.prefer_bound_spin(requested, device, environ=environ, modules=modules)
        assert environ["GOMP_SPINCOUNT"] == str(spins) and policy.setting == f"GOMP_SPINCOUNT={spins}"
        assert threads.current_wait_policy() is policy
    monkeypatch.setattr(threads, "_wait_policy", threads.WaitPolicy("GOMP_SPINCOUNT=5", "environment"))
    environ = {"GOMP_SPINCOUNT": "5"}
    assert threads.prefer_bound_spin(None, None, environ=environ, modules={}).decided_by == "environment"
    assert environ == {"GOMP_SPINCOUNT": "5"}


def test_the_command_line_decides_the_spin_as_the_parser_reads_it(monkeypatch, capsys):
    """Abbreviated and '='-joined options count; a resumed run, help, other commands and a
    command line the parser refuses change nothing (and print nothing)."""
    from memomentum import cli

    seen = []
    monkeypatch.setattr(threads, "prefer_bound_spin", lambda n, device: seen.append((n, device)))
    for argv, expected in [
        (["run", "--thr", "1"], [(1, None)]),
        (["run", "--threads=2", "--dev", "cpu"], [(2, "cpu")]),
        (["run"], [(None, None)]),
        (["run", "--resume", "runs/x"], []),
        (["run", "--threads", "0"], []),  # refused later, by _main
        (["run", "--bogus"], []),
        (["run", "--help"], []),
        (["grid", "--threads", "1"], []),
    ]:
        seen.clear()
        cli._prefer_bound_spin(argv)
        assert seen == expected, argv
    assert capsys.readouterr() == ("", "")

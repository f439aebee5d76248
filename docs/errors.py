"""Regenerate the table of docs/errors.md by running every bad input for real.

    python docs/errors.py > /tmp/table.md     # then paste it over the table in errors.md

Each command line runs as its own process (``python -m memomentum run ...``), so the exit
status and the output are exactly what a user sees. The bad files are the ones the tests use
(``tests/test_bad_input.py``), written to a temporary directory shown as ``<tmp>``.
"""

import errno
import json
import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

import numpy as np  # noqa: E402
import torch  # noqa: E402
from test_bad_input import CASES, FAST, FAST_CFG, blobs, write_bad_files  # noqa: E402

import memomentum  # noqa: E402
from memomentum import InputError, RunConfig  # noqa: E402
from memomentum.runner import outputs  # noqa: E402


def run_cli(args: list[str]) -> tuple[int, str]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    r = subprocess.run(
        [sys.executable, "-m", "memomentum", "run", *args], capture_output=True, text=True, env=env, timeout=600
    )
    return r.returncode, (r.stderr + r.stdout).strip()


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="memomentum-errors-"))
    (tmp / "bad").mkdir()
    d = write_bad_files(tmp / "bad")
    x, y = blobs()
    np.savez(d / "mismatch.npz", x=x, y=y[:-1])
    np.savez(d / "negative.npz", x=x, y=y - 1)
    finished = tmp / "finished"
    finished.mkdir()
    for name in ("config.json", "summary.json", "history.csv", "examples.csv", "model.pt"):
        (finished / name).write_text("{}\n")
    unfinished = tmp / "unfinished"
    unfinished.mkdir()
    cfg = RunConfig(dataset=str(d / "good.npz"), out=str(unfinished), **FAST_CFG)
    torch.save({"config": cfg.to_dict(), "procedure": {}, "elapsed": 1.0}, unfinished / outputs.CHECKPOINT)
    (unfinished / "config.json").write_text("{}\n")
    corrupt = tmp / "corrupt"
    corrupt.mkdir()
    (corrupt / outputs.CHECKPOINT).write_bytes(b"PK\x03\x04 not really")
    foreign = tmp / "thesis"
    foreign.mkdir()
    (foreign / "chapter1.tex").write_text("precious\n")
    # a run that is still going: its lock names a live process (a stand-in that sleeps)
    busy = tmp / "busy"
    busy.mkdir()
    for name in ("config.json", outputs.CHECKPOINT):
        (busy / name).write_bytes((unfinished / name).read_bytes())
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    (busy / "run.lock").write_text(json.dumps({"pid": sleeper.pid, "host": socket.gethostname()}) + "\n")

    rows = []  # (what, how, status, message)

    def cli(what, args, out=True):
        args = [a.replace("{d}", str(d)) for a in args]
        full = [
            *FAST,
            *(["--out", str(tmp / "run")] if out and "--out" not in args and "--resume" not in args else []),
            *args,
        ]
        code, text = run_cli(full)
        shown = " ".join(a for a in args)
        rows.append((what, f"`memomentum run {shown}`", str(code), text))

    for what, (args, _, _) in CASES.items():
        if args is not None:
            cli(what, args)
    cli("output under /proc", ["--out", "/proc/memomentum/run"])
    cli("noise rate outside [0, 1)", ["--noise-rate", "1.5"])
    cli("x and y of different lengths", ["--dataset", "{d}/mismatch.npz"])
    cli("negative labels", ["--dataset", "{d}/negative.npz"])
    cli("zero epochs", ["--epochs", "0"])
    cli("validation share of 1", ["--val-fraction", "1"])
    cli("missing transition matrix", ["--noise-type", "transition"])
    cli("finished run, no --overwrite", ["--out", str(finished)])
    cli("unfinished run, no --resume", ["--out", str(unfinished)])
    cli("--overwrite on a directory that is not a run", ["--out", str(foreign), "--overwrite"])
    cli("--resume with changed settings", ["--resume", str(unfinished), "--epochs", "7", "--lr", "0.5"])
    cli("--resume with a bad value", ["--resume", str(unfinished), "--noise-rate", "2"])
    cli("--resume together with --overwrite", ["--resume", str(unfinished), "--overwrite"])
    cli("--resume of a finished run", ["--resume", str(finished)])
    cli("--resume of a missing directory", ["--resume", str(tmp / "nowhere")])
    cli("corrupt checkpoint", ["--resume", str(corrupt)])
    cli("a second run into a directory another run writes", ["--out", str(busy)])
    cli("--resume of a run that is still going", ["--resume", str(busy)])
    sleeper.kill()

    # Python API only
    def api(what, how, fields, patch=None):
        fields = {k: v.replace("{d}", str(d)) if isinstance(v, str) else v for k, v in fields.items()}
        fields.setdefault("out", str(tmp / "run"))
        real = os.replace
        if patch:
            os.replace = patch
        try:
            memomentum.run(RunConfig(**{**FAST_CFG, **fields}))
            text = "(no error)"
        except InputError as e:
            text = f"InputError: {e}"
        finally:
            os.replace = real
        rows.append((what, how, "-", text))

    api("unknown device (Python API)", '`run(RunConfig(device="tpu"))`', dict(device="tpu"))

    def full_disk(src, dst):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    api(
        "full disk (simulated: every rename fails with ENOSPC)",
        "`run(RunConfig(...))`",
        dict(dataset="{d}/good.npz"),
        patch=full_disk,
    )
    calls = {"n": 0}

    def full_later(src, dst):
        if Path(dst).name == outputs.CHECKPOINT:
            calls["n"] += 1
            if calls["n"] == 4:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return os.rename(src, dst)

    api(
        "full disk after 3 checkpoints (simulated)",
        "`run(RunConfig(...))`",
        dict(dataset="{d}/good.npz", out=str(tmp / "run-full")),
        patch=full_later,
    )

    print("| bad input | command | exit | message |")
    print("|---|---|---|---|")
    for what, how, code, text in rows:
        text = text.replace(str(tmp), "<tmp>").replace("|", "\\|").replace("\n", "<br>")
        how = how.replace(str(tmp), "<tmp>").replace("|", "\\|")
        print(f"| {what} | {how} | {code} | `{text}` |")


if __name__ == "__main__":
    main()

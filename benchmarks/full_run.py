"""Time one whole run through the Python API, ``memomentum.entrypoints.api.run(RunConfig(...))``.

Prints one JSON object: wall time, epochs run, how the time splits into training,
prediction (confident-set selection) and evaluation (the summary's ``time_s``), peak
resident memory of the process, peak GPU memory when CUDA is used, test accuracy and
the per-round ``rounds`` list of the summary.

    python benchmarks/full_run.py                       # fashion-mnist, instance 0.4, seed 1,
                                                        # 20 epochs, 1 outer loop, inner bound 4
    python benchmarks/full_run.py --dataset cifar10 --device cuda --epochs 100 --max-outer-loop 3 --max-inner-loop 20
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from memomentum.config import RunConfig
from memomentum.entrypoints.api import run


def peak_rss_mb() -> float:
    # ru_maxrss is in kilobytes on Linux (bytes on macOS)
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(kb / (2**20 if sys.platform == "darwin" else 2**10), 1)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="fashion-mnist")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--noise-type", default="instance")
    p.add_argument("--noise-rate", type=float, default=None, help="default: 0.4 for noise types that take a rate")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--method", default="memomentum")
    p.add_argument("--model", default=None)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--max-outer-loop", type=int, default=1)
    p.add_argument("--max-inner-loop", type=int, default=4)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--compile", action="store_true")
    p.add_argument("--out", default=None, help="run directory (default: a temporary one, removed afterwards)")
    args = p.parse_args(argv)

    cfg = dict(
        dataset=args.dataset,
        data_dir=args.data_dir,
        noise_type=args.noise_type,
        noise_rate=args.noise_rate,
        seed=args.seed,
        method=args.method,
        model=args.model,
        epochs=args.epochs,
        max_outer_loop=args.max_outer_loop,
        max_inner_loop=args.max_inner_loop,
        batch_size=args.batch_size,
        device=args.device,
        threads=args.threads,
        compile=args.compile,
        progress=False,
    )
    cuda = torch.cuda.is_available() and args.device != "cpu"
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    with tempfile.TemporaryDirectory(prefix="memomentum-full-run-") as tmp:
        out = args.out or str(Path(tmp) / "run")
        t0 = time.perf_counter()
        result = run(RunConfig(**cfg, out=out))
        wall = time.perf_counter() - t0
    s = result.summary
    report = {
        "command": " ".join(["python benchmarks/full_run.py", *(sys.argv[1:] if argv is None else argv)]),
        "dataset": s["dataset"],
        "model": s["model"],
        "method": s["method"],
        "noise_type": s["noise_type"],
        "noise_rate": s["noise_rate"],
        "seed": s["seed"],
        "schedule": {
            "epochs": args.epochs,
            "max_outer_loop": args.max_outer_loop,
            "max_inner_loop": args.max_inner_loop,
        },
        "device": s["device"],
        "threads": s["threads"],
        "wall_time_s": round(wall, 2),  # whole call: loading, noise, split, training, outputs
        "run_wall_time_s": s["wall_time_s"],  # the summary's own figure
        "epochs_run": s["epochs_run"],
        "time_s": s["time_s"],  # training / prediction (confident sets) / evaluation (validation, test)
        "peak_rss_mb": peak_rss_mb(),
        "peak_gpu_memory_mb": round(torch.cuda.max_memory_allocated() / 2**20, 1) if cuda else None,
        "test_accuracy": s["test_accuracy"],
        "best_val_accuracy": s["best_val_accuracy"],
        "best_at": s["best_at"],
        "n_train": s["n_train"],
        "n_val": s["n_val"],
        "rounds": s["rounds"],
        "final_confident": s.get("final_confident"),
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Data-parallel scaling of a training epoch: 1, 2, 4, ... processes under ``torchrun``, with
PyTorch's DistributedDataParallel, the way a distributed run trains.

Each world size is launched as ``python -m torch.distributed.run --standalone
--nproc-per-node W benchmarks/ddp_scaling.py --worker ...`` (gloo on the CPU, NCCL on GPUs,
one GPU per process). Every rank draws the same seeded global order and trains through the
run's own distributed path: an :class:`memomentum.training.engine.Engine` given the global batch and
the process's place (:class:`memomentum.training.distributed.Distributed`) trains each process on its
equal share of every global batch (the global batch stays the one given, e.g. 128 = 2 x 64)
with the engine's step (resident normalised data, whole-batch crop and flip, the device's
precision and fused optimizer), and DDP averages the gradients. (The H200 figures in
docs/results.md, world size 1 only, were measured before the script used that path; at world size 1
both run the same single-process step.)

Cases (synthetic data of the real shapes; the timing does not depend on pixel values):

* ``lenet-fmnist``: LeNet, 54,000 28x28x1 images (a Fashion-MNIST training part), batch 128,
  no augmentation (as a Fashion-MNIST run);
* ``resnet18-cifar``: the CIFAR ResNet-18, 32x32x3, batch 128;
* ``resnet50-clothing1m``: the ImageNet ResNet-50, 224x224x3, batch 256 (``--batch`` to change).

Measured per world size, each rank's loop timed between barriers (the slowest rank counts):

* ``epoch_s``: one epoch of ``--examples`` examples (GPU cases: ``--steps`` global steps,
  scaled to the epoch size given); ``images_per_s``;
* ``communication_share``: 1 - (time with DDP's gradient all-reduce switched off by
  ``no_sync()``) / (time with it): the share of the step spent waiting for communication
  that computation did not hide; the two variants take turns ``--repeats`` times and the best
  of each is used (not clipped: measurement noise can make it slightly negative);
* ``scaling_efficiency``: images/s at W divided by W times images/s at world size 1 (only when
  world size 1 is among ``--world-sizes``);
* ``ddp_overhead`` (world size 1 only): DDP-wrapped against a plain model in one process.

On a CPU the processes share the cores: 1 process with all cores against 2 processes with
half each (``--threads`` per process is cores / W). Where fewer GPUs are present than asked
for, only the world sizes that fit are measured, and the output says so.

    python benchmarks/ddp_scaling.py                                 # CPU: lenet-fmnist, 1 vs 2
    python benchmarks/ddp_scaling.py --device cuda --cases resnet18-cifar,resnet50-clothing1m

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CASES = {
    # augmentation as the runs have it: none for MNIST-like data, crop and flip otherwise
    "lenet-fmnist": dict(model="lenet", shape=(28, 28, 1), classes=10, batch=128, examples=54_000, augment="none"),
    "resnet18-cifar": dict(
        model="resnet18", shape=(32, 32, 3), classes=10, batch=128, examples=45_000, augment="crop_flip"
    ),
    "resnet50-clothing1m": dict(
        model="resnet50", shape=(224, 224, 3), classes=14, batch=256, examples=1_000_000, augment="crop_flip"
    ),
}


# -- one rank ---------------------------------------------------------------------------
def _synchronise(device):
    import torch
    import torch.distributed as dist

    if device.type == "cuda":
        torch.cuda.synchronize(device)
    if dist.is_initialized():
        dist.barrier()


def worker(args) -> None:
    import memomentum  # noqa: F401 -- first: it sets how OpenMP threads wait before torch loads (as a run does)

    # isort: split
    import numpy as np
    import torch
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel as DDP

    from memomentum.training.distributed import Distributed
    from memomentum.training.engine import Engine
    from memomentum.training.models import create_model
    from memomentum.training.sources import to_device_data

    rank, world, local = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ["LOCAL_RANK"])
    cuda = args.device == "cuda"
    device = torch.device("cuda", local) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    torch.set_num_threads(args.threads)
    # A plain single process (world size 1 without DDP) needs no process group at all.
    grouped = world > 1 or args.ddp_at_one
    if grouped:
        dist.init_process_group(
            "nccl" if cuda else "gloo", timeout=timedelta(seconds=300), **({"device_id": device} if cuda else {})
        )
    case = CASES[args.case]
    batch = args.batch or case["batch"]
    if batch % world:
        raise SystemExit(f"batch {batch} is not divisible by the world size {world}")
    per_rank = batch // world
    h, w, c = case["shape"]
    # Resident examples: the whole epoch on the CPU case, a pool that the GPU cases cycle
    # through (the step time does not depend on which images are drawn).
    pool = args.examples if not cuda else min(args.examples, args.steps * batch)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(pool, h, w, c), dtype=np.uint8)
    y = torch.from_numpy(rng.integers(0, case["classes"], size=pool)).to(device)
    # The run's own distributed path: the engine gets the global batch and this process's
    # place in the run, shares every batch out and trains through DDP (world size > 1).
    where = Distributed(
        rank=rank,
        world_size=world,
        local_rank=local,
        local_world_size=world,
        backend=dist.get_backend() if grouped else "none",
    )
    engine = Engine(device=device, augment=case["augment"], batch_size=batch, dist=where)
    data = to_device_data(x, mean=[0.5] * c, std=[0.25] * c, device=device, channels_last=engine.channels_last)
    torch.manual_seed(0)
    model = engine.prepare(create_model(case["model"], input_shape=(c, h, w), num_classes=case["classes"]))
    if world > 1:
        wrapped = engine.training_forward(model, model)
    elif args.ddp_at_one:  # what DDP costs a single process (the run itself does not wrap one)
        wrapped = DDP(model, device_ids=[local] if cuda else None)
    else:
        wrapped = model
    optimizer = engine.make_optimizer(model, lr=0.01, momentum=0.9, weight_decay=1e-4)
    generator = torch.Generator(device=device).manual_seed(1)

    def global_order(n_steps: int) -> torch.Tensor:
        # the same global order on every process; the engine takes this process's share
        return torch.randperm(n_steps * batch, generator=generator, device=device) % pool

    def timed(n_steps: int, sync: bool) -> float:
        order = global_order(n_steps)
        loss_sum = torch.zeros((), device=device)
        _synchronise(device)
        t0 = time.perf_counter()
        if sync or not isinstance(wrapped, DDP):
            engine.train_steps(
                model, wrapped, optimizer, data, y, order, start=0, loss_sum=loss_sum, generator=generator
            )
        else:
            with wrapped.no_sync():
                engine.train_steps(
                    model, wrapped, optimizer, data, y, order, start=0, loss_sum=loss_sum, generator=generator
                )
        _synchronise(device)
        return time.perf_counter() - t0

    steps = args.examples // batch if not cuda else args.steps
    timed(min(steps, args.warmup_steps), True)  # warm-up: cuDNN's algorithm search, allocator, DDP buckets
    with_comm, without_comm = [], []
    for _ in range(args.repeats):
        with_comm.append(timed(steps, True))
        if isinstance(wrapped, DDP):
            without_comm.append(timed(steps, False))
    # the slowest rank sets the pace
    t = torch.tensor([min(with_comm), min(without_comm) if without_comm else float("nan")], dtype=torch.float64)
    if cuda:
        t = t.to(device)
    if grouped:
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
    t = t.cpu().tolist()
    if rank == 0:
        scale = (args.examples / batch) / steps  # GPU cases: from the timed steps to a whole epoch
        result = dict(
            world_size=world,
            backend=dist.get_backend() if grouped else None,
            batch=batch,
            per_rank_batch=per_rank,
            threads_per_process=args.threads,
            ddp=isinstance(wrapped, DDP),
            timed_steps=steps,
            epoch_examples=args.examples,
            epoch_s=round(t[0] * scale, 3),
            images_per_s=round(steps * batch / t[0], 1),
            step_ms=round(1000 * t[0] / steps, 3),
            communication_share=None if t[1] != t[1] else round(1 - t[1] / t[0], 4),  # noise can make it < 0
            measured_s=[round(v, 4) for v in with_comm],
            measured_no_sync_s=[round(v, 4) for v in without_comm],
        )
        Path(args.result).write_text(json.dumps(result))
    if grouped:
        dist.destroy_process_group()


# -- the launcher -----------------------------------------------------------------------
def launch(case: str, world: int, args, *, ddp_at_one: bool = False) -> dict:
    cores = os.cpu_count() or 1
    threads = args.threads or max(1, (cores // world) if args.device == "cpu" else 2)
    with tempfile.TemporaryDirectory() as tmp:
        result = Path(tmp) / "result.json"
        cmd = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            f"--nproc-per-node={world}",
            str(Path(__file__).resolve()),
            "--worker",
            "--case",
            case,
            "--device",
            args.device,
            "--threads",
            str(threads),
            "--examples",
            str(args.examples or CASES[case]["examples"]),
            "--steps",
            str(args.steps),
            "--repeats",
            str(args.repeats),
            "--warmup-steps",
            str(args.warmup_steps),
            "--result",
            str(result),
        ]
        if args.batch:
            cmd += ["--batch", str(args.batch)]
        if ddp_at_one:
            cmd.append("--ddp-at-one")
        env = dict(os.environ, OMP_NUM_THREADS=str(threads), PYTHONUNBUFFERED="1")
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if proc.returncode != 0 or not result.exists():
            return dict(world_size=world, error=(proc.stderr or proc.stdout)[-2000:])
        out = json.loads(result.read_text())
        out["launch_and_run_s"] = round(time.perf_counter() - t0, 1)
        return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument(
        "--cases",
        default=None,
        help="comma-separated (default: lenet-fmnist on the CPU, resnet18-cifar,resnet50-clothing1m on GPUs)",
    )
    p.add_argument(
        "--world-sizes", default=None, help="comma-separated (default: 1,2 on the CPU; 1,2,4,8 up to the GPUs present)"
    )
    p.add_argument("--batch", type=int, default=None, help="global batch (default: the case's)")
    p.add_argument("--examples", type=int, default=None, help="examples per epoch (default: the case's)")
    p.add_argument("--steps", type=int, default=50, help="GPU cases: global steps timed per repeat")
    p.add_argument("--warmup-steps", type=int, default=20)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=None, help="threads per process (default: cores / W on the CPU)")
    p.add_argument("--no-overhead", action="store_true", help="skip the DDP-at-world-size-1 overhead run")
    # worker-side options
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--case", default=None, help=argparse.SUPPRESS)
    p.add_argument("--result", default=None, help=argparse.SUPPRESS)
    p.add_argument("--ddp-at-one", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        worker(args)
        from memomentum.training.distributed import end_process

        end_process(0)  # as a run's process ends: not beside gloo's threads (see end_process)
        return 0

    cases = (args.cases or ("lenet-fmnist" if args.device == "cpu" else "resnet18-cifar,resnet50-clothing1m")).split(
        ","
    )
    for case in cases:
        if case not in CASES:
            p.error(f"unknown case {case!r}; choose from {', '.join(CASES)}")
    if args.device == "cuda":
        import torch  # the launcher itself needs torch only to count the GPUs

        gpus, gpu_name, version = torch.cuda.device_count(), None, torch.__version__
        gpu_name = torch.cuda.get_device_name(0) if gpus else None
    else:
        from importlib.metadata import version as _version

        gpus, gpu_name, version = 0, None, _version("torch")
    if args.device == "cuda" and gpus == 0:
        p.error("--device cuda: no GPU is visible")
    wanted = [int(v) for v in (args.world_sizes or ("1,2" if args.device == "cpu" else "1,2,4,8")).split(",")]
    worlds = [w for w in wanted if args.device == "cpu" or w <= gpus]
    report = dict(
        device=args.device,
        cores=os.cpu_count(),
        gpus=gpus,
        gpu_name=gpu_name,
        torch=version,
        world_sizes=worlds,
        not_measured=[w for w in wanted if w not in worlds],
        cases={},
    )
    if report["not_measured"]:
        report["note"] = (
            f"only {gpus} GPU(s) present: world sizes {report['not_measured']} not measured, "
            f"so no scaling efficiency beyond {max(worlds)} GPU(s)"
        )
    for case in cases:
        rows = [launch(case, w, args) for w in worlds]
        # efficiency is against one process; without a world size 1 there is none to report
        one = next((row for row in rows if row.get("world_size") == 1 and "error" not in row), None)
        base = one.get("images_per_s") if one else None
        for row in rows:
            if base and "images_per_s" in row:
                row["scaling_efficiency"] = round(row["images_per_s"] / (row["world_size"] * base), 3)
        entry = dict(runs=rows)
        if 1 in worlds and not args.no_overhead:  # what wrapping in DDP costs a single process
            ddp1 = launch(case, 1, args, ddp_at_one=True)
            entry["ddp_at_one"] = ddp1
            if base and "images_per_s" in ddp1:
                entry["ddp_overhead"] = round(1 - ddp1["images_per_s"] / base, 4)
        report["cases"][case] = entry
        print(json.dumps({case: entry}), file=sys.stderr)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
